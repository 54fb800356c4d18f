/* The memory budget: what rooms, messages and sessions count in it, history_bytes,
 * and what being over it refuses and drops (budget.h, room.h, registry.h). */
#include "../check.h"
#include "drain.h"
#include "fixtures.h"

#include "../../../gateway/session.h"

#include <errno.h>
#include <stdlib.h>

static void wake(void *owner)
{
	(void)owner;
}

static int publish(struct rg_room *room, size_t n)
{
	static char data[70000];
	uint64_t seq;

	memset(data, '1', n); /* a JSON number of n digits */
	return rg_room_publish(room, data, n, NULL, &seq);
}

static void test_counts(void)
{
	struct rg_budget b = {0};
	char *p = rg_budget_malloc(&b, RG_MEM_SESSIONS, 100);

	CHECK(p && b.used >= 100 + sizeof(size_t) && b.used == b.by[RG_MEM_SESSIONS]);
	CHECK(b.used == rg_budget_size(p));
	p = rg_budget_realloc(&b, RG_MEM_SESSIONS, p, 5000);
	CHECK(p && b.used >= 5000 && b.used == rg_budget_size(p));
	char *q = rg_budget_strdup(&b, RG_MEM_ROOMS, "lobby");
	CHECK(b.by[RG_MEM_ROOMS] == rg_budget_size(q) &&
	      b.used == b.by[0] + b.by[1] + b.by[2] + b.by[3]);
	rg_budget_free(&b, RG_MEM_SESSIONS, p);
	rg_budget_free(&b, RG_MEM_ROOMS, q);
	CHECK(b.used == 0 && b.by[RG_MEM_SESSIONS] == 0 && b.by[RG_MEM_ROOMS] == 0);
	CHECK(!rg_budget_over(&b) && !rg_budget_over(NULL));
	b.limit = 1;
	CHECK(!rg_budget_over(&b));
	p = rg_budget_malloc(&b, RG_MEM_ANSWERS, 1);
	CHECK(rg_budget_over(&b));
	rg_budget_free(&b, RG_MEM_ANSWERS, p);
	/* without a budget they are the plain functions */
	p = rg_budget_realloc(NULL, RG_MEM_ANSWERS, rg_budget_malloc(NULL, RG_MEM_ANSWERS, 8), 16);
	CHECK(p != NULL);
	rg_budget_free(NULL, RG_MEM_ANSWERS, p);
}

/* The brute-force oldest seq of the history: the last `history` messages within the
 * last history_bytes, the newest always. */
static uint64_t oldest_by_walk(const struct rg_room *room)
{
	uint64_t bytes = 0, s = room->last_seq, kept = 0;

	for (; s >= rg_room_first_seq(room) && s >= 1; s--) {
		const struct rg_msg *m = rg_room_get(room, s);
		bytes += rg_msg_weight(m);
		if (kept && (kept >= room->conf->history || bytes > room->conf->history_bytes))
			break;
		kept++;
	}
	return s + 1;
}

static void test_history_bytes(void)
{
	struct rg_room_conf rc = {.name = "h", .history = 50, .history_bytes = 4096};
	struct rg_room *room = rg_room_new("h", &rc, NULL);
	struct rg_sub sub;
	uint64_t sizes[] = {10, 300, 1000, 50, 2000, 7, 900, 3000, 20, 5000, 1, 400};

	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			CHECK(publish(room, sizes[i]) == 0);
			uint64_t stored =
				room->bytes -
				(rg_room_get(room, rg_room_first_seq(room))->end_bytes -
				 rg_msg_weight(rg_room_get(room, rg_room_first_seq(room))));
			/* without subscribers nothing is kept past the history */
			CHECK(rg_room_first_seq(room) == rg_room_oldest_seq(room));
			CHECK(rg_room_oldest_seq(room) == oldest_by_walk(room));
			CHECK(room->count == 1 || stored <= rc.history_bytes);
			CHECK(room->count <= rc.history);
		}
	/* a message larger than the cap is kept alone: the newest always is */
	CHECK(publish(room, 5000) == 0 && room->count == 1);

	/* a subscriber's owed messages stay past history_bytes (up to keep_bytes) but the
	 * history stops at the cap: the search agrees with the walk */
	room->keep_bytes = 1 << 20;
	rg_sub_attach(&sub, room, wake, NULL);
	for (int i = 0; i < 40; i++)
		CHECK(publish(room, 100 + 37 * (size_t)i) == 0);
	CHECK(room->count == 40 && rg_room_first_seq(room) == sub.next_seq);
	CHECK(rg_room_oldest_seq(room) > rg_room_first_seq(room));
	CHECK(rg_room_oldest_seq(room) == oldest_by_walk(room));
	rg_sub_detach(&sub);
	rg_room_free(room);
}

static void test_room_over_budget(void)
{
	struct rg_budget b = {0};
	struct rg_room_conf rc = {.name = "r", .history = 4};
	struct rg_room *room = rg_room_new("r", &rc, &b);

	CHECK(room && b.by[RG_MEM_ROOMS] > sizeof(*room));
	CHECK(publish(room, 1000) == 0 && b.by[RG_MEM_MESSAGES] > 2000);
	b.limit = b.used; /* over from here */
	/* the history is not full: a message would grow the room */
	CHECK(publish(room, 1000) == -ENOBUFS && room->last_seq == 1 && room->count == 1);
	b.limit = 0;
	for (int i = 0; i < 3; i++)
		CHECK(publish(room, 1000) == 0);
	CHECK(room->count == 4);
	uint64_t full = b.used;
	b.limit = full;
	/* full: each message pushes out one as large, or larger */
	CHECK(publish(room, 1000) == 0 && room->count == 4 && b.used == full);
	CHECK(publish(room, 10) == 0 && b.used < full);
	/* under the limit a message goes in, whatever it takes: the budget is crossed by
	 * at most one message */
	b.limit = b.used + 1;
	CHECK(publish(room, 3000) == 0 && b.used > b.limit);
	/* over it, not one that takes more than the oldest gives back */
	full = b.used;
	CHECK(publish(room, 6000) == -ENOBUFS && room->last_seq == 7 && b.used == full);
	rg_room_free(room);
	CHECK(b.used == 0 && b.by[RG_MEM_MESSAGES] == 0 && b.by[RG_MEM_ROOMS] == 0);
}

static void test_registry_reclaims(void)
{
	struct rg_config cfg = fx_cfg;
	struct rg_registry reg;
	struct rg_room *r[6];
	char name[16];
	struct rg_sub sub;

	cfg.max_rooms = 100;
	CHECK(rg_registry_init(&reg, &cfg) == 0);
	/* pattern rooms p:0..p:4, each with a message, none with a subscriber */
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "p:%d", i);
		CHECK(rg_registry_get(&reg, name, strlen(name), 1, &r[i]) == 0);
		CHECK(publish(r[i], 1000) == 0);
	}
	rg_sub_attach(&sub, r[1], wake, NULL); /* p:1 is in use */
	uint64_t per_room = reg.mem.used / 8;  /* "a", "big", "srv" and five pattern rooms */
	reg.mem.limit = reg.mem.used - 2 * per_room;
	/* a publish makes way first: the least recently used idle rooms go (p:0, p:2),
	 * never the one published to, nor one in use */
	uint64_t seq;
	CHECK(rg_registry_publish(&reg, r[4], "1", 1, NULL, &seq) == 0);
	CHECK(reg.reclaimed >= 2 && !rg_budget_over(&reg.mem));
	CHECK(rg_registry_get(&reg, "p:0", 3, 0, &r[5]) == -ENOENT);
	CHECK(rg_registry_get(&reg, "p:1", 3, 0, &r[5]) == 0 && r[5] == r[1]);
	CHECK(rg_registry_get(&reg, "p:4", 3, 0, &r[5]) == 0);
	/* only rooms in use and configured ones are left: new work is refused */
	reg.mem.limit = 1;
	CHECK(rg_registry_overloaded(&reg, NULL));
	CHECK(rg_registry_get(&reg, "p:1", 3, 0, &r[5]) == 0);
	CHECK(rg_registry_get(&reg, "p:9", 3, 1, &r[5]) == -ENOBUFS);
	CHECK(rg_registry_publish(&reg, r[1], "1", 1, NULL, &seq) == -ENOBUFS);
	const char *why;
	CHECK(rg_err_room(-ENOBUFS, &why) == RG_E_OVERLOADED && strstr(why, "memory_mb"));
	reg.mem.limit = 0;
	CHECK(!rg_registry_overloaded(&reg, NULL));
	rg_sub_detach(&sub);
	rg_registry_cleanup(&reg);
	CHECK(reg.mem.used == 0);
}

/* A session's subscriptions, identity, stream id and queued answers count, and all of
 * it is given back by the end. */
static void test_session_counts(void)
{
	struct rg_registry reg;
	struct rg_session s, t;
	int flags;

	CHECK(rg_registry_init(&reg, &fx_cfg) == 0);
	uint64_t rooms = reg.mem.used;
	rg_session_init(&s, &reg, RG_FMT_WS, wake, NULL);
	rg_session_init(&t, &reg, RG_FMT_SSE, wake, NULL);
	const char *msgs[] = {"{\"type\":\"join\",\"room\":\"a\",\"name\":\"ann\"}",
			      "{\"type\":\"join\",\"room\":\"p:x\"}",
			      "{\"type\":\"publish\",\"room\":\"a\",\"data\":[1,2,3]}"};
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
		CHECK(rg_session_handle(&s, msgs[i], strlen(msgs[i])) == 0);
	CHECK(reg.mem.by[RG_MEM_SESSIONS] > 0 && reg.mem.by[RG_MEM_ANSWERS] > 0);
	CHECK(reg.mem.by[RG_MEM_MESSAGES] > 0);
	struct rg_join j = {.room = "a", .len = 1, .since = -1};
	CHECK(rg_session_join(&t, &j) == 0 && rg_session_publish_token(&t) == 0);
	drain(&s, &flags);
	CHECK(reg.mem.by[RG_MEM_ANSWERS] > 0); /* t's stream event */
	drain(&t, &flags);
	CHECK(reg.mem.by[RG_MEM_ANSWERS] == 0);
	rg_session_cleanup(&s);
	rg_session_cleanup(&t);
	CHECK(reg.mem.by[RG_MEM_SESSIONS] == 0 && reg.mem.by[RG_MEM_ANSWERS] == 0);
	rg_registry_cleanup(&reg);
	CHECK(reg.mem.used == 0);
	CHECK(rooms > 0);
}

int main(void)
{
	test_counts();
	test_history_bytes();
	test_room_over_budget();
	test_registry_reclaims();
	test_session_counts();
	return check_done("budget");
}
