/* Idempotent publish, the history view and SSE cursor ids: table-driven where the
 * inputs are text. */
#include "../check.h"
#include "fixtures.h"

#include "../../../gateway/cursor.h"
#include "../../../gateway/history.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

static uint64_t pub(struct rg_room *room, const char *data, const char *key, int want)
{
	uint64_t seq = 0;
	CHECK(rg_room_publish(room, data, strlen(data), key, &seq) == want);
	return seq;
}

static void test_idempotency(void)
{
	struct rg_room *room = rg_room_new("a", &fx_rooms[0], NULL); /* history 4 */

	CHECK(pub(room, "1", "k1", 0) == 1);
	CHECK(pub(room, "2", NULL, 0) == 2);
	CHECK(pub(room, "1", "k1", 1) == 1); /* a retry: the original seq, nothing stored */
	CHECK(room->last_seq == 2);
	CHECK(pub(room, "\"other\"", "k1", -EEXIST) == 0); /* same key, other data */
	CHECK(pub(room, "3", "k3", 0) == 3);
	CHECK(rg_room_get(room, 1) && rg_room_get(room, 1)->seq == 1);
	CHECK(rg_room_get(room, 4) == NULL && rg_room_get(room, 0) == NULL);
	/* once its message left the ring, a key is new again */
	pub(room, "4", NULL, 0);
	pub(room, "5", NULL, 0);
	CHECK(rg_room_get(room, 1) == NULL && rg_room_oldest_seq(room) == 2);
	CHECK(pub(room, "1", "k1", 0) == 6);
	CHECK(pub(room, "1", "k1", 1) == 6);
	CHECK(pub(room, "3", "k3", 1) == 3);
	rg_room_free(room);
}

static void test_history(void)
{
	static const struct {
		int64_t since;
		unsigned limit;
		size_t max_bytes;
		const char *want; /* messages' data, the flags */
	} cases[] = {
		{-1, 100, 1 << 20, "more:false gap:- [3,4,5,6]"},
		{-1, 2, 1 << 20, "more:false gap:- [5,6]"},
		{0, 100, 1 << 20, "more:false gap:1-2 [3,4,5,6]"},
		{1, 2, 1 << 20, "more:true gap:2-2 [3,4]"},
		{2, 100, 1 << 20, "more:false gap:- [3,4,5,6]"},
		{4, 1, 1 << 20, "more:true gap:- [5]"},
		{6, 10, 1 << 20, "more:false gap:- []"},
		{2, 100, 10, "more:true gap:- [3]"}, /* bytes: the first always, then stop */
	};
	struct rg_room *room = rg_room_new("a", &fx_rooms[0], NULL); /* history 4 */
	char data[8], got[256];

	for (int i = 1; i <= 6; i++) {
		snprintf(data, sizeof(data), "%d", i);
		pub(room, data, NULL, 0);
	}
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t len;
		char *text = rg_history_json(room, cases[c].since, cases[c].limit,
					     cases[c].max_bytes, "", &len);
		json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
		json_t *gap = json_object_get(doc, "gap"), *msgs = json_object_get(doc, "messages");
		size_t n = 0, k;
		json_t *m;

		CHECK(doc && strlen(text) == len);
		CHECK(json_integer_value(json_object_get(doc, "last_seq")) == 6);
		CHECK(!strcmp(json_string_value(json_object_get(doc, "room")), "a"));
		n = (size_t)snprintf(got, sizeof(got), "more:%s gap:",
				     json_is_true(json_object_get(doc, "more")) ? "true" : "false");
		if (gap)
			n += (size_t)snprintf(got + n, sizeof(got) - n, "%lld-%lld",
					      json_integer_value(json_object_get(gap, "from")),
					      json_integer_value(json_object_get(gap, "to")));
		else
			n += (size_t)snprintf(got + n, sizeof(got) - n, "-");
		n += (size_t)snprintf(got + n, sizeof(got) - n, " [");
		json_array_foreach(msgs, k, m) {
			n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%lld", k ? "," : "",
					      json_integer_value(json_object_get(m, "data")));
			CHECK(json_integer_value(json_object_get(m, "seq")) ==
			      json_integer_value(json_object_get(m, "data")));
		}
		snprintf(got + n, sizeof(got) - n, "]");
		CHECK_STR(got, cases[c].want);
		json_decref(doc);
		free(text);
	}
	size_t len;
	char *text = rg_history_json(room, -1, 1, 1 << 20, "\"type\":\"history\",", &len);
	const char *head = "{\"type\":\"history\",\"room\":\"a\",";
	CHECK(text && !strncmp(text, head, strlen(head)));
	free(text);
	rg_room_free(room);
}

static void test_cursor_ids(void)
{
	static const struct {
		const char *id;
		int n;
		const char *first_room;
		uint64_t first_seq;
	} cases[] = {
		{"42", 1, "", 42},
		{"0", 1, "", 0},
		{"lobby=5", 1, "lobby", 5},
		{"lobby=5,dm:x=0", 2, "lobby", 5},
		{"", -1, NULL, 0},
		{"-1", -1, NULL, 0},
		{"4 2", -1, NULL, 0},
		{"12345678901234567890", -1, NULL, 0},
		{"9223372036854775807", 1, "", 9223372036854775807ull},
		{"9223372036854775808", -1, NULL, 0},
		{"a=9999999999999999999", -1, NULL, 0},
		{"lobby=", -1, NULL, 0},
		{"=5", -1, NULL, 0},
		{"lobby=5,", -1, NULL, 0},
		{"lobby=5,,news=1", -1, NULL, 0},
		{"lobby=5,lobby=6", -1, NULL, 0},
		{"lo bby=5", -1, NULL, 0},
		{"lobby=x", -1, NULL, 0},
		{"lobby=1=2", -1, NULL, 0},
		{"a=1,b=2,c=3,d=4,e=5", -1, NULL, 0}, /* more entries than max (4) */
		/* with the epoch of the gateway's start they belong to */
		{"k3j9x2ab/17", 1, "", 17},
		{"k3j9x2ab/lobby=5,news=2", 2, "lobby", 5},
		{"0123456789abcdef/1", 1, "", 1},
		{"0123456789abcdefg/1", -1, NULL, 0}, /* 17 characters */
		{"/17", -1, NULL, 0},
		{"K3J9/17", -1, NULL, 0},
		{"k3-9/17", -1, NULL, 0},
		{"k3j9/", -1, NULL, 0},
		{"a/b/17", -1, NULL, 0},
		{"k3j9/lobby=5/x", -1, NULL, 0},
	};
	struct rg_cursor c[4];
	char epoch[RG_EPOCH_MAX + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = rg_cursor_parse(cases[i].id, strlen(cases[i].id), c, 4, epoch);
		if (n != cases[i].n)
			fprintf(stderr, "cursor case %zu: \"%s\" -> %d\n", i, cases[i].id, n);
		CHECK(n == cases[i].n);
		if (n > 0)
			CHECK(!strcmp(c[0].room, cases[i].first_room) &&
			      c[0].seq == cases[i].first_seq);
	}
	CHECK(rg_cursor_parse("lobby=5,dm:x=7", 14, c, 4, epoch) == 2 &&
	      !strcmp(c[1].room, "dm:x") && c[1].seq == 7 && !strcmp(epoch, ""));
	CHECK(rg_cursor_parse("e1/lobby=5", 10, c, 4, epoch) == 1 && !strcmp(epoch, "e1"));
}

int main(void)
{
	test_idempotency();
	test_history();
	test_cursor_ids();
	return check_done("history");
}
