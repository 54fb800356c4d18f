/* The /metrics text (gateway/metrics.c): every metric has its HELP and TYPE lines, then
 * its samples; labels are the ones documented; values are the counters'. */
#include "../check.h"

#include "../../../gateway/metrics.h"

#include <stdlib.h>

int main(void)
{
	struct rg_metrics m = {0};
	struct rg_metrics_state st = {.rooms = 3, .subscribers = 7, .memory_limit = 1 << 20};

	m.opened[RG_TR_WS] = 5;
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
		"roomgate_connections_opened_total{transport=\"ws\"} 5\n",
		"roomgate_connections_opened_total{transport=\"http\"} 0\n",
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
			snprintf(type, sizeof(type), "# TYPE %s ", name);
			const char *at = strstr(t, type);
			CHECK(at && at < line);
		}
		line = end + 1;
	}
	free(t);
	return check_done("metrics");
}
