/* Rooms, rings, cursors and the registry: the delivery queue without any transport. */
#include "../check.h"
#include "fixtures.h"

#include "../../../gateway/auth.h"
#include "../../../gateway/registry.h"

#include <errno.h>
#include <stdlib.h>

static int wakes[2000];

static void wake(void *owner)
{
	wakes[(int *)owner - wakes]++;
}

static uint64_t publish(struct rg_room *room, const char *data)
{
	uint64_t seq = 0;
	CHECK(rg_room_publish(room, data, strlen(data), NULL, &seq) == 0);
	return seq;
}

static void test_message_encoding(void)
{
	struct rg_msg *m = rg_msg_new("lobby", NULL, 7, 1234, "{\"t\":1}", 7, NULL);
	const char json[] = "{\"type\":\"message\",\"room\":\"lobby\",\"seq\":7,\"ts\":1234,"
			    "\"data\":{\"t\":1}}";
	CHECK(m && m->json_len == strlen(json) && !memcmp(m->json, json, m->json_len));
	CHECK(m->ws_len == 2 + strlen(json) && m->ws[0] == 0x81 && m->ws[1] == strlen(json));
	CHECK(!memcmp(m->ws + 2, json, strlen(json)));
	char sse[256];
	snprintf(sse, sizeof(sse), "id: 7\nevent: message\ndata: %s\n\n", json);
	CHECK(m->sse_len == strlen(sse) && !memcmp(m->sse, sse, m->sse_len));
	CHECK(m->sse_id_len == strlen("id: 7\n"));
	CHECK(rg_msg_ref(m) == m && m->refs == 2);
	rg_msg_unref(m);
	rg_msg_unref(m);

	/* 126..65535 bytes: 16-bit length; beyond: 64-bit length */
	char *big = malloc(70000);
	memset(big, '1', 70000);
	m = rg_msg_new("r", NULL, 1, 0, big, 200, NULL);
	CHECK(m->ws[1] == 126 && ((m->ws[2] << 8) | m->ws[3]) == (int)m->json_len);
	rg_msg_unref(m);
	m = rg_msg_new("r", NULL, 1, 0, big, 70000, NULL);
	CHECK(m->ws[1] == 127 && m->ws_len == 10 + m->json_len);
	size_t len = 0;
	for (int i = 0; i < 8; i++)
		len = (len << 8) | m->ws[2 + i];
	CHECK(len == m->json_len);
	rg_msg_unref(m);
	free(big);
}

static void test_ring_wrap_and_lag(void)
{
	struct rg_room *room = rg_room_new("a", &fx_rooms[0], NULL); /* history 4 */
	struct rg_sub early, late;
	const struct rg_msg *m;

	rg_sub_attach(&early, room, wake, &wakes[0]);
	CHECK(rg_sub_peek(&early, &m) == RG_SUB_IDLE);
	for (int i = 1; i <= 10; i++)
		CHECK(publish(room, "1") == (uint64_t)i);
	CHECK(room->count == 4 && room->ring_cap == 4 && rg_room_oldest_seq(room) == 7);
	/* early never read: seq 1 was overwritten long ago */
	CHECK(rg_sub_peek(&early, &m) == RG_SUB_LAGGED);

	rg_sub_attach(&late, room, wake, &wakes[1]);
	CHECK(late.next_seq == 11);
	CHECK(publish(room, "2") == 11);
	CHECK(rg_sub_peek(&late, &m) == RG_SUB_READY && m->seq == 11);
	rg_sub_advance(&late);
	CHECK(rg_sub_peek(&late, &m) == RG_SUB_IDLE);

	/* a reader that keeps up across many wraps never lags */
	for (int i = 0; i < 100; i++) {
		uint64_t s = publish(room, "3");
		CHECK(rg_sub_peek(&late, &m) == RG_SUB_READY && m->seq == s);
		rg_sub_advance(&late);
	}
	/* exactly history behind is still fine; one more is lag */
	for (int i = 0; i < 4; i++)
		publish(room, "4");
	CHECK(rg_sub_peek(&late, &m) == RG_SUB_READY && m->seq == late.next_seq);
	publish(room, "5");
	CHECK(rg_sub_peek(&late, &m) == RG_SUB_LAGGED);

	rg_sub_detach(&early);
	rg_sub_detach(&late);
	CHECK(room->nsubs == 0 && room->subs == NULL);
	rg_room_free(room);
}

static void test_ring_growth(void)
{
	struct rg_room *room = rg_room_new("big", &fx_rooms[1], NULL); /* history 100 */
	struct rg_sub sub;
	const struct rg_msg *m;
	char data[16];

	rg_sub_attach(&sub, room, wake, &wakes[0]);
	for (int i = 1; i <= 150; i++) {
		snprintf(data, sizeof(data), "%d", i);
		publish(room, data);
		if (i == 10)
			CHECK(room->ring_cap == 16);
		if (i == 50)
			CHECK(room->ring_cap == 64);
		/* growth re-lays the ring: every stored message still where its seq says */
		if (i == 70) {
			CHECK(room->ring_cap == 100);
			for (int s = 1; s <= 70; s++) {
				CHECK(rg_sub_peek(&sub, &m) == RG_SUB_READY &&
				      m->seq == (uint64_t)s);
				snprintf(data, sizeof(data), "%d}", s);
				CHECK(m->json_len >= strlen(data) &&
				      !memcmp(m->json + m->json_len - strlen(data), data,
					      strlen(data)));
				rg_sub_advance(&sub);
			}
		}
	}
	CHECK(room->ring_cap == 100 && room->count == 100 && rg_room_oldest_seq(room) == 51);
	CHECK(rg_sub_peek(&sub, &m) == RG_SUB_READY && m->seq == 71);
	rg_sub_detach(&sub);
	rg_room_free(room);
}

static void test_fanout_wakes_once(void)
{
	struct rg_room *room = rg_room_new("big", &fx_rooms[1], NULL);
	static struct rg_sub subs[1000];
	const struct rg_msg *m, *first = NULL;

	memset(wakes, 0, sizeof(wakes));
	for (int i = 0; i < 1000; i++)
		rg_sub_attach(&subs[i], room, wake, &wakes[i]);
	CHECK(room->nsubs == 1000);
	publish(room, "\"x\"");
	publish(room, "\"y\"");
	publish(room, "\"z\"");
	int once = 1, ordered = 1, shared = 1;
	for (int i = 0; i < 1000; i++) {
		once &= wakes[i] == 1;
		for (uint64_t s = 1; s <= 3; s++) {
			ordered &= rg_sub_peek(&subs[i], &m) == RG_SUB_READY && m->seq == s;
			if (s == 1 && !first)
				first = m;
			if (s == 1)
				shared &= m == first; /* one stored message, not a copy each */
			rg_sub_advance(&subs[i]);
		}
		ordered &= rg_sub_peek(&subs[i], &m) == RG_SUB_IDLE;
	}
	CHECK(once);
	CHECK(ordered);
	CHECK(shared);
	/* drained subscribers are disarmed: the next publish wakes each once more */
	publish(room, "1");
	once = 1;
	for (int i = 0; i < 1000; i++)
		once &= wakes[i] == 2;
	CHECK(once);
	for (int i = 0; i < 1000; i++)
		rg_sub_detach(&subs[i]);
	rg_room_free(room);
}

static void test_registry(void)
{
	struct rg_registry reg;
	struct rg_room *r, *r2;
	char *doc;

	CHECK(rg_registry_init(&reg, &fx_cfg) == 0);
	CHECK(reg.nrooms == 3);
	CHECK(rg_registry_get(&reg, "a", 1, 0, &r) == 0 && !strcmp(r->name, "a"));
	CHECK(rg_registry_get(&reg, "nope", 4, 1, &r) == -ENOENT);
	CHECK(rg_registry_get(&reg, "bad room", 8, 1, &r) == -EINVAL);
	CHECK(rg_registry_get(&reg, "a\0b", 3, 1, &r) == -EINVAL);
	CHECK(rg_registry_get(&reg, "p:x", 3, 0, &r) == -ENOENT);
	CHECK(rg_registry_conf_for(&reg, "p:x", 3) == &fx_rooms[3]);
	CHECK(rg_registry_conf_for(&reg, "q", 1) == NULL);
	/* a name under a pattern's prefix that is no room name has no entry */
	char longname[200];
	memset(longname, 'x', sizeof(longname));
	memcpy(longname, "p:", 2);
	CHECK(rg_registry_conf_for(&reg, longname, sizeof(longname)) == NULL);
	CHECK(rg_registry_conf_for(&reg, longname, RG_ROOM_NAME_MAX) == &fx_rooms[3]);
	CHECK(rg_registry_conf_for(&reg, "p:a b", 5) == NULL);
	CHECK(rg_registry_get(&reg, "p:x", 3, 1, &r) == 0 && r->conf == &fx_rooms[3]);
	CHECK(rg_registry_get(&reg, "p:x", 3, 1, &r2) == 0 && r2 == r);
	CHECK(rg_registry_get(&reg, "p:y", 3, 1, &r) == 0);
	CHECK(rg_registry_get(&reg, "p:z", 3, 1, &r) == 0);
	CHECK(reg.nrooms == 6);

	doc = rg_registry_describe(&reg, &rg_identity_anonymous);
#define ROOM(n, pub, h)                                                                       \
	"{\"name\":\"" n "\",\"subscribe\":\"anyone\",\"publish\":\"" pub "\",\"history\":" h \
	",\"subscribers\":0,\"last_seq\":0}"
#define PATTERNS                                                                              \
	"\"patterns\":[{\"pattern\":\"p:*\",\"subscribe\":\"anyone\",\"publish\":\"anyone\"," \
	"\"bind\":\"none\",\"history\":4,\"rooms\":3}]}"
	CHECK_STR(doc,
		  "{\"rooms\":[" ROOM("a", "anyone", "4") "," ROOM("big", "anyone", "100") "," ROOM(
			  "srv", "server",
			  "4") "," ROOM("p:x", "anyone",
					"4") "," ROOM("p:y", "anyone",
						      "4") "," ROOM("p:z", "anyone",
								    "4") "]," PATTERNS);
	free(doc);
	/* a room is listed to those who may subscribe to it */
	fx_rooms[0].subscribe = RG_POLICY_SERVER;
	doc = rg_registry_describe(&reg, &rg_identity_anonymous);
	CHECK(doc && !strstr(doc, "\"name\":\"a\"") && strstr(doc, "\"name\":\"big\""));
	free(doc);
	struct rg_identity backend = {.authenticated = 1, .server = 1};
	doc = rg_registry_describe(&reg, &backend);
	CHECK(doc && strstr(doc, "{\"name\":\"a\",\"subscribe\":\"server\""));
	free(doc);
	fx_rooms[0].subscribe = RG_POLICY_ANYONE;
#undef ROOM
#undef PATTERNS

	/* sweep: idle pattern rooms go, pattern rooms with a subscriber and named rooms stay */
	struct rg_sub sub;
	rg_registry_get(&reg, "p:x", 3, 1, &r);
	rg_sub_attach(&sub, r, wake, &wakes[0]);
	int64_t now = rg_now_ms();
	CHECK(rg_registry_sweep(&reg, now) == 0); /* idle for less than 1 s */
	CHECK(rg_registry_sweep(&reg, now + 1500) == 2);
	CHECK(reg.nrooms == 4);
	CHECK(rg_registry_get(&reg, "p:y", 3, 0, &r2) == -ENOENT);
	CHECK(rg_registry_get(&reg, "p:x", 3, 0, &r2) == 0 && r2 == r);
	CHECK(rg_registry_get(&reg, "a", 1, 0, &r2) == 0);
	rg_sub_detach(&sub);
	CHECK(rg_registry_sweep(&reg, rg_now_ms() + 1500) == 1);
	rg_registry_cleanup(&reg);
}

/* max_rooms (6 here, 3 of them named) is never a wall that idle rooms hold up. */
static void test_registry_room_slots(void)
{
	struct rg_registry reg;
	struct rg_room *x, *y, *z, *r;
	struct rg_sub sx, sy, sz;
	uint64_t seq;

	CHECK(rg_registry_init(&reg, &fx_cfg) == 0);
	/* a pattern room that never held a message goes with its last subscriber */
	CHECK(rg_registry_get(&reg, "p:x", 3, 1, &x) == 0);
	rg_sub_attach(&sx, x, wake, &wakes[0]);
	rg_sub_detach(&sx);
	rg_registry_release(&reg, x);
	CHECK(reg.nrooms == 3 && rg_registry_get(&reg, "p:x", 3, 0, &r) == -ENOENT);
	/* one that did stays, for its history */
	CHECK(rg_registry_get(&reg, "p:x", 3, 1, &x) == 0);
	CHECK(rg_room_publish(x, "1", 1, NULL, &seq) == 0);
	rg_sub_attach(&sx, x, wake, &wakes[0]);
	rg_sub_detach(&sx);
	rg_registry_release(&reg, x);
	CHECK(rg_registry_get(&reg, "p:x", 3, 0, &r) == 0 && r == x);
	/* at the limit, the room idle the longest makes way; a used one moves back */
	CHECK(rg_registry_get(&reg, "p:y", 3, 1, &y) == 0);
	CHECK(rg_registry_get(&reg, "p:z", 3, 1, &z) == 0);
	CHECK(rg_room_publish(x, "2", 1, NULL, &seq) == 0); /* x: used last */
	CHECK(reg.nrooms == 6 && reg.evicted == 0);
	CHECK(rg_registry_get(&reg, "p:w", 3, 1, &r) == 0);
	CHECK(reg.nrooms == 6 && reg.evicted == 1);
	CHECK(rg_registry_get(&reg, "p:y", 3, 0, &r) == -ENOENT);
	CHECK(rg_registry_get(&reg, "p:x", 3, 0, &r) == 0);
	/* rooms with subscribers are never dropped: then the limit holds */
	CHECK(rg_registry_get(&reg, "p:z", 3, 0, &z) == 0);
	CHECK(rg_registry_get(&reg, "p:w", 3, 0, &r) == 0);
	rg_sub_attach(&sx, x, wake, &wakes[0]);
	rg_sub_attach(&sz, z, wake, &wakes[1]);
	rg_sub_attach(&sy, r, wake, &wakes[2]);
	CHECK(rg_registry_get(&reg, "p:v", 3, 1, &r) == -ENOSPC);
	CHECK(rg_registry_sweep(&reg, rg_now_ms() + 5000) == 0);
	rg_sub_detach(&sz);
	CHECK(rg_registry_get(&reg, "p:v", 3, 1, &r) == 0 && reg.evicted == 2);
	CHECK(rg_registry_get(&reg, "p:z", 3, 0, &r) == -ENOENT);
	rg_sub_detach(&sx);
	rg_sub_detach(&sy);
	rg_registry_cleanup(&reg);
}

static int lags[4];

static void lagged(void *owner)
{
	lags[(int *)owner - wakes]++;
}

/* Messages the engine ordered (cluster.redis): stored with their seq, a repeat
 * ignored, a gap lagging who was owed what is missing; a new epoch starts rooms over. */
static void test_apply_and_rebase(void)
{
	struct rg_registry reg;
	struct rg_room *room;
	struct rg_sub a, b;
	const struct rg_msg *m;
	uint64_t skipped;

	CHECK(rg_registry_init(&reg, &fx_cfg) == 0);
	CHECK(rg_registry_get(&reg, "big", 3, 0, &room) == 0); /* history 100 */
	rg_sub_attach(&a, room, wake, &wakes[0]);
	a.lagged = lagged;
	/* a room that has had nothing learns where the order is: its subscriber joined
	 * at the live end, which is there */
	CHECK(rg_room_apply(room, 41, 1000, "1", 1, NULL, &skipped) == 0 && skipped == 0);
	CHECK(room->last_seq == 41 && rg_room_first_seq(room) == 41);
	CHECK(rg_sub_peek(&a, &m) == RG_SUB_READY && m->seq == 41 && m->ts_ms == 1000);
	rg_sub_advance(&a);
	CHECK(rg_room_apply(room, 42, 1001, "2", 1, "k", &skipped) == 0 && skipped == 0);
	/* heard twice (a resubscribe's overlap): ignored */
	CHECK(rg_room_apply(room, 42, 1001, "2", 1, "k", &skipped) == 1 && skipped == 0);
	CHECK(rg_room_apply(room, 40, 999, "0", 1, NULL, &skipped) == 1 && room->last_seq == 42);
	/* the local publish path sees the engine's keys too */
	uint64_t seq = 0;
	CHECK(rg_room_publish(room, "2", 1, "k", &seq) == 1 && seq == 42);
	CHECK(rg_sub_peek(&a, &m) == RG_SUB_READY && m->seq == 42);
	rg_sub_advance(&a);
	rg_sub_attach(&b, room, wake, &wakes[1]);
	b.lagged = lagged;
	CHECK(b.next_seq == 43);
	/* 43..44 never came: the history before the gap goes, b was owed them */
	CHECK(rg_room_apply(room, 45, 1002, "5", 1, NULL, &skipped) == 0 && skipped == 2);
	CHECK(room->last_seq == 45 && rg_room_first_seq(room) == 45);
	CHECK(rg_sub_peek(&b, &m) == RG_SUB_LAGGED);
	rg_sub_detach(&b);

	/* Redis lost its data: a new epoch, the room empty, its subscriber lagged */
	memset(lags, 0, sizeof(lags));
	char epoch[RG_EPOCH_LEN + 1];
	rg_registry_new_epoch(epoch);
	CHECK(strlen(epoch) == RG_EPOCH_LEN &&
	      strspn(epoch, "0123456789abcdefghijklmnopqrstuv") == RG_EPOCH_LEN);
	CHECK(rg_registry_rebase(&reg, epoch) == 1);
	CHECK(!strcmp(reg.epoch, epoch) && !strcmp(room->epoch, epoch));
	CHECK(room->last_seq == 0 && room->count == 0 && lags[0] == 1);
	CHECK(rg_room_apply(room, 1, 2000, "n", 1, NULL, &skipped) == 0 && skipped == 0);
	CHECK(rg_registry_rebase(&reg, epoch) == 1); /* a room with messages again */
	CHECK(rg_registry_rebase(&reg, epoch) == 0); /* none now */
	rg_sub_detach(&a);
	rg_registry_cleanup(&reg);
}

int main(void)
{
	test_message_encoding();
	test_ring_wrap_and_lag();
	test_ring_growth();
	test_fanout_wakes_once();
	test_registry();
	test_registry_room_slots();
	test_apply_and_rebase();
	return check_done("room");
}
