/* libFuzzer: arbitrary bytes as the config a reload reads. When it loads, the live
 * registry (rooms with history, a WebSocket and an SSE session in configured and
 * pattern rooms) is put under it and back under the first config, as SIGHUP does
 * twice (rg_registry_reconfigure); members of rooms that went are told and left.
 * Nothing may crash, leak, or leave a session in a room the registry dropped. */
#include "../../gateway/config.h"
#include "../../gateway/session.h"
#include "fuzz_session.h"

#include <stdint.h>
#include <stdlib.h>

static const char base_text[] =
	"{\"listen\":[{\"port\":8080}],\"rooms\":[{\"name\":\"lobby\",\"history\":4},"
	"{\"name\":\"news\",\"history\":2,\"presence\":true},"
	"{\"pattern\":\"dm:*\",\"history\":3}]}";

static void quiet(void *ctx, const char *line)
{
	(void)ctx;
	(void)line;
}

static int handle(struct rg_session *s, const char *text)
{
	return rg_session_handle(s, text, strlen(text));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rg_config *base;
	struct rg_registry reg;
	struct rg_session ws, sse;
	unsigned closed, added;

	if (!base &&
	    !(base = rg_config_parse("base.json", base_text, sizeof(base_text) - 1, quiet, NULL)))
		abort();
	struct rg_config *next =
		rg_config_parse("fuzz.json", (const char *)data, size, quiet, NULL);
	if (!next || rg_registry_init(&reg, base)) {
		rg_config_free(next);
		return 0;
	}
	rg_session_init(&ws, &reg, RG_FMT_WS, fz_wake, NULL);
	rg_session_init(&sse, &reg, RG_FMT_SSE, fz_wake, NULL);
	handle(&ws, "{\"type\":\"join\",\"room\":\"lobby\"}");
	handle(&ws, "{\"type\":\"join\",\"room\":\"news\",\"name\":\"w\"}");
	handle(&ws, "{\"type\":\"join\",\"room\":\"dm:a:b\"}");
	handle(&ws, "{\"type\":\"publish\",\"room\":\"dm:a:b\",\"data\":1}");
	handle(&ws, "{\"type\":\"publish\",\"room\":\"lobby\",\"data\":[1]}");
	struct rg_join j = {.room = "news", .len = 4, .since = -1};
	rg_session_join(&sse, &j);
	rg_registry_reconfigure(&reg, next, &closed, &added);
	handle(&ws, "{\"type\":\"publish\",\"room\":\"lobby\",\"data\":2}");
	handle(&ws, "{\"type\":\"join\",\"room\":\"dm:c:d\"}");
	fz_drain(&ws);
	fz_drain(&sse);
	rg_registry_reconfigure(&reg, base, &closed, &added);
	handle(&ws, "{\"type\":\"publish\",\"room\":\"news\",\"data\":3}");
	fz_drain(&ws);
	fz_drain(&sse);
	for (const struct rg_session_sub *ss = ws.subs; ss; ss = ss->next) {
		struct rg_room *r;
		if (rg_registry_get(&reg, ss->sub.room->name, strlen(ss->sub.room->name), 0, &r) ||
		    r != ss->sub.room)
			abort(); /* a member of a room the registry no longer has */
	}
	rg_session_cleanup(&ws);
	rg_session_cleanup(&sse);
	rg_registry_cleanup(&reg);
	rg_config_free(next);
	return 0;
}
