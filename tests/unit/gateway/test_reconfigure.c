/* A reload as the registry and sessions see it (rg_registry_reconfigure): rooms take
 * their new entries, rooms gone from the config are closed and their members told. */
#include "../check.h"
#include "drain.h"
#include "fixtures.h"

#include "../../../gateway/session.h"

#include <errno.h>

static void wake(void *owner)
{
	(void)owner;
}

static int handle(struct rg_session *s, const char *text)
{
	return rg_session_handle(s, text, strlen(text));
}

int main(void)
{
	struct rg_registry reg;
	struct rg_session ws, sse;
	struct rg_room *r;
	unsigned closed, added;

	CHECK(rg_registry_init(&reg, &fx_cfg) == 0);
	rg_session_init(&ws, &reg, RG_FMT_WS, wake, NULL);
	rg_session_init(&sse, &reg, RG_FMT_SSE, wake, NULL);
	CHECK(handle(&ws, "{\"type\":\"join\",\"room\":\"a\"}") == 0);
	CHECK(handle(&ws, "{\"type\":\"join\",\"room\":\"p:x\"}") == 0);
	CHECK(handle(&ws, "{\"type\":\"publish\",\"room\":\"p:x\",\"data\":1}") == 0);
	struct rg_join j = {.room = "p:x", .len = 3, .since = -1};
	CHECK(rg_session_join(&sse, &j) == 0);
	CHECK(rg_registry_get(&reg, "p:idle", 6, 1, &r) == 0); /* a pattern room, idle */
	drain(&ws, NULL);
	drain(&sse, NULL);

	/* the new config: "a" keeps 8, "srv" becomes a pattern's room ("s*"), "p:*" is
	 * gone, "n" is new */
	struct rg_room_conf rooms[] = {
		{.name = "a", .history = 8},
		{.name = "big", .history = 100},
		{.name = "n", .history = 2},
		{.name = "s", .is_pattern = 1, .history = 3, .idle_seconds = 1},
	};
	struct rg_config cfg = fx_cfg;
	cfg.rooms = rooms;
	cfg.nrooms = sizeof(rooms) / sizeof(rooms[0]);
	cfg.max_pending_bytes = 1 << 20;
	cfg.memory_mb = 64;
	CHECK(rg_registry_reconfigure(&reg, &cfg, &closed, &added) == 0);
	CHECK(closed == 2 && added == 1); /* p:x and p:idle; n */
	CHECK(reg.cfg == &cfg && reg.mem.limit == 64u << 20);

	CHECK(rg_registry_get(&reg, "a", 1, 0, &r) == 0 && r->conf == &rooms[0]);
	CHECK(r->keep_bytes == 1 << 20 && r->nsubs == 1);
	CHECK(rg_registry_get(&reg, "n", 1, 0, &r) == 0 && r->conf == &rooms[2]);
	CHECK(rg_registry_get(&reg, "srv", 3, 0, &r) == 0 && r->conf == &rooms[3]);
	CHECK(r->idle_list == &reg.idle && reg.idle == r); /* droppable now */
	CHECK(rg_registry_get(&reg, "p:x", 3, 0, &r) == -ENOENT);
	CHECK(rg_registry_get(&reg, "p:idle", 6, 0, &r) == -ENOENT);

	/* the members were told, once, and left the room */
	CHECK_STR(drain(&ws, NULL), "{\"type\":\"error\",\"code\":\"room_closed\",\"room\":\"p:x\","
				    "\"message\":\"the room was removed from the gateway's "
				    "configuration\"}\n");
	CHECK(ws.nsubs == 1 && rg_session_joined(&ws, "p:x", 3) == NULL);
	CHECK(strstr(drain(&sse, NULL), "event: error\ndata: {\"type\":\"error\",\"code\":"
					"\"room_closed\",\"room\":\"p:x\"") != NULL);
	CHECK(sse.nsubs == 0);

	/* the new history applies from the next message on */
	for (int i = 0; i < 10; i++)
		CHECK(handle(&ws, "{\"type\":\"publish\",\"room\":\"a\",\"data\":1}") == 0);
	CHECK(rg_registry_get(&reg, "a", 1, 0, &r) == 0);
	CHECK(r->last_seq - rg_room_oldest_seq(r) + 1 == 8); /* stored past it: owed to ws */
	drain(&ws, NULL);
	CHECK(handle(&ws, "{\"type\":\"join\",\"room\":\"p:x\"}") == 0);
	CHECK(strstr(drain(&ws, NULL), "\"code\":\"unknown_room\"") != NULL);

	/* back to the first config: "n" goes, the "p:*" rooms may be made again */
	CHECK(rg_registry_reconfigure(&reg, &fx_cfg, &closed, &added) == 0);
	CHECK(closed == 1 && added == 0);
	CHECK(rg_registry_get(&reg, "srv", 3, 0, &r) == 0 && r->idle_list == NULL);
	CHECK(reg.idle == NULL);
	CHECK(handle(&ws, "{\"type\":\"join\",\"room\":\"p:x\"}") == 0);
	CHECK(strstr(drain(&ws, NULL), "\"type\":\"joined\"") != NULL);

	rg_session_cleanup(&ws);
	rg_session_cleanup(&sse);
	rg_registry_cleanup(&reg);
	CHECK(reg.mem.used == 0);
	return check_done("reconfigure");
}
