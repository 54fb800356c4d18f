/* libFuzzer: arbitrary bytes as an SSE Last-Event-ID, parsed (gateway/cursor.c) and, as
 * the SSE transport does, each cursor resumed in its room: seeking into the ring, gap
 * and reset notices, composing the writes. Nothing may crash, leak or read out of
 * bounds, whatever the bytes. */
#include "../../gateway/cursor.h"
#include "../../gateway/session.h"

#include <stdint.h>
#include <stdlib.h>

static struct rg_room_conf rooms[] = {
	{.name = "a", .history = 4},
	{.name = "b", .history = 3, .on_lag = RG_LAG_SKIP},
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
	static unsigned char buf[16384];
	static int ready;
	struct rg_cursor cursors[8];
	char epoch[RG_EPOCH_MAX + 1];
	struct rg_session s;
	size_t len;
	uint64_t seq;

	if (!ready) {
		struct rg_room *r;
		ready = !rg_registry_init(&reg, &cfg);
		/* rooms with history, one wrapped past it */
		for (int i = 0; ready && i < 6; i++)
			if (!rg_registry_get(&reg, i % 2 ? "a" : "b", 1, 0, &r))
				rg_room_publish(r, "1", 1, NULL, &seq);
	}
	int n = rg_cursor_parse((const char *)data, size, cursors, 8, epoch);
	rg_session_init(&s, &reg, RG_FMT_SSE, wake, NULL);
	for (int i = 0; i < n; i++) {
		struct rg_join j = {.room = cursors[i].room[0] ? cursors[i].room : "a",
				    .since = (int64_t)(cursors[i].seq & INT64_MAX),
				    .epoch = epoch,
				    .quiet = 1};
		j.len = strlen(j.room);
		if (rg_session_join(&s, &j))
			continue;
		if (j.reset)
			rg_session_reset(&s, j.ss->sub.room);
		if (j.gap_from)
			rg_session_gap(&s, j.ss->sub.room, j.gap_from, j.gap_to);
	}
	int flags;
	while ((flags = rg_session_fill(&s, buf, sizeof(buf), 0, &len)) > 0 &&
	       !(flags & RG_FILL_LAGGED))
		;
	rg_session_cleanup(&s);
	rg_registry_sweep(&reg, rg_now_ms() + 2000);
	return 0;
}
