/* The /metrics text (gateway/metrics.c): every metric has its HELP and TYPE lines, then
 * its samples; labels are the ones documented; values are the counters'. */
#include "../check.h"

#include "../../../gateway/metrics.h"

#include <stdlib.h>

int main(void)
{
	struct rg_metrics m = {0};
	struct rg_metrics_state st = {.rooms = 3, .subscribers = 7, .memory_limit = 1 << 20};

	m.opened[RG_TR_WS][1][0] = 5;
	m.opened[RG_TR_SSE][1][1] = 6;
	m.auth_failures[RG_AF_EXPIRED] = 2;
	m.handshake_failures[RG_HS_TLS] = 8;
	m.bytes_in[RG_TR_HTTP] = 40;
	/* 3 passes: 40 us, 50 us (a bound is inclusive), 300 ms (past every bound) */
	rg_hist_observe(&m.pass_us, rg_pass_bounds_us, RG_PASS_BUCKETS, 40);
	rg_hist_observe(&m.pass_us, rg_pass_bounds_us, RG_PASS_BUCKETS, 50);
	rg_hist_observe(&m.pass_us, rg_pass_bounds_us, RG_PASS_BUCKETS, 300000);
	rg_hist_observe(&m.write_bytes, rg_write_bounds, RG_WRITE_BUCKETS, 600);
	m.publishes[RG_TR_HTTP] = 2;
	m.deliveries[1] = 11;
	m.errors[RG_E_BAD_JSON] = 4;
	m.refusals[RG_LIMIT_MEMORY] = 1;
	m.lagged = 9;
	char *t = rg_metrics_text(&m, &st);
	CHECK(t != NULL);
	if (!t)
		return check_done("metrics");
	const char *want[] = {
		"roomgate_connections_opened_total{transport=\"ws\",tls=\"true\",http=\"1.1\"} 5\n",
		"roomgate_connections_opened_total{transport=\"sse\",tls=\"true\",http=\"2\"} 6\n",
		"roomgate_connections_opened_total{transport=\"http\",tls=\"false\",http=\"1.1\"} "
		"0\n",
		"roomgate_auth_failures_total{reason=\"expired\"} 2\n",
		"roomgate_auth_failures_total{reason=\"signature\"} 0\n",
		"roomgate_handshake_failures_total{reason=\"tls\"} 8\n",
		"roomgate_received_bytes_total{transport=\"http\"} 40\n",
		"roomgate_loop_pass_seconds_bucket{le=\"5e-05\"} 2\n",
		"roomgate_loop_pass_seconds_bucket{le=\"0.25\"} 2\n",
		"roomgate_loop_pass_seconds_bucket{le=\"+Inf\"} 3\n",
		"roomgate_loop_pass_seconds_sum 0.30009\n",
		"roomgate_loop_pass_seconds_count 3\n",
		"roomgate_write_bytes_bucket{le=\"512\"} 0\n",
		"roomgate_write_bytes_bucket{le=\"2048\"} 1\n",
		"roomgate_write_bytes_bucket{le=\"2097152\"} 1\n",
		"# TYPE roomgate_loop_pass_seconds histogram\n",
		"roomgate_publishes_total{transport=\"http\"} 2\n",
		"roomgate_deliveries_total{transport=\"sse\"} 11\n",
		"roomgate_errors_total{code=\"bad_json\"} 4\n",
		"roomgate_errors_total{code=\"room_closed\"} 0\n",
		"roomgate_refusals_total{limit=\"memory\"} 1\n",
		"roomgate_lagged_total 9\n",
		"roomgate_rooms 3\n",
		"roomgate_subscribers 7\n",
		"roomgate_memory_budget_limit_bytes 1048576\n",
		"roomgate_memory_budget_bytes{kind=\"answers\"} 0\n",
		"# TYPE roomgate_lagged_total counter\n",
		"# TYPE roomgate_rooms gauge\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CHECK(strstr(t, want[i]) != NULL);
		if (!strstr(t, want[i]))
			fprintf(stderr, "missing: %s", want[i]);
	}
	/* SSE is read-only: no publishes sample for it, none for HTTP connections open */
	CHECK(!strstr(t, "roomgate_publishes_total{transport=\"sse\"}"));
	CHECK(!strstr(t, "roomgate_connections_open{transport=\"http\"}"));
	/* every sample's metric was introduced by its TYPE line before it */
	for (const char *line = t; *line;) {
		const char *end = strchr(line, '\n');
		CHECK(end != NULL);
		if (!end)
			break;
		if (line[0] != '#') {
			char name[128], type[160];
			size_t n = strcspn(line, "{ ");
			CHECK(n < sizeof(name));
			snprintf(name, sizeof(name), "%.*s", (int)n, line);
			/* a histogram's samples: NAME_bucket, NAME_sum, NAME_count */
			for (const char *const *sfx =
				     (const char *const[]){"_bucket", "_sum", "_count", NULL};
			     *sfx; sfx++) {
				size_t k = strlen(name), s = strlen(*sfx);
				if (k > s && !strcmp(name + k - s, *sfx) &&
				    strstr(t, "histogram\n")) {
					snprintf(type, sizeof(type), "# TYPE %.*s histogram",
						 (int)(k - s), name);
					if (strstr(t, type))
						name[k - s] = '\0';
				}
			}
			snprintf(type, sizeof(type), "# TYPE %s ", name);
			const char *at = strstr(t, type);
			CHECK(at && at < line);
		}
		line = end + 1;
	}
	free(t);

	/* every refusal text the verifier and the transports give, by reason */
	static const struct {
		const char *why;
		enum rg_auth_fail want;
	} whys[] = {
		{"expired", RG_AF_EXPIRED},
		{"not yet valid", RG_AF_NOT_YET_VALID},
		{"issued in the future", RG_AF_NOT_YET_VALID},
		{"bad signature", RG_AF_SIGNATURE},
		{"no key", RG_AF_SIGNATURE},
		{"algorithm not allowed", RG_AF_SIGNATURE},
		{"wrong issuer", RG_AF_CLAIMS},
		{"wrong audience", RG_AF_CLAIMS},
		{"sub and name: expected 1..64 bytes, no control characters", RG_AF_CLAIMS},
		{"roomgate: expected {\"admin\": BOOL}", RG_AF_CLAIMS},
		{"malformed", RG_AF_MALFORMED},
		{"too long", RG_AF_MALFORMED},
		{"Authorization: expected Bearer TOKEN", RG_AF_MALFORMED},
		{"neither a token nor an API key of this gateway", RG_AF_MALFORMED},
		{NULL, RG_AF_MALFORMED},
	};
	for (size_t i = 0; i < sizeof(whys) / sizeof(whys[0]); i++)
		CHECK(rg_auth_fail_of(whys[i].why) == whys[i].want);
	return check_done("metrics");
}
