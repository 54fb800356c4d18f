/* Sessions: client messages in, answers and messages out, exactly as a transport
 * would see them (WebSocket frames, SSE event blocks), with the limits enforced. */
#include "../check.h"
#include "drain.h"
#include "fixtures.h"

#include "../../../gateway/session.h"

#include <errno.h>
#include <stdlib.h>

static int woken;
static struct rg_registry reg;
static unsigned char buf[1 << 16];

static void wake(void *owner)
{
	(void)owner;
	woken++;
}

static int join(struct rg_session *s, const char *room, int64_t since)
{
	struct rg_join j = {.room = room, .len = strlen(room), .since = since};
	int rc = rg_session_join(s, &j);
	if (!rc && j.gap_from)
		rg_session_gap(s, j.ss->sub.room, j.gap_from, j.gap_to);
	return rc ? -(int)j.err - 1 : 0;
}

static int handle(struct rg_session *s, const char *text)
{
	return rg_session_handle(s, text, strlen(text));
}

/* Drains the session and returns every WebSocket frame's payload, one per line. */
static char *drain_ws(struct rg_session *s)
{
	int flags;
	char *out = drain(s, &flags);

	CHECK(!(flags & RG_FILL_LAGGED));
	return out;
}

static void test_join_publish_fanout(void)
{
	struct rg_session a, b;
	rg_session_init(&a, &reg, RG_FMT_WS, wake, NULL);
	rg_session_init(&b, &reg, RG_FMT_WS, wake, NULL);

	woken = 0;
	CHECK(handle(&a, "{\"type\":\"join\",\"room\":\"big\",\"id\":\"1\"}") == 0);
	CHECK(woken == 1);
	char want[256];
	snprintf(want, sizeof(want),
		 "{\"type\":\"joined\",\"room\":\"big\",\"seq\":0,\"epoch\":\"%s\",\"id\":\"1\"}\n",
		 reg.epoch);
	CHECK(strlen(reg.epoch) == RG_EPOCH_LEN);
	CHECK_STR(drain_ws(&a), want);
	/* a connection of a few rooms has no room index: it walks its list */
	CHECK(a.idx == NULL && rg_session_joined(&a, "big", 3) == a.subs);
	CHECK(handle(&b, "{\"type\":\"join\",\"room\":\"big\"}") == 0);
	CHECK(handle(&b, "{\"type\":\"join\",\"room\":\"big\"}") ==
	      0); /* again: no second cursor */
	CHECK(b.nsubs == 1);
	snprintf(want, sizeof(want),
		 "{\"type\":\"joined\",\"room\":\"big\",\"seq\":0,\"epoch\":\"%s\"}\n"
		 "{\"type\":\"joined\",\"room\":\"big\",\"seq\":0,\"epoch\":\"%s\"}\n",
		 reg.epoch, reg.epoch);
	CHECK_STR(drain_ws(&b), want);

	CHECK(handle(&a, "{\"type\":\"publish\",\"room\":\"big\",\"data\":{\"t\": "
			 "\"hi\"},\"id\":\"m\"}") == 0);
	char *got = drain_ws(&a);
	CHECK(!strncmp(got,
		       "{\"type\":\"ack\",\"room\":\"big\",\"seq\":1,\"id\":\"m\"}\n"
		       "{\"type\":\"message\",\"room\":\"big\",\"seq\":1,\"ts\":",
		       strlen("{\"type\":\"ack\",\"room\":\"big\",\"seq\":1,\"id\":\"m\"}\n"
			      "{\"type\":\"message\",\"room\":\"big\",\"seq\":1,\"ts\":")));
	CHECK(strstr(got, ",\"data\":{\"t\":\"hi\"}}\n") != NULL);
	got = drain_ws(&b);
	CHECK(!strncmp(got, "{\"type\":\"message\",\"room\":\"big\",\"seq\":1,\"ts\":", 44));

	CHECK(handle(&b, "{\"type\":\"leave\",\"room\":\"big\"}") == 0);
	CHECK_STR(drain_ws(&b), "{\"type\":\"left\",\"room\":\"big\"}\n");
	CHECK(handle(&a, "{\"type\":\"publish\",\"room\":\"big\",\"data\":2}") == 0);
	CHECK_STR(drain_ws(&b), ""); /* left: nothing more */
	CHECK(strstr(drain_ws(&a), "\"seq\":2") != NULL);

	rg_session_cleanup(&a);
	rg_session_cleanup(&b);
	struct rg_room *big;
	rg_registry_get(&reg, "big", 3, 0, &big);
	CHECK(big->nsubs == 0);
}

/* limits.max_json_depth (32 here) bounds data; the message object is not counted. */
static void test_json_depth(void)
{
	struct rg_session s;
	char msg[256];

	rg_session_init(&s, &reg, RG_FMT_WS, wake, NULL);
	CHECK(handle(&s, "{\"type\":\"join\",\"room\":\"big\"}") == 0);
	drain_ws(&s);
	for (int depth = 31; depth <= 33; depth++) {
		int k = snprintf(msg, sizeof(msg),
				 "{\"type\":\"publish\",\"room\":\"big\",\"data\":");
		memset(msg + k, '[', (size_t)depth);
		memset(msg + k + depth, ']', (size_t)depth);
		strcpy(msg + k + 2 * depth, "}");
		CHECK(handle(&s, msg) == 0);
		char *got = drain_ws(&s);
		if (depth <= 32)
			CHECK(!strncmp(got, "{\"type\":\"ack\"", 13));
		else
			CHECK_STR(got, "{\"type\":\"error\",\"code\":\"bad_request\",\"message\":"
				       "\"nested deeper than limits.max_json_depth\"}\n");
	}
	rg_session_cleanup(&s);
}

/* limits.room_creation_rate_per_connection: new pattern rooms only, a minute's burst. */
static void test_room_creation_rate(void)
{
	struct rg_session s, t;

	fx_cfg.room_rate_per_connection = 2;
	rg_session_init(&s, &reg, RG_FMT_WS, wake, NULL);
	rg_session_init(&t, &reg, RG_FMT_WS, wake, NULL);
	CHECK(handle(&s, "{\"type\":\"join\",\"room\":\"p:r1\"}") == 0);
	CHECK(handle(&s, "{\"type\":\"join\",\"room\":\"p:r2\"}") == 0);
	CHECK(handle(&s, "{\"type\":\"leave\",\"room\":\"p:r2\"}") == 0);
	CHECK(handle(&s, "{\"type\":\"join\",\"room\":\"p:r3\",\"id\":\"x\"}") == 0);
	char *got = drain_ws(&s);
	const char *err = strstr(got, "{\"type\":\"error\",\"code\":\"rate_limited\"");
	CHECK(err && strstr(err, "\"retry_after_ms\":") && strstr(err, "\"id\":\"x\""));
	CHECK(rg_session_joined(&s, "p:r3", 4) == NULL);
	struct rg_room *r;
	CHECK(rg_registry_get(&reg, "p:r3", 4, 0, &r) == -ENOENT); /* nothing left behind */
	/* a room that is alive is joined whatever the bucket; another connection has its own */
	CHECK(handle(&s, "{\"type\":\"join\",\"room\":\"big\"}") == 0);
	CHECK(handle(&t, "{\"type\":\"join\",\"room\":\"p:r3\"}") == 0);
	drain_ws(&s);
	CHECK(!strncmp(drain_ws(&t), "{\"type\":\"joined\"", 16));
	rg_session_cleanup(&s);
	rg_session_cleanup(&t);
	fx_cfg.room_rate_per_connection = 0;
}

static void test_errors(void)
{
	static const struct {
		const char *in, *code;
	} cases[] = {
		{"nope", "bad_json"},
		{"[]", "bad_request"},
		{"{\"type\":\"dance\"}", "unknown_type"},
		{"{\"type\":\"join\",\"room\":\"zzz\"}", "unknown_room"},
		{"{\"type\":\"publish\",\"room\":\"zzz\",\"data\":1}", "unknown_room"},
		{"{\"type\":\"publish\",\"room\":\"srv\",\"data\":1}", "forbidden"},
		{"{\"type\":\"publish\",\"room\":\"a\",\"data\":1}", "not_joined"},
		{"{\"type\":\"publish\",\"room\":\"p:new\",\"data\":1}", "not_joined"},
		{"{\"type\":\"leave\",\"room\":\"a\"}", "not_joined"},
	};
	struct rg_session s;
	char want[256];

	rg_session_init(&s, &reg, RG_FMT_WS, wake, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK(handle(&s, cases[i].in) == 0);
		snprintf(want, sizeof(want), "{\"type\":\"error\",\"code\":\"%s\",", cases[i].code);
		char *got = drain_ws(&s);
		if (strncmp(got, want, strlen(want)))
			fprintf(stderr, "case %zu: %s -> %s", i, cases[i].in, got);
		CHECK(!strncmp(got, want, strlen(want)));
		CHECK(strchr(got, '\n') == got + strlen(got) - 1); /* exactly one answer */
	}
	/* the id comes back on errors too */
	CHECK(handle(&s, "{\"type\":\"join\",\"room\":\"zzz\",\"id\":\"q7\"}") == 0);
	CHECK(strstr(drain_ws(&s), "\"id\":\"q7\"}") != NULL);

	/* subscribing to a server room is fine; publishing to it is not */
	CHECK(handle(&s, "{\"type\":\"join\",\"room\":\"srv\"}") == 0);
	CHECK(handle(&s, "{\"type\":\"publish\",\"room\":\"srv\",\"data\":1}") == 0);
	CHECK(strstr(drain_ws(&s), "\"code\":\"forbidden\"") != NULL);

	/* max_rooms_per_connection = 3 */
	CHECK(handle(&s, "{\"type\":\"join\",\"room\":\"a\"}") == 0);
	CHECK(handle(&s, "{\"type\":\"join\",\"room\":\"p:1\"}") == 0);
	CHECK(handle(&s, "{\"type\":\"join\",\"room\":\"big\"}") == 0);
	char *got = drain_ws(&s);
	CHECK(strstr(got, "\"joined\",\"room\":\"p:1\"") != NULL);
	CHECK(strstr(got, "\"code\":\"limit_exceeded\"") != NULL);
	CHECK(s.nsubs == 3);

	CHECK(rg_session_refuse(&s, RG_E_TOO_LARGE, "too big") == 0);
	CHECK_STR(drain_ws(&s),
		  "{\"type\":\"error\",\"code\":\"too_large\",\"message\":\"too big\"}\n");
	rg_session_cleanup(&s);
}

static int dooms;

static void doom(void *owner)
{
	(void)owner;
	dooms++;
}

static void test_requests_faster_than_reads_pause(void)
{
	struct rg_session s;
	size_t len;
	int n = 0;

	rg_session_init(&s, &reg, RG_FMT_WS, wake, NULL);
	while (!rg_session_paused(&s) && n < 100000) {
		CHECK(handle(&s, "{\"type\":\"ping\"}") == 0);
		n++;
	}
	/* every request is answered, none refused: the transport stops reading instead */
	CHECK(rg_session_paused(&s) && s.nans == (unsigned)n && !s.overflow);
	CHECK(s.ans_bytes >= RG_SESSION_PAUSE_BYTES && s.ans_bytes < RG_SESSION_PAUSE_BYTES + 64);
	CHECK(rg_session_refuse(&s, RG_E_TOO_LARGE, "x") == 0);
	CHECK(rg_session_fill(&s, buf, 4096, 0, &len) == RG_FILL_MORE && len > 4000);
	CHECK(!rg_session_paused(&s));
	rg_session_cleanup(&s);
	CHECK(s.nans == 0 && s.ans_head == NULL && s.ans_bytes == 0);

	/* a transport that cannot pause: answers stop at twice the budget */
	struct rg_config cfg = fx_cfg;
	struct rg_registry r2;
	cfg.max_pending_bytes = 16 * 1024;
	rg_registry_init(&r2, &cfg);
	rg_session_init(&s, &r2, RG_FMT_WS, wake, NULL);
	s.doom = doom;
	dooms = n = 0;
	while (!s.overflow && n < 100000) {
		CHECK(handle(&s, "{\"type\":\"ping\"}") == 0 || s.overflow);
		n++;
	}
	CHECK(s.overflow && dooms == 1 && s.ans_bytes <= 32 * 1024 && s.ans_bytes > 30 * 1024);
	CHECK(rg_session_fill(&s, buf, sizeof(buf), 0, &len) == RG_FILL_LAGGED);
	rg_session_cleanup(&s);
	rg_registry_cleanup(&r2);
}

static void test_batching_and_caps(void)
{
	struct rg_session s, pub;
	size_t len, total = 0;
	int flags, writes = 0;

	rg_session_init(&s, &reg, RG_FMT_WS, wake, NULL);
	rg_session_init(&pub, &reg, RG_FMT_WS, wake, NULL);
	handle(&s, "{\"type\":\"join\",\"room\":\"big\"}");
	handle(&pub, "{\"type\":\"join\",\"room\":\"big\"}");
	drain_ws(&s);
	for (int i = 0; i < 50; i++)
		handle(&pub, "{\"type\":\"publish\",\"room\":\"big\",\"data\":\"0123456789\"}");
	drain_ws(&pub);

	/* one fill takes everything that fits: 50 messages in one write */
	flags = rg_session_fill(&s, buf, sizeof(buf), 0, &len);
	CHECK(flags == 0 && len > 50 * 60);
	for (int i = 0; i < 50; i++)
		handle(&pub, "{\"type\":\"publish\",\"room\":\"big\",\"data\":\"0123456789\"}");
	drain_ws(&pub);
	/* a small buffer: several writes, nothing lost or split */
	do {
		flags = rg_session_fill(&s, buf, 400, 0, &len);
		CHECK(len <= 400 && len > 0);
		total += len;
		writes++;
	} while (flags & RG_FILL_MORE);
	CHECK(writes > 10 && total > 50 * 60);
	/* max_items 1: one frame per write (WebSocket over HTTP/2) */
	handle(&pub, "{\"type\":\"publish\",\"room\":\"big\",\"data\":1}");
	handle(&pub, "{\"type\":\"publish\",\"room\":\"big\",\"data\":2}");
	CHECK(rg_session_fill(&s, buf, sizeof(buf), 1, &len) == RG_FILL_MORE);
	CHECK(len == 2u + buf[1]);
	CHECK(rg_session_fill(&s, buf, sizeof(buf), 1, &len) == 0);
	CHECK(len == 2u + buf[1] && strstr((char *)buf + 2, "\"data\":2}"));
	CHECK(rg_session_fill(&s, buf, sizeof(buf), 1, &len) == 0 && len == 0);
	/* a buffer smaller than one item is a caller bug, reported, not looped on */
	handle(&pub, "{\"type\":\"publish\",\"room\":\"big\",\"data\":3}");
	CHECK(rg_session_fill(&s, buf, 10, 0, &len) == -E2BIG);
	rg_session_cleanup(&s);
	rg_session_cleanup(&pub);
}

static void test_lag(void)
{
	struct rg_session ws, sse, pub;
	struct rg_room *a;
	size_t len;

	rg_session_init(&ws, &reg, RG_FMT_WS, wake, NULL);
	rg_session_init(&sse, &reg, RG_FMT_SSE, wake, NULL);
	rg_session_init(&pub, &reg, RG_FMT_WS, wake, NULL);
	ws.doom = sse.doom = doom;
	dooms = 0;
	handle(&ws, "{\"type\":\"join\",\"room\":\"a\"}");
	drain_ws(&ws);
	CHECK(join(&sse, "a", -1) == 0);
	handle(&pub, "{\"type\":\"join\",\"room\":\"a\"}");
	CHECK(rg_registry_get(&reg, "a", 1, 0, &a) == 0);
	/* A burst five times the history (4) within one loop pass is not lag: what the
	 * readers are still owed stays stored, and one fill delivers it all. */
	uint64_t first = a->last_seq + 1;
	for (int i = 0; i < 20; i++) {
		handle(&pub, "{\"type\":\"publish\",\"room\":\"a\",\"data\":0}");
		drain_ws(&pub);
	}
	CHECK(a->count == 20 && rg_room_oldest_seq(a) == first + 16 &&
	      rg_room_first_seq(a) == first);
	char *got = drain_ws(&ws);
	int frames = 0;
	for (char *p = got; (p = strchr(p, '\n')); p++)
		frames++;
	CHECK(frames == 20 && dooms == 0);
	/* Once read, nothing is kept past the history. */
	handle(&pub, "{\"type\":\"publish\",\"room\":\"a\",\"data\":0}");
	drain_ws(&pub);
	CHECK(rg_session_fill(&sse, buf, sizeof(buf), 0, &len) == 0 && len > 20 * 60);
	drain_ws(&ws);
	handle(&pub, "{\"type\":\"publish\",\"room\":\"a\",\"data\":0}");
	CHECK(a->count == 4);
	drain_ws(&ws);
	rg_session_fill(&sse, buf, sizeof(buf), 0, &len);
	/* Past the budget (64 KB owed) a reader that does not read has lagged: it is
	 * judged once, at once, and what it was owed is dropped. */
	for (int i = 0; i < 1000; i++) {
		handle(&pub, "{\"type\":\"publish\",\"room\":\"a\",\"data\":0}");
		drain_ws(&pub);
	}
	CHECK(dooms == 2 && ws.doomed && sse.doomed);
	CHECK(a->bytes - (rg_room_get(a, rg_room_first_seq(a))->end_bytes -
			  rg_msg_weight(rg_room_get(a, rg_room_first_seq(a)))) <=
	      65536);
	CHECK(rg_session_fill(&ws, buf, sizeof(buf), 0, &len) == RG_FILL_LAGGED && len == 0);
	CHECK_STR(ws.lagged, "a");
	CHECK(rg_session_fill(&sse, buf, sizeof(buf), 0, &len) == RG_FILL_LAGGED);
	CHECK(len == strlen("event: lagged\ndata: {\"room\":\"a\"}\n\n") &&
	      !memcmp(buf, "event: lagged\ndata: {\"room\":\"a\"}\n\n", len));
	/* lagged subscribers no longer hold messages back */
	handle(&pub, "{\"type\":\"publish\",\"room\":\"a\",\"data\":0}");
	CHECK(a->count == 4 && dooms == 2);
	rg_session_cleanup(&ws);
	rg_session_cleanup(&sse);
	rg_session_cleanup(&pub);
}

static void test_sse_ids(void)
{
	struct rg_session one, two, pub;
	size_t len;
	char expect[512];

	rg_session_init(&one, &reg, RG_FMT_SSE, wake, NULL);
	rg_session_init(&two, &reg, RG_FMT_SSE, wake, NULL);
	rg_session_init(&pub, &reg, RG_FMT_WS, wake, NULL);
	struct rg_room *big, *p;
	rg_registry_get(&reg, "big", 3, 0, &big);
	uint64_t base = big->last_seq;
	CHECK(join(&one, "big", -1) == 0);
	CHECK(join(&two, "p:s", -1) == 0);
	CHECK(join(&two, "big", -1) == 0);
	CHECK(join(&two, "nope", -1) == -(int)RG_E_UNKNOWN_ROOM - 1);
	rg_registry_get(&reg, "p:s", 3, 0, &p);
	handle(&pub, "{\"type\":\"join\",\"room\":\"big\"}");
	handle(&pub, "{\"type\":\"join\",\"room\":\"p:s\"}");
	handle(&pub, "{\"type\":\"publish\",\"room\":\"big\",\"data\":\"x\"}");
	handle(&pub, "{\"type\":\"publish\",\"room\":\"p:s\",\"data\":\"y\"}");
	drain_ws(&pub);

	CHECK(rg_session_fill(&one, buf, sizeof(buf), 0, &len) == 0);
	buf[len] = '\0';
	snprintf(expect, sizeof(expect), "id: %s/%llu\n", reg.epoch, (unsigned long long)base + 1);
	CHECK(!strncmp((char *)buf, expect, strlen(expect)));
	CHECK(strstr((char *)buf,
		     "\nevent: message\ndata: {\"type\":\"message\",\"room\":\"big\",") != NULL);

	/* two rooms: each event's id lists both cursors, in join order (p:s, big); the
	 * first fill starts with the first room */
	CHECK(rg_session_fill(&two, buf, sizeof(buf), 0, &len) == 0);
	buf[len] = '\0';
	snprintf(expect, sizeof(expect), "id: %s/p:s=1,big=%llu\n", reg.epoch,
		 (unsigned long long)base);
	char *first = strstr((char *)buf, expect);
	if (!first)
		fprintf(stderr, "two-room stream:\n%s\n", (char *)buf);
	snprintf(expect, sizeof(expect), "id: %s/p:s=1,big=%llu\n", reg.epoch,
		 (unsigned long long)base + 1);
	char *second = strstr((char *)buf, expect);
	CHECK(first && second && first < second);

	/* a buffer too small for one multi-room event: refused, never overrun (ASan) */
	handle(&pub, "{\"type\":\"publish\",\"room\":\"big\",\"data\":\"z\"}");
	drain_ws(&pub);
	unsigned char *tiny = malloc(20);
	CHECK(rg_session_fill(&two, tiny, 20, 0, &len) == -E2BIG);
	free(tiny);
	rg_session_cleanup(&one);
	rg_session_cleanup(&two);
	rg_session_cleanup(&pub);
}

static void test_resume(void)
{
	struct rg_session pub, r;
	char want[128];

	rg_session_init(&pub, &reg, RG_FMT_WS, wake, NULL);
	rg_session_init(&r, &reg, RG_FMT_WS, wake, NULL);
	handle(&pub, "{\"type\":\"join\",\"room\":\"big\"}");
	struct rg_room *big;
	rg_registry_get(&reg, "big", 3, 0, &big);
	uint64_t base = big->last_seq;
	for (int i = 0; i < 5; i++)
		handle(&pub, "{\"type\":\"publish\",\"room\":\"big\",\"data\":7}");
	drain_ws(&pub);

	/* since inside the ring: exactly what followed, after the joined answer */
	snprintf(want, sizeof(want), "{\"type\":\"join\",\"room\":\"big\",\"since\":%llu}",
		 (unsigned long long)base + 2);
	CHECK(handle(&r, want) == 0);
	char *got = drain_ws(&r);
	CHECK(!strncmp(got, "{\"type\":\"joined\",\"room\":\"big\",", 30));
	int n = 0;
	for (char *p = got; (p = strstr(p, "\"type\":\"message\"")); p++)
		n++;
	CHECK(n == 3);
	snprintf(want, sizeof(want), "\"seq\":%llu,", (unsigned long long)base + 3);
	CHECK(strstr(got, want) && !strstr(got, "\"gap\""));
	rg_session_cleanup(&r);
	/* a cursor this start of the gateway never reached, or of another epoch: reset,
	 * then the room from its start; the current epoch with a valid since is no reset */
	static const char *resets[] = {"\"since\":%llu", "\"since\":2,\"epoch\":\"other0\""};
	for (int k = 0; k < 3; k++) {
		char fields[96], req[256];
		struct rg_session z;
		rg_session_init(&z, &reg, RG_FMT_WS, wake, NULL);
		if (k < 2)
			snprintf(fields, sizeof(fields), resets[k], (unsigned long long)base + 6);
		else
			snprintf(fields, sizeof(fields), "\"since\":%llu,\"epoch\":\"%s\"",
				 (unsigned long long)base + 2, reg.epoch);
		snprintf(req, sizeof(req), "{\"type\":\"join\",\"room\":\"big\",%s}", fields);
		CHECK(handle(&z, req) == 0);
		got = drain_ws(&z);
		snprintf(want, sizeof(want),
			 "{\"type\":\"reset\",\"room\":\"big\",\"epoch\":\"%s\"}", reg.epoch);
		CHECK(!strstr(got, "\"error\""));
		CHECK(!strstr(got, want) == (k == 2));
		snprintf(want, sizeof(want), "\"seq\":%llu,", (unsigned long long)base + 3);
		CHECK(strstr(got, want) != NULL); /* the last message, in every case */
		rg_session_cleanup(&z);
	}

	/* since older than the ring (history 4): joined, then the gap, then what is stored */
	struct rg_session late;
	rg_session_init(&late, &reg, RG_FMT_WS, wake, NULL);
	handle(&pub, "{\"type\":\"join\",\"room\":\"a\"}");
	struct rg_room *a;
	rg_registry_get(&reg, "a", 1, 0, &a);
	uint64_t abase = a->last_seq;
	for (int i = 0; i < 6; i++) {
		handle(&pub, "{\"type\":\"publish\",\"room\":\"a\",\"data\":1}");
		drain_ws(&pub);
	}
	snprintf(want, sizeof(want), "{\"type\":\"join\",\"room\":\"a\",\"since\":%llu}",
		 (unsigned long long)abase);
	handle(&late, want);
	got = drain_ws(&late);
	snprintf(want, sizeof(want),
		 "{\"type\":\"gap\",\"room\":\"a\",\"from\":%llu,\"to\":%llu}\n",
		 (unsigned long long)abase + 1, (unsigned long long)abase + 2);
	char *gap = strstr(got, want), *joined = strstr(got, "\"joined\""),
	     *first = strstr(got, "\"type\":\"message\"");
	CHECK(joined && gap && first && joined < gap && gap < first);
	rg_session_cleanup(&late);
	rg_session_cleanup(&pub);
}

static void test_history_and_dedup_answers(void)
{
	struct rg_session s;
	rg_session_init(&s, &reg, RG_FMT_WS, wake, NULL);
	/* a pattern room that is not alive: an empty answer, and no room made (its name
	 * outlived the answer's making once: libFuzzer, under ASan) */
	unsigned nrooms = reg.nrooms;
	char want[256];
	handle(&s, "{\"type\":\"history\",\"room\":\"p:gone\",\"id\":\"h\"}");
	snprintf(want, sizeof(want),
		 "{\"type\":\"history\",\"id\":\"h\",\"epoch\":\"%s\",\"room\":\"p:gone\","
		 "\"last_seq\":0,\"more\":false,\"messages\":[]}\n",
		 reg.epoch);
	CHECK_STR(drain_ws(&s), want);
	CHECK(reg.nrooms == nrooms);
	/* a cursor past the end, or of another epoch: reset, never refused */
	handle(&s, "{\"type\":\"history\",\"room\":\"p:gone\",\"since\":1}");
	snprintf(want, sizeof(want),
		 "{\"type\":\"history\",\"epoch\":\"%s\",\"reset\":true,\"room\":\"p:gone\","
		 "\"last_seq\":0,\"more\":false,\"messages\":[]}\n",
		 reg.epoch);
	CHECK_STR(drain_ws(&s), want);
	handle(&s, "{\"type\":\"history\",\"room\":\"p:gone\",\"since\":0,\"epoch\":\"zz\"}");
	CHECK(strstr(drain_ws(&s), "\"reset\":true") != NULL);
	handle(&s, "{\"type\":\"history\",\"room\":\"p:gone\",\"since\":0,\"epoch\":\"A\"}");
	CHECK(strstr(drain_ws(&s), "\"code\":\"bad_request\"") != NULL);
	CHECK(reg.nrooms == nrooms);
	handle(&s, "{\"type\":\"join\",\"room\":\"big\"}");
	handle(&s, "{\"type\":\"publish\",\"room\":\"big\",\"data\":{\"x\":1},\"id\":\"u-1\"}");
	handle(&s, "{\"type\":\"publish\",\"room\":\"big\",\"data\":{\"x\":1},\"id\":\"u-1\"}");
	handle(&s, "{\"type\":\"publish\",\"room\":\"big\",\"data\":{\"x\":2},\"id\":\"u-1\"}");
	char *got = drain_ws(&s);
	char *first = strstr(got, "\"type\":\"ack\""), *dup = strstr(got, "\"duplicate\":true");
	CHECK(first && dup && first < dup);
	CHECK(strstr(got, "\"code\":\"conflict\"") != NULL);
	int messages = 0;
	for (char *p = got; (p = strstr(p, "\"type\":\"message\"")); p++)
		messages++;
	CHECK(messages == 1); /* stored once */

	handle(&s, "{\"type\":\"history\",\"room\":\"big\",\"limit\":1,\"id\":\"h\"}");
	got = drain_ws(&s);
	snprintf(want, sizeof(want),
		 "{\"type\":\"history\",\"id\":\"h\",\"epoch\":\"%s\",\"room\":\"big\",",
		 reg.epoch);
	CHECK(!strncmp(got, want, strlen(want)));
	CHECK(strstr(got, "\"messages\":[{\"type\":\"message\",\"room\":\"big\"") != NULL);
	handle(&s, "{\"type\":\"history\",\"room\":\"big\",\"limit\":0}");
	handle(&s, "{\"type\":\"history\",\"room\":\"big\",\"since\":-1}");
	handle(&s, "{\"type\":\"history\",\"room\":\"big\",\"epoch\":5}");
	handle(&s, "{\"type\":\"history\",\"room\":\"nope\"}");
	got = drain_ws(&s);
	int bad = 0;
	for (char *p = got; (p = strstr(p, "\"code\":\"bad_request\"")); p++)
		bad++;
	CHECK(bad == 3 && strstr(got, "\"code\":\"unknown_room\""));
	/* past the end: the room from its first stored message, said so */
	handle(&s, "{\"type\":\"history\",\"room\":\"big\",\"since\":99999}");
	got = drain_ws(&s);
	CHECK(strstr(got, "\"reset\":true,\"room\":\"big\"") != NULL);
	CHECK(strstr(got, "\"messages\":[{\"type\":\"message\",\"room\":\"big\"") != NULL);
	rg_session_cleanup(&s);
}

static void test_skip_policy(void)
{
	static struct rg_room_conf skip_rooms[] = {
		{.name = "s", .history = 4, .publish = RG_POLICY_ANYONE, .on_lag = RG_LAG_SKIP},
	};
	struct rg_config cfg = fx_cfg;
	struct rg_registry r2;
	struct rg_session slow, pub;
	size_t len;

	cfg.rooms = skip_rooms;
	cfg.nrooms = 1;
	rg_registry_init(&r2, &cfg);
	rg_session_init(&slow, &r2, RG_FMT_SSE, wake, NULL);
	rg_session_init(&pub, &r2, RG_FMT_WS, wake, NULL);
	CHECK(join(&slow, "s", -1) == 0);
	handle(&pub, "{\"type\":\"join\",\"room\":\"s\"}");
	for (int i = 0; i < 1000; i++) {
		handle(&pub, "{\"type\":\"publish\",\"room\":\"s\",\"data\":0}");
		drain_ws(&pub);
	}
	/* what lay past the 64 KB budget is gone, and with the reader lagged, nothing is
	 * kept for it past the history: a gap notice, then the rest, and the stream stays
	 * open */
	struct rg_room *room;
	CHECK(rg_registry_get(&r2, "s", 1, 0, &room) == 0);
	uint64_t first = rg_room_first_seq(room);
	CHECK(first == 997);
	CHECK(rg_session_fill(&slow, buf, sizeof(buf), 0, &len) == 0);
	buf[len] = '\0';
	char want[128];
	snprintf(
		want, sizeof(want),
		"event: gap\ndata: {\"type\":\"gap\",\"room\":\"s\",\"from\":1,\"to\":%llu}\n\nid: "
		"%s/%llu\n",
		(unsigned long long)first - 1, r2.epoch, (unsigned long long)first);
	CHECK(!strncmp((char *)buf, want, strlen(want)));
	snprintf(want, sizeof(want), "id: %s/1000\n", r2.epoch);
	CHECK(strstr((char *)buf, want) != NULL);
	CHECK(!slow.lagged && !slow.doomed);
	rg_session_cleanup(&slow);
	rg_session_cleanup(&pub);
	rg_registry_cleanup(&r2);
}

static void test_presence(void)
{
	static struct rg_room_conf prooms[] = {
		{.name = "p", .history = 4, .presence = 1},
		{.name = "q", .history = 4},
	};
	struct rg_config cfg = fx_cfg;
	struct rg_registry r2;
	struct rg_session a, b, sse;

	cfg.rooms = prooms;
	cfg.nrooms = 2;
	rg_registry_init(&r2, &cfg);
	rg_session_init(&a, &r2, RG_FMT_WS, wake, NULL);
	rg_session_init(&b, &r2, RG_FMT_WS, wake, NULL);
	rg_session_init(&sse, &r2, RG_FMT_SSE, wake, NULL);
	handle(&a, "{\"type\":\"join\",\"room\":\"p\",\"name\":\"alice\"}");
	drain_ws(&a);
	CHECK(join(&sse, "p", -1) == 0);
	handle(&b, "{\"type\":\"join\",\"room\":\"p\",\"name\":\"bob\"}");
	char *got = drain_ws(&a);
	char want[128];
	snprintf(want, sizeof(want),
		 "{\"type\":\"presence\",\"room\":\"p\",\"event\":\"join\",\"user\":\"%s\"}\n",
		 sse.user);
	CHECK(strstr(got, want) != NULL);
	CHECK(strstr(got, "{\"type\":\"presence\",\"room\":\"p\",\"event\":\"join\",\"user\":"
			  "\"bob\"}\n") != NULL);
	handle(&b, "{\"type\":\"presence\",\"room\":\"p\",\"id\":\"w\"}");
	got = drain_ws(&b);
	/* the members, each once, in no promised order */
	got = strchr(got, '\n') + 1; /* after b's own joined */
	CHECK(!strncmp(got, "{\"type\":\"presence\",\"room\":\"p\",\"users\":[", 39));
	CHECK(strstr(got, "\"alice\"") && strstr(got, "\"bob\"") && strstr(got, sse.user));
	CHECK(strstr(got, "],\"id\":\"w\"}\n") != NULL);
	handle(&b, "{\"type\":\"presence\",\"room\":\"q\"}");
	CHECK(strstr(drain_ws(&b), "\"code\":\"presence_disabled\"") != NULL);
	/* a member that goes away: the others are told, in their own format */
	rg_session_cleanup(&a);
	size_t len;
	rg_session_fill(&sse, buf, sizeof(buf), 0, &len);
	buf[len] = '\0';
	CHECK(strstr((char *)buf, "event: presence\ndata: "
				  "{\"type\":\"presence\",\"room\":\"p\",\"event\":\"join\","
				  "\"user\":\"bob\"}\n\n") != NULL);
	CHECK(strstr((char *)buf, "\"event\":\"leave\",\"user\":\"alice\"") != NULL);
	/* a member that does not read what it is told is judged slow at its budget
	 * (64 KB), not waited for: nothing queued past it */
	drain_ws(&b);
	b.doom = doom;
	dooms = 0;
	int n = 0;
	while (!b.overflow && n < 5000) {
		handle(&a, "{\"type\":\"join\",\"room\":\"p\"}");
		rg_session_cleanup(&a);
		n++;
	}
	CHECK(b.overflow && dooms == 1 && n > 100 && b.ans_bytes <= 65536);
	handle(&a, "{\"type\":\"join\",\"room\":\"p\"}");
	rg_session_cleanup(&a);
	CHECK(dooms == 1 && b.ans_bytes <= 65536);
	CHECK(rg_session_fill(&b, buf, sizeof(buf), 0, &len) == RG_FILL_LAGGED);
	CHECK_STR(b.lagged, "");
	/* an SSE member is told why its stream ends */
	sse.overflow = 1;
	CHECK(rg_session_fill(&sse, buf, sizeof(buf), 0, &len) == RG_FILL_LAGGED);
	CHECK(len == strlen("event: lagged\ndata: {}\n\n") &&
	      !memcmp(buf, "event: lagged\ndata: {}\n\n", len));
	rg_session_cleanup(&b);
	rg_session_cleanup(&sse);
	rg_registry_cleanup(&r2);
}

static void test_streams(void)
{
	struct rg_session sse;
	char *answer;
	enum rg_err err;
	const char *why;
	size_t len;

	rg_session_init(&sse, &reg, RG_FMT_SSE, wake, NULL);
	CHECK(rg_session_publish_token(&sse) == 0 && strlen(rg_session_token(&sse)) == 32);
	CHECK(rg_session_find(&reg, rg_session_token(&sse)) == &sse);
	CHECK(rg_session_find(&reg, "00000000000000000000000000000000") == NULL);
	rg_session_fill(&sse, buf, sizeof(buf), 0, &len);
	buf[len] = '\0';
	char want[256];
	snprintf(want, sizeof(want),
		 "event: stream\ndata: {\"type\":\"stream\",\"stream\":\"%s\",\"epoch\":\"%s\","
		 "\"rooms\":{}}\n\n",
		 rg_session_token(&sse), reg.epoch);
	CHECK_STR((char *)buf, want);

	static const struct {
		const char *body;
		int ok;
		enum rg_err err;
	} cases[] = {
		{"{\"join\":[\"a\",\"p:s1\"]}", 1, 0},
		{"{\"leave\":[\"a\"],\"join\":[\"big\"]}", 1, 0},
		{"{\"join\":[\"nope\"]}", 0, RG_E_UNKNOWN_ROOM},
		{"{\"join\":[\"bad name\"]}", 0, RG_E_BAD_REQUEST},
		{"{\"join\":[\"a\"],\"leave\":[\"a\"]}", 0, RG_E_BAD_REQUEST},
		{"{\"join\":\"a\"}", 0, RG_E_BAD_REQUEST},
		{"{}", 0, RG_E_BAD_REQUEST},
		{"[]", 0, RG_E_BAD_REQUEST},
		{"{\"join\":[", 0, RG_E_BAD_JSON},
		{"{\"join\":[\"a\",\"p:s2\",\"p:s3\"]}", 0, RG_E_LIMIT_EXCEEDED}, /* max 3 */
		{"{\"leave\":[\"p:s1\",\"big\"]}", 1, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = rg_session_steer(&sse, cases[i].body, strlen(cases[i].body), &answer, &err,
					  &why);
		if ((rc == 0) != cases[i].ok || (rc && err != cases[i].err))
			fprintf(stderr, "steer case %zu: %s -> %d %s\n", i, cases[i].body, rc,
				rc ? rg_err_code(err) : answer);
		CHECK((rc == 0) == cases[i].ok && (!rc || err == cases[i].err));
		if (i == 1) {
			snprintf(want, sizeof(want),
				 "{\"stream\":\"%s\",\"rooms\":{\"p:s1\":0,\"big\":",
				 rg_session_token(&sse));
			CHECK(answer && !strncmp(answer, want, strlen(want)));
		}
		if (!rc)
			free(answer);
	}
	CHECK(sse.nsubs == 0);
	rg_session_cleanup(&sse);
	CHECK(rg_session_find(&reg, want) == NULL && reg.streams == NULL);
}

/* The stream event names each room's cursor and goes before what was queued while the
 * rooms were joined (a reset here), so a client knows where to resume every room. */
static void test_stream_event(void)
{
	struct rg_session sse;
	struct rg_room *a;
	size_t len;
	char want[512];

	rg_session_init(&sse, &reg, RG_FMT_SSE, wake, NULL);
	CHECK(rg_registry_get(&reg, "a", 1, 0, &a) == 0);
	CHECK(join(&sse, "a", -1) == 0);
	CHECK(rg_session_reset(&sse, a) == 0);
	CHECK(join(&sse, "p:ev", -1) == 0);
	CHECK(rg_session_publish_token(&sse) == 0);
	rg_session_fill(&sse, buf, sizeof(buf), 0, &len);
	buf[len] = '\0';
	snprintf(want, sizeof(want),
		 "event: stream\ndata: {\"type\":\"stream\",\"stream\":\"%s\",\"epoch\":\"%s\","
		 "\"rooms\":{\"a\":%llu,\"p:ev\":0}}\n\n"
		 "event: reset\ndata: {\"type\":\"reset\",\"room\":\"a\",\"epoch\":\"%s\"}\n\n",
		 rg_session_token(&sse), reg.epoch, (unsigned long long)a->last_seq, reg.epoch);
	CHECK_STR((char *)buf, want);
	char token[33];
	snprintf(token, sizeof(token), "%s", rg_session_token(&sse));
	rg_session_cleanup(&sse);
	CHECK(rg_session_find(&reg, token) == NULL);
}

/* Past RG_SESSION_LINEAR rooms a session indexes them: every lookup finds its room,
 * through growth and through leaves in any order (the index moves entries back). */
static void test_room_index(void)
{
	struct rg_config cfg = fx_cfg;
	struct rg_registry r2;
	struct rg_session s;
	char name[32];
	int joined[200] = {0};
	unsigned seed = 7;

	cfg.max_rooms = 1000;
	rg_registry_init(&r2, &cfg);
	rg_session_init(&s, &r2, RG_FMT_WS, wake, NULL);
	for (int round = 0; round < 4000; round++) {
		seed = seed * 1103515245u + 12345u;
		int k = (int)((seed >> 8) % 200);
		snprintf(name, sizeof(name), "p:ix%d", k);
		if (joined[k]) {
			CHECK(rg_session_leave(&s, name, strlen(name)) == 0);
		} else {
			struct rg_join j = {.room = name,
					    .len = strlen(name),
					    .since = -1,
					    .over_limit = 1,
					    .quiet = 1};
			CHECK(rg_session_join(&s, &j) == 0);
		}
		joined[k] = !joined[k];
		if (round % 97)
			continue;
		unsigned n = 0;
		for (int i = 0; i < 200; i++) {
			snprintf(name, sizeof(name), "p:ix%d", i);
			struct rg_session_sub *ss = rg_session_joined(&s, name, strlen(name));
			CHECK(!ss == !joined[i]);
			CHECK(!ss || !strcmp(ss->sub.room->name, name));
			n += joined[i];
		}
		CHECK(s.nsubs == n);
		CHECK(n <= RG_SESSION_LINEAR || s.idx);
		CHECK(!s.idx || 2 * s.nsubs <= s.idx_cap);
	}
	CHECK(s.idx != NULL);
	CHECK(rg_session_joined(&s, "p:ix", 4) == NULL &&
	      rg_session_joined(&s, "p:ix1", 4) == NULL);
	rg_session_cleanup(&s);
	CHECK(s.idx == NULL && s.nsubs == 0);
	rg_registry_cleanup(&r2);
}

int main(void)
{
	CHECK(rg_registry_init(&reg, &fx_cfg) == 0);
	test_join_publish_fanout();
	test_errors();
	test_json_depth();
	test_room_creation_rate();
	test_requests_faster_than_reads_pause();
	test_batching_and_caps();
	test_lag();
	test_sse_ids();
	test_resume();
	test_history_and_dedup_answers();
	test_skip_policy();
	test_presence();
	test_streams();
	test_stream_event();
	test_room_index();
	rg_registry_cleanup(&reg);
	return check_done("session");
}
