/* libFuzzer: a WebSocket client message through a session (parse, dispatch, answer,
 * compose the write) and the same bytes as an HTTP publish body. Nothing may crash,
 * leak or read out of bounds, whatever the bytes. */
#include "../../gateway/json_text.h"
#include "../../gateway/request.h"
#include "../../gateway/session.h"
#include "fuzz_session.h"

#include <stdint.h>
#include <stdlib.h>

static struct rg_room_conf rooms[] = {
	{.name = "a", .history = 4, .publish = RG_POLICY_ANYONE},
	{.name = "s", .history = 4, .publish = RG_POLICY_SERVER},
	{.name = "p:", .is_pattern = 1, .history = 2, .idle_seconds = 1},
};
static struct rg_config cfg = FZ_CONFIG(rooms);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rg_registry reg;
	static int ready;
	struct rg_session s;
	size_t len;
	char *out;
	enum rg_err err;
	const char *why;

	if (!ready)
		ready = !rg_registry_init(&reg, &cfg);
	rg_session_init(&s, &reg, RG_FMT_WS, fz_wake, NULL);
	/* join first so that publish paths are reached too */
	rg_session_handle(&s, "{\"type\":\"join\",\"room\":\"a\"}", 26);
	rg_session_handle(&s, (const char *)data, size);
	/* as a transport does: write while there is more; a lagged session is closed */
	fz_drain(&s);
	rg_session_cleanup(&s);
	(void)rg_json_depth((const char *)data, size);
	if (!rg_body_parse((const char *)data, size, &out, &len, &err, &why))
		free(out);
	rg_registry_sweep(&reg, rg_now_ms() + 2000);
	return 0;
}
