/* A config built in code for dispatcher tests: rooms "a" (history 4), "big" (history
 * 100), "srv" (server-only) and pattern "p:*" (history 4, idle 1 s); a connection may
 * be owed 64 KB (the least the config allows). */
#ifndef RG_TEST_FIXTURES_H
#define RG_TEST_FIXTURES_H

#include "../../../gateway/config.h"

static struct rg_room_conf fx_rooms[] = {
	{.name = "a", .history = 4, .publish = RG_POLICY_ANYONE},
	{.name = "big", .history = 100, .publish = RG_POLICY_ANYONE},
	{.name = "srv", .history = 4, .publish = RG_POLICY_SERVER},
	{.name = "p:",
	 .is_pattern = 1,
	 .history = 4,
	 .publish = RG_POLICY_ANYONE,
	 .idle_seconds = 1},
};

__attribute__((unused)) static struct rg_config fx_cfg = {
	.max_message_bytes = 1024,
	.max_rooms = 6,
	.max_rooms_per_connection = 3,
	.max_json_depth = 32,
	.max_pending_bytes = 65536,
	.rooms = fx_rooms,
	.nrooms = sizeof(fx_rooms) / sizeof(fx_rooms[0]),
};

#endif
