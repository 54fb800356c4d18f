/* The client-message parser and the JSON text helpers: a table of inputs and the
 * exact outcome each must have. */
#include "../check.h"

#include "../../../gateway/json_text.h"
#include "../../../gateway/request.h"

#include <errno.h>
#include <stdlib.h>

static const struct {
	const char *in;
	int ok;
	enum rg_err err; /* when !ok */
	const char *id;  /* echoed id */
	const char *room;
	const char *data; /* publish: minified data */
} cases[] = {
	{"{\"type\":\"ping\"}", 1, 0, "", "", NULL},
	{"{\"type\":\"ping\",\"id\":\"p\"}", 1, 0, "p", "", NULL},
	{"{\"type\":\"join\",\"room\":\"lobby\",\"extra\":[1]}", 1, 0, "", "lobby", NULL},
	{"{\"type\":\"leave\",\"room\":\"dm:a.b@c~d-e_f\"}", 1, 0, "", "dm:a.b@c~d-e_f", NULL},
	{"{\"type\":\"publish\",\"room\":\"r\",\"data\":{ \"a\" : [ 1 , 2.50 , 1e3 ] }}", 1, 0, "",
	 "r", "{\"a\":[1,2.50,1e3]}"},
	{"{\"data\":\" spaced  \\\"q\\\" {}\",\"room\":\"r\",\"type\":\"publish\"}", 1, 0, "", "r",
	 "\" spaced  \\\"q\\\" {}\""},
	{"{\"type\":\"publish\",\"room\":\"r\",\"data\":null,\"id\":\"x\"}", 1, 0, "x", "r",
	 "null"},
	{"{\"type\":\"publish\",\"room\":\"r\",\"data\":-0.1}", 1, 0, "", "r", "-0.1"},
	{"{\"type\":\"publish\",\"room\":\"r\",\"\\u0064ata\":[true]}", 1, 0, "", "r", "[true]"},
	{"{\"type\":\"publish\",\"room\":\"r\",\"metadata\":1,\"data\":\"\\u00e9\\n\"}", 1, 0, "",
	 "r", "\"\\u00e9\\n\""},
	{"{\"type\":\"publish\",\"room\":\"r\",\"data\":{\"data\":{}}}", 1, 0, "", "r",
	 "{\"data\":{}}"},

	{"", 0, RG_E_BAD_JSON, "", NULL, NULL},
	{"{", 0, RG_E_BAD_JSON, "", NULL, NULL},
	{"{\"type\":\"ping\"} x", 0, RG_E_BAD_JSON, "", NULL, NULL},
	{"{\"type\":\"ping\",\"type\":\"ping\"}", 0, RG_E_BAD_JSON, "", NULL, NULL},
	{"{\"type\":\"p\\u0000\"}", 0, RG_E_BAD_JSON, "", NULL, NULL},
	{"\xff\xfe", 0, RG_E_BAD_JSON, "", NULL, NULL},
	{"[1]", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"\"join\"", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"3", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"null", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":7}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"jump\",\"id\":\"j\"}", 0, RG_E_UNKNOWN_TYPE, "j", NULL, NULL},
	{"{\"type\":\"JOIN\",\"room\":\"a\"}", 0, RG_E_UNKNOWN_TYPE, "", NULL, NULL},
	{"{\"type\":\"join\"}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"join\",\"room\":5}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"join\",\"room\":\"\"}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"join\",\"room\":\"a b\"}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"join\",\"room\":\"a\\nb\"}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"join\",\"room\":\"a/b\"}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"join\",\"room\":\"caf\\u00e9\"}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"publish\",\"room\":\"r\"}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"ping\",\"id\":5}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"ping\",\"id\":\"\"}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"ping\",\"id\":\"a\\u0001b\"}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"ping\",\"id\":\"a\\nb\"}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"ping\",\"id\":\"\\u007f\"}", 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"join\",\"room\":\"a\",\"name\":\"x\\ty\"}", 0, RG_E_BAD_REQUEST, "", NULL,
	 NULL},
	{"{\"type\":\"ping\",\"id\":"
	 "\"0123456789012345678901234567890123456789012345678901234567890123"
	 "4\"}",
	 0, RG_E_BAD_REQUEST, "", NULL, NULL},
	{"{\"type\":\"ping\",\"id\":"
	 "\"0123456789012345678901234567890123456789012345678901234567890123"
	 "\"}",
	 1, 0, "0123456789012345678901234567890123456789012345678901234567890123", "", NULL},
};

static void test_table(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rg_request req;
		int rc = rg_request_parse(cases[i].in, strlen(cases[i].in), &req);
		int good = (rc == 0) == cases[i].ok && !strcmp(req.id, cases[i].id);
		if (cases[i].ok) {
			good &= !strcmp(req.room, cases[i].room);
			good &= !cases[i].data || (req.data_len == strlen(cases[i].data) &&
						   !memcmp(req.data, cases[i].data, req.data_len));
		} else {
			good &= req.err == cases[i].err && req.why && *req.why;
		}
		if (!good)
			fprintf(stderr, "case %zu: %s -> rc %d err %s\n", i, cases[i].in, rc,
				rc ? rg_err_code(req.err) : "-");
		CHECK(good);
		rg_request_clear(&req);
	}
}

static void test_deep_nesting_is_refused(void)
{
	/* jansson bounds depth (2048): deeper input is bad JSON, not a stack overflow */
	size_t n = 100000;
	char *s = malloc(2 * n + 64);
	size_t k = (size_t)sprintf(s, "{\"type\":\"publish\",\"room\":\"r\",\"data\":");
	memset(s + k, '[', n);
	memset(s + k + n, ']', n);
	strcpy(s + k + 2 * n, "}");
	struct rg_request req;
	CHECK(rg_request_parse(s, strlen(s), &req) == -1 && req.err == RG_E_BAD_JSON);
	rg_request_clear(&req);
	CHECK(rg_json_depth(s, strlen(s)) == n + 1);
	free(s);

	/* the depth limits.max_json_depth is judged by */
	static const struct {
		const char *in;
		size_t depth;
	} cases[] = {
		{"1", 0},
		{"\"[[{{\"", 0},
		{"[]", 1},
		{"{\"a\":[1,{\"b\":[]}],\"c\":{}}", 4},
		{"[\"]]]\\\"[[\",[[]]]", 3},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(rg_json_depth(cases[i].in, strlen(cases[i].in)) == cases[i].depth);
}

static void test_body(void)
{
	char *out = NULL;
	size_t len = 0;
	enum rg_err err;
	const char *why;
	const char body[] = "{\n  \"text\": \"hi there\",\n  \"n\": 0.1\n}\n";

	CHECK(rg_body_parse(body, strlen(body), &out, &len, &err, &why) == 0);
	CHECK(len == strlen("{\"text\":\"hi there\",\"n\":0.1}") &&
	      !memcmp(out, "{\"text\":\"hi there\",\"n\":0.1}", len));
	free(out);
	CHECK(rg_body_parse("", 0, &out, &len, &err, &why) == -1 && err == RG_E_BAD_REQUEST);
	CHECK(rg_body_parse("{\"a\":", 5, &out, &len, &err, &why) == -1 && err == RG_E_BAD_JSON);
	CHECK(rg_body_parse("1 2", 3, &out, &len, &err, &why) == -1 && err == RG_E_BAD_JSON);
	CHECK(rg_body_parse("\"a\0b\"", 5, &out, &len, &err, &why) == -1 && err == RG_E_BAD_JSON);
	CHECK(rg_body_parse("42", 2, &out, &len, &err, &why) == 0 && len == 2);
	free(out);
}

static void test_member_span(void)
{
	const char *t = "{ \"a\" : {\"data\":1}, \"b\":\"}\", \"data\" : [1, {\"x\":\"]\"}] }", *s;
	size_t n;
	CHECK(rg_json_member_span(t, strlen(t), "data", &s, &n) == 0);
	CHECK(n == strlen("[1, {\"x\":\"]\"}]") && !memcmp(s, "[1, {\"x\":\"]\"}]", n));
	CHECK(rg_json_member_span(t, strlen(t), "nope", &s, &n) == -ENOENT);
	CHECK(rg_json_member_span("[]", 2, "data", &s, &n) == -ENOENT);
	CHECK(rg_json_member_span("{\"data\":true}", 13, "data", &s, &n) == 0 && n == 4);
	char out[64];
	const char in[] = " [ \"a b\" ,\t\"\\\\\" , 1 ]\r\n";
	size_t m = rg_json_minify(in, strlen(in), out);
	CHECK(m == strlen("[\"a b\",\"\\\\\",1]") && !memcmp(out, "[\"a b\",\"\\\\\",1]", m));
}

int main(void)
{
	test_table();
	test_deep_nesting_is_refused();
	test_body();
	test_member_span();
	return check_done("request");
}
