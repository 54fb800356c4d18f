#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const rg__transports[RG_TR_COUNT] = {"ws", "sse", "http"};
/* SSE is read-only: publishes come by WebSocket or the HTTP API */
static const char *const rg__publishers[RG_TR_COUNT] = {"ws", NULL, "http"};
static const char *const rg__limits[RG_LIMIT_KINDS] = {
	[RG_LIMIT_PUBLISH_RATE] = "publish_rate",
	[RG_LIMIT_ROOM_RATE] = "room_creation_rate",
	[RG_LIMIT_JSON_DEPTH] = "json_depth",
	[RG_LIMIT_MESSAGE_SIZE] = "message_size",
	[RG_LIMIT_MEMORY] = "memory",
	[RG_LIMIT_ROOMS] = "rooms",
};
static const char *const rg__mem[RG_MEM_KINDS] = {
	[RG_MEM_MESSAGES] = "messages",
	[RG_MEM_ROOMS] = "rooms",
	[RG_MEM_SESSIONS] = "sessions",
	[RG_MEM_ANSWERS] = "answers",
};

/* One metric's HELP and TYPE lines. */
static void rg__head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP roomgate_%s %s\n# TYPE roomgate_%s %s\n", name, help, name, type);
}

static void rg__one(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
	rg__head(f, name, type, help);
	fprintf(f, "roomgate_%s %llu\n", name, (unsigned long long)v);
}

/* A metric with one label: n values v[i] labelled label="names[i]". */
static void rg__by(FILE *f, const char *name, const char *type, const char *help, const char *label,
		   const char *const *names, const uint64_t *v, size_t n)
{
	rg__head(f, name, type, help);
	for (size_t i = 0; i < n; i++)
		if (names[i])
			fprintf(f, "roomgate_%s{%s=\"%s\"} %llu\n", name, label, names[i],
				(unsigned long long)v[i]);
}

char *rg_metrics_text(const struct rg_metrics *m, const struct rg_metrics_state *st)
{
	const char *codes[RG_E_COUNT];
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	for (int e = 0; e < RG_E_COUNT; e++)
		codes[e] = rg_err_code((enum rg_err)e);
	rg__by(f, "connections_opened_total", "counter",
	       "WebSocket connections and SSE streams opened, and HTTP API requests", "transport",
	       rg__transports, m->opened, RG_TR_COUNT);
	rg__by(f, "connections_open", "gauge", "WebSocket connections and SSE streams open",
	       "transport", rg__transports, m->open, RG_TR_SSE + 1);
	rg__one(f, "tcp_connections", "gauge",
		"TCP connections held, whatever they carry (limits.max_connections)",
		st->connections);
	rg__one(f, "rooms", "gauge", "rooms alive, configured and pattern", st->rooms);
	rg__one(f, "subscribers", "gauge", "subscriptions to rooms, WebSocket and SSE",
		st->subscribers);
	rg__by(f, "publishes_total", "counter", "messages stored, by how they were published",
	       "transport", rg__publishers, m->publishes, RG_TR_COUNT);
	rg__by(f, "deliveries_total", "counter", "messages written to subscribers", "transport",
	       rg__transports, m->deliveries, 2);
	rg__by(f, "sent_bytes_total", "counter",
	       "bytes written to WebSocket and SSE clients (before TLS)", "transport",
	       rg__transports, m->bytes_out, 2);
	rg__one(f, "lagged_total", "counter", "connections closed as too slow (lagged)", m->lagged);
	rg__one(f, "gaps_total", "counter", "gap notices: messages a subscriber will not get",
		m->gaps);
	rg__one(f, "resets_total", "counter", "cursors of another epoch answered with a reset",
		m->resets);
	rg__by(f, "errors_total", "counter", "error answers, by code (docs/PROTOCOL.md)", "code",
	       codes, m->errors, RG_E_COUNT);
	rg__by(f, "refusals_total", "counter", "requests refused by a limit (docs/CONFIG.md)",
	       "limit", rg__limits, m->refusals, RG_LIMIT_KINDS);
	rg__one(f, "auth_failures_total", "counter", "credentials refused", m->auth_failures);
	rg__one(f, "memory_budget_used_bytes", "gauge",
		"memory held for clients, counted against limits.memory_mb", st->memory_used);
	rg__one(f, "memory_budget_limit_bytes", "gauge", "limits.memory_mb in bytes (0: none)",
		st->memory_limit);
	rg__by(f, "memory_budget_bytes", "gauge", "memory held for clients, by what holds it",
	       "kind", rg__mem, st->memory_by, RG_MEM_KINDS);
	rg__one(f, "process_resident_memory_bytes", "gauge", "resident set size of the process",
		st->rss_bytes);
	rg__one(f, "process_open_fds", "gauge", "file descriptors open in the process",
		st->open_fds);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}
