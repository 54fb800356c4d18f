/* libFuzzer: arbitrary bytes as an SSE Last-Event-ID, parsed (gateway/cursor.c) and, as
 * the SSE transport does, each cursor resumed in its room: seeking into the ring, gap
 * and reset notices, composing the writes. Nothing may crash, leak or read out of
 * bounds, whatever the bytes. */
#include "../../gateway/cursor.h"
#include "../../gateway/session.h"
#include "fuzz_session.h"

#include <stdint.h>
#include <stdlib.h>

static struct rg_room_conf rooms[] = {
	{.name = "a", .history = 4},
	{.name = "b", .history = 3, .on_lag = RG_LAG_SKIP},
	{.name = "p:", .is_pattern = 1, .history = 2, .idle_seconds = 1},
};
static struct rg_config cfg = FZ_CONFIG(rooms);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rg_registry reg;
	static int ready;
	struct rg_cursor cursors[8];
	char epoch[RG_EPOCH_MAX + 1];
	struct rg_session s;
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
	rg_session_init(&s, &reg, RG_FMT_SSE, fz_wake, NULL);
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
	fz_drain(&s);
	rg_session_cleanup(&s);
	rg_registry_sweep(&reg, rg_now_ms() + 2000);
	return 0;
}
