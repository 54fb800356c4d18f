/* libFuzzer: arbitrary bytes as a stream steering body (POST /streams/{id}/rooms,
 * gateway/steer.c) on an SSE session in two rooms, then its writes composed. All or
 * nothing: a refused body leaves the session's rooms as they were. Nothing may crash,
 * leak or read out of bounds, whatever the bytes. */
#include "../../gateway/session.h"
#include "fuzz_session.h"

#include <stdint.h>
#include <stdlib.h>

static struct rg_room_conf rooms[] = {
	{.name = "a", .history = 4},
	{.name = "s", .history = 4, .subscribe = RG_POLICY_SERVER},
	{.name = "p:", .is_pattern = 1, .history = 2, .idle_seconds = 1, .presence = 1},
};
static struct rg_config cfg = FZ_CONFIG(rooms);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rg_registry reg;
	static int ready;
	struct rg_session s;
	char *answer = NULL;
	enum rg_err err;
	const char *why;

	if (!ready)
		ready = !rg_registry_init(&reg, &cfg);
	rg_session_init(&s, &reg, RG_FMT_SSE, fz_wake, NULL);
	struct rg_join a = {.room = "a", .len = 1, .since = -1, .quiet = 1};
	struct rg_join p = {.room = "p:x", .len = 3, .since = -1, .quiet = 1};
	rg_session_join(&s, &a);
	rg_session_join(&s, &p);
	rg_session_announce(&s);
	unsigned before = s.nsubs;
	if (!rg_session_publish_token(&s)) {
		if (rg_session_steer(&s, (const char *)data, size, &answer, &err, &why)) {
			if (s.nsubs != before)
				abort(); /* refused, yet the rooms changed */
		}
		free(answer);
	}
	fz_drain(&s);
	rg_session_cleanup(&s);
	rg_registry_sweep(&reg, rg_now_ms() + 2000);
	return 0;
}
