/* Origins: the gateway's own page, listed origins, "*", and what a config may list. */
#include "../check.h"

#include "../../../gateway/origin.h"

static void test_allowed(void)
{
	char *list[] = {"https://chat.example.com", "http://localhost:3000", "https://[::1]:8443",
			"https://default.example:443"};
	struct rg_config cfg = {.allowed_origins = list, .nallowed_origins = 4};
	static const struct {
		const char *origin, *host;
		int want;
	} cases[] = {
		/* the gateway's own page: Origin names the host the request was sent to */
		{"https://127.0.0.1:8443", "127.0.0.1:8443", 1},
		{"https://gw.example", "gw.example", 1},
		{"https://gw.example", "gw.example:443", 1},
		{"https://gw.example:443", "gw.example", 1},
		{"http://gw.example", "gw.example:80", 1},
		{"https://GW.example", "gw.EXAMPLE", 1},
		{"https://[::1]:9000", "[::1]:9000", 1},
		{"https://gw.example", "gw.example:8443", 0},
		{"https://gw.example:8443", "gw.example", 0},
		{"https://gw.example.evil", "gw.example", 0},
		{"https://gw.example", NULL, 0},
		/* listed */
		{"https://chat.example.com", "gw.example", 1},
		{"HTTPS://CHAT.EXAMPLE.COM", "gw.example", 1},
		{"https://chat.example.com:443", "gw.example", 1},
		{"http://chat.example.com", "gw.example", 0},
		{"https://chat.example.com.evil", "gw.example", 0},
		{"https://chat.example.co", "gw.example", 0},
		{"http://localhost:3000", "gw.example", 1},
		{"http://localhost:3001", "gw.example", 0},
		{"https://[::1]:8443", "gw.example", 1},
		{"https://default.example", "gw.example", 1},
		/* not origins at all */
		{"null", "gw.example", 0},
		{"", "gw.example", 0},
		{"gw.example", "gw.example", 0},
		{"ftp://gw.example", "gw.example", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got =
			rg_origin_allowed(&cfg, cases[i].origin, strlen(cases[i].origin),
					  cases[i].host, cases[i].host ? strlen(cases[i].host) : 0);
		if (got != cases[i].want)
			fprintf(stderr, "case %zu: %s to %s: %d\n", i, cases[i].origin,
				cases[i].host ? cases[i].host : "(no host)", got);
		CHECK(got == cases[i].want);
	}
	char *any[] = {"*"};
	struct rg_config star = {.allowed_origins = any, .nallowed_origins = 1};
	CHECK(rg_origin_allowed(&star, "https://x.example", 17, "gw", 2));
	struct rg_config none = {0};
	CHECK(!rg_origin_allowed(&none, "https://x.example", 17, "gw", 2));
}

static void test_valid(void)
{
	static const char *good[] = {"*",
				     "https://a",
				     "http://a.b-c.example",
				     "https://a:1",
				     "https://a:65535",
				     "https://[::1]",
				     "https://[::1]:8443",
				     "http://127.0.0.1:3000"};
	static const char *bad[] = {"",
				    "**",
				    "a.example",
				    "https://",
				    "https://a/",
				    "https://a/path",
				    "https://a:",
				    "https://a:0",
				    "https://a:65536",
				    "https://a:123456",
				    "https://a:8x",
				    "ftp://a",
				    "https://a b",
				    "https://[::1",
				    "https://[]",
				    "https://user@a",
				    "null"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!rg_origin_valid(good[i]))
			fprintf(stderr, "refused: %s\n", good[i]);
		CHECK(rg_origin_valid(good[i]));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (rg_origin_valid(bad[i]))
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK(!rg_origin_valid(bad[i]));
	}
}

int main(void)
{
	test_allowed();
	test_valid();
	return check_done("origin");
}
