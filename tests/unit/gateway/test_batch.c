/* A batch publish's body (gateway/batch.h): a table of bodies and the exact outcome each
 * must have, the items' data kept as sent (minified), and the limits. */
#include "../check.h"

#include "../../../gateway/batch.h"

#include <stdlib.h>

static const struct rg_batch_limits lim = {.max_items = 3, .max_data = 16, .max_depth = 2};

static const struct {
	const char *in;
	int ok;
	enum rg_err err; /* when !ok */
	size_t n;        /* items read: all of them, or up to the refused one */
	/* the items' room, key and data when ok, "room key data" per item, ";"-separated */
	const char *items;
} cases[] = {
	{"{\"messages\":[{\"room\":\"a\",\"data\":1}]}", 1, 0, 1, "a - 1"},
	{"{\"room\":\"r\",\"messages\":[{\"data\":{ \"x\" : [1, 2.50] }},{\"room\":\"b\",\"data\":"
	 "\"s p\",\"key\":\"k\"}]}",
	 1, 0, 2, "r - {\"x\":[1,2.50]};b k \"s p\""},
	{" { \"messages\" : [ { \"\\u0064ata\" : null , \"room\" : \"a\" } ] , \"room\":\"z\" } ",
	 1, 0, 1, "a - null"},
	{"{\"messages\":[{\"room\":\"a\",\"data\":{\"data\":[]}},{\"room\":\"a\",\"data\":-0.1},"
	 "{\"room\":\"a\",\"data\":\"\\\"]\"}]}",
	 1, 0, 3, "a - {\"data\":[]};a - -0.1;a - \"\\\"]\""},

	{"", 0, RG_E_BAD_JSON, 0, NULL},
	{"{\"messages\":[{\"room\":\"a\",\"data\":1}]", 0, RG_E_BAD_JSON, 0, NULL},
	{"{\"messages\":[],\"messages\":[]}", 0, RG_E_BAD_JSON, 0, NULL},
	{"{\"messages\":[{\"room\":\"a\",\"data\":1,\"data\":2}]}", 0, RG_E_BAD_JSON, 0, NULL},
	{"[{\"room\":\"a\",\"data\":1}]", 0, RG_E_BAD_REQUEST, 0, NULL},
	{"{\"messages\":{}}", 0, RG_E_BAD_REQUEST, 0, NULL},
	{"{\"messages\":[]}", 0, RG_E_BAD_REQUEST, 0, NULL},
	{"{\"messages\":[1,2,3,4]}", 0, RG_E_BAD_REQUEST, 0, NULL},
	{"{\"messages\":[{\"room\":\"a\",\"data\":1}],\"extra\":1}", 0, RG_E_BAD_REQUEST, 0, NULL},
	{"{\"room\":5,\"messages\":[{\"data\":1}]}", 0, RG_E_BAD_REQUEST, 0, NULL},
	{"{\"messages\":[{\"room\":\"a\",\"data\":1},7]}", 0, RG_E_BAD_REQUEST, 2, NULL},
	{"{\"messages\":[{\"data\":1}]}", 0, RG_E_BAD_REQUEST, 1, NULL},
	{"{\"messages\":[{\"room\":\"a\"}]}", 0, RG_E_BAD_REQUEST, 1, NULL},
	{"{\"messages\":[{\"room\":\"a\",\"data\":1,\"id\":\"x\"}]}", 0, RG_E_BAD_REQUEST, 1, NULL},
	{"{\"messages\":[{\"room\":\"a b\",\"data\":1}]}", 0, RG_E_BAD_REQUEST, 1, NULL},
	{"{\"messages\":[{\"room\":\"\",\"data\":1}]}", 0, RG_E_BAD_REQUEST, 1, NULL},
	{"{\"messages\":[{\"room\":\"a\",\"data\":1,\"key\":\"\"}]}", 0, RG_E_BAD_REQUEST, 1, NULL},
	{"{\"messages\":[{\"room\":\"a\",\"data\":1,\"key\":3}]}", 0, RG_E_BAD_REQUEST, 1, NULL},
	{"{\"messages\":[{\"room\":\"a\",\"data\":1,\"key\":\"a\\u0001\"}]}", 0, RG_E_BAD_REQUEST,
	 1, NULL},
	{"{\"messages\":[{\"room\":\"a\",\"data\":[[[1]]]}]}", 0, RG_E_BAD_REQUEST, 1, NULL},
	{"{\"messages\":[{\"room\":\"a\",\"data\":\"0123456789abcdef\"}]}", 0, RG_E_TOO_LARGE, 1,
	 NULL},
};

static void test_table(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rg_batch b;
		enum rg_err err = 0;
		const char *why = NULL;
		int rc = rg_batch_parse(cases[i].in, strlen(cases[i].in), &lim, &b, &err, &why);
		int good = (rc == 0) == cases[i].ok && b.n == cases[i].n;
		if (cases[i].ok) {
			char got[512] = "";
			for (size_t k = 0; k < b.n; k++)
				snprintf(got + strlen(got), sizeof(got) - strlen(got),
					 "%s%s %s %.*s", k ? ";" : "", b.items[k].room,
					 b.items[k].key[0] ? b.items[k].key : "-",
					 (int)b.items[k].data_len, b.items[k].data);
			good &= !strcmp(got, cases[i].items);
			if (strcmp(got, cases[i].items))
				fprintf(stderr, "  got %s\n", got);
		} else {
			good &= err == cases[i].err && why && *why;
		}
		if (!good)
			fprintf(stderr, "case %zu: %s -> rc %d n %zu err %s (%s)\n", i, cases[i].in,
				rc, b.n, rc ? rg_err_code(err) : "-", why ? why : "");
		CHECK(good);
		rg_batch_clear(&b);
	}
}

/* A refusal of an item names it, so a backend can tell which of 1000 was wrong. */
static void test_refusal_names_the_item(void)
{
	static const char in[] = "{\"messages\":[{\"room\":\"a\",\"data\":1},{\"room\":\"a\"}]}";
	struct rg_batch b;
	enum rg_err err;
	const char *why;

	CHECK(rg_batch_parse(in, sizeof(in) - 1, &lim, &b, &err, &why) == -1);
	CHECK(!strncmp(why, "messages[1]: ", 13));
	rg_batch_clear(&b);
}

int main(void)
{
	test_table();
	test_refusal_names_the_item();
	return check_done("batch");
}
