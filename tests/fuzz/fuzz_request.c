/* libFuzzer: a WebSocket client message through a session (parse, dispatch, answer,
 * compose the write) and the same bytes as an HTTP publish body. Nothing may crash,
 * leak or read out of bounds, whatever the bytes. */
#include "../../gateway/json_text.h"
#include "../../gateway/request.h"
#include "../../gateway/session.h"

#include <stdint.h>
#include <stdlib.h>

static struct rg_room_conf rooms[] = {
	{.name = "a", .history = 4, .publish = RG_POLICY_ANYONE},
	{.name = "s", .history = 4, .publish = RG_POLICY_SERVER},
	{.name = "p:", .is_pattern = 1, .history = 2, .idle_seconds = 1},
};
static struct rg_config cfg = {
	.max_message_bytes = 4096,
	.max_rooms = 8,
	.max_rooms_per_connection = 4,
	.max_json_depth = 32,
	.max_pending_bytes = 65536,
	.rooms = rooms,
	.nrooms = 3,
};

static void wake(void *owner)
{
	(void)owner;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rg_registry reg;
	static int ready;
	static unsigned char buf[16384];
	struct rg_session s;
	size_t len;
	char *out;
	enum rg_err err;
	const char *why;

	if (!ready)
		ready = !rg_registry_init(&reg, &cfg);
	rg_session_init(&s, &reg, RG_FMT_WS, wake, NULL);
	/* join first so that publish paths are reached too */
	rg_session_handle(&s, "{\"type\":\"join\",\"room\":\"a\"}", 26);
	rg_session_handle(&s, (const char *)data, size);
	/* as a transport does: write while there is more; a lagged session is closed */
	int flags;
	while ((flags = rg_session_fill(&s, buf, sizeof(buf), 0, &len)) > 0 &&
	       !(flags & RG_FILL_LAGGED))
		;
	rg_session_cleanup(&s);
	(void)rg_json_depth((const char *)data, size);
	if (!rg_body_parse((const char *)data, size, &out, &len, &err, &why))
		free(out);
	rg_registry_sweep(&reg, rg_now_ms() + 2000);
	return 0;
}
