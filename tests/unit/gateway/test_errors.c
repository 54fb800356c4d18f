/* The error vocabulary: every code is documented in docs/PROTOCOL.md with its HTTP
 * status, codes are unique, room lookups map as every transport answers them, and the
 * HTTP body escapes what it carries. Runs in the source tree (ctest sets the directory). */
#include "../check.h"

#include "../../../gateway/errors.h"

#include <errno.h>
#include <stdlib.h>

static void test_codes_documented(void)
{
	FILE *f = fopen("docs/PROTOCOL.md", "rb");
	char *doc = calloc(1, 1 << 20);

	CHECK(f && doc);
	if (f && doc) {
		size_t n = fread(doc, 1, (1 << 20) - 1, f);
		doc[n] = '\0';
	}
	for (int e = 0; doc && e < RG_E_COUNT; e++) {
		char row[128];
		int status = rg_err_http_status((enum rg_err)e);
		snprintf(row, sizeof(row), "| `%s` | %d |", rg_err_code((enum rg_err)e), status);
		if (!strstr(doc, row))
			fprintf(stderr, "docs/PROTOCOL.md: no row %s\n", row);
		CHECK(strstr(doc, row) != NULL);
		CHECK(status >= 400 && status <= 599);
		for (int o = 0; o < e; o++)
			CHECK(strcmp(rg_err_code((enum rg_err)o), rg_err_code((enum rg_err)e)));
	}
	CHECK_STR(rg_err_code(RG_E_COUNT), "internal");
	CHECK(rg_err_http_status((enum rg_err) - 1) == 500);
	if (f)
		fclose(f);
	free(doc);
}

static void test_room_lookups(void)
{
	static const struct {
		int rc;
		enum rg_err err;
		const char *why;
	} cases[] = {
		{-EINVAL, RG_E_BAD_REQUEST, rg_why_room_name},
		{-ENOENT, RG_E_UNKNOWN_ROOM, "no such room"},
		{-ENOSPC, RG_E_LIMIT_EXCEEDED,
		 "the gateway holds limits.max_rooms rooms, each with a subscriber"},
		{-ENOMEM, RG_E_INTERNAL, rg_why_nomem},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = NULL;
		CHECK(rg_err_room(cases[i].rc, &why) == cases[i].err);
		CHECK_STR(why, cases[i].why);
	}
}

static void test_publishes(void)
{
	static const struct {
		int rc;
		enum rg_err err;
		const char *why;
	} cases[] = {
		{-EEXIST, RG_E_CONFLICT,
		 "this room stored another message under this idempotency key"},
		{-ENOBUFS, RG_E_OVERLOADED, rg_why_overloaded},
		{-EAGAIN, RG_E_UNAVAILABLE, rg_why_unavailable},
		{-ENOMEM, RG_E_INTERNAL, rg_why_nomem},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = NULL;
		CHECK(rg_err_publish(cases[i].rc, &why) == cases[i].err);
		CHECK_STR(why, cases[i].why);
	}
}

static void test_http_body(void)
{
	char *body = rg_err_http_body(RG_E_BAD_REQUEST, "a \"quoted\"\nname");
	CHECK_STR(body,
		  "{\"error\":{\"code\":\"bad_request\",\"message\":\"a \\\"quoted\\\"\\nname\"}}");
	free(body);
	body = rg_err_http_body(RG_E_TOO_LARGE, rg_why_body_too_large);
	CHECK_STR(body, "{\"error\":{\"code\":\"too_large\",\"message\":\"the body exceeds "
			"limits.max_message_bytes\"}}");
	free(body);
}

int main(void)
{
	test_codes_documented();
	test_room_lookups();
	test_publishes();
	test_http_body();
	return check_done("errors");
}
