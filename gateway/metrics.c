#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint64_t rg_pass_bounds_us[RG_PASS_BUCKETS] = {50,   100,   250,   500,   1000,   2500,
						     5000, 10000, 25000, 50000, 100000, 250000};
const uint64_t rg_write_bounds[RG_WRITE_BUCKETS] = {128,   512,    2048,   8192,
						    32768, 131072, 524288, 2097152};

/* The refusals' texts (jwt.c, auth.c, credentials.c) by the start they share. */
static const struct {
	const char *prefix;
	enum rg_auth_fail kind;
} rg__auth_whys[] = {
	{"expired", RG_AF_EXPIRED},
	{"not yet valid", RG_AF_NOT_YET_VALID},
	{"issued in the future", RG_AF_NOT_YET_VALID},
	{"bad signature", RG_AF_SIGNATURE},
	{"no key", RG_AF_SIGNATURE},
	{"algorithm not allowed", RG_AF_SIGNATURE},
	{"wrong issuer", RG_AF_CLAIMS},
	{"wrong audience", RG_AF_CLAIMS},
	{"sub and name", RG_AF_CLAIMS},
	{"roomgate:", RG_AF_CLAIMS},
};

enum rg_auth_fail rg_auth_fail_of(const char *why)
{
	for (size_t i = 0; why && i < sizeof(rg__auth_whys) / sizeof(rg__auth_whys[0]); i++)
		if (!strncmp(why, rg__auth_whys[i].prefix, strlen(rg__auth_whys[i].prefix)))
			return rg__auth_whys[i].kind;
	return RG_AF_MALFORMED;
}

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
static const char *const rg__handshakes[RG_HS_KINDS] = {
	[RG_HS_TLS] = "tls", [RG_HS_NO_REQUEST] = "no_request", [RG_HS_UPGRADE] = "upgrade"};
static const char *const rg__auth_fails[RG_AF_KINDS] = {[RG_AF_MALFORMED] = "malformed",
							[RG_AF_SIGNATURE] = "signature",
							[RG_AF_EXPIRED] = "expired",
							[RG_AF_NOT_YET_VALID] = "not_yet_valid",
							[RG_AF_CLAIMS] = "claims"};
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

/* connections_opened_total by transport, TLS and HTTP version. */
static void rg__opened(FILE *f, const struct rg_metrics *m)
{
	rg__head(f, "connections_opened_total", "counter",
		 "WebSocket connections and SSE streams opened, and HTTP API requests");
	for (int t = 0; t < RG_TR_COUNT; t++)
		for (int tls = 0; tls < 2; tls++)
			for (int h2 = 0; h2 < 2; h2++)
				fprintf(f,
					"roomgate_connections_opened_total{transport=\"%s\",tls=\"%"
					"s\","
					"http=\"%s\"} %llu\n",
					rg__transports[t], tls ? "true" : "false", h2 ? "2" : "1.1",
					(unsigned long long)m->opened[t][tls][h2]);
}

/* A histogram of h: bounds scaled by 1/scale (microseconds to seconds: 1e6). */
static void rg__hist(FILE *f, const char *name, const char *help, const struct rg_hist *h,
		     const uint64_t *bounds, unsigned n, double scale)
{
	uint64_t below = 0;

	rg__head(f, name, "histogram", help);
	for (unsigned i = 0; i < n; i++) {
		below += h->buckets[i];
		fprintf(f, "roomgate_%s_bucket{le=\"%.9g\"} %llu\n", name,
			(double)bounds[i] / scale, (unsigned long long)below);
	}
	fprintf(f, "roomgate_%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
	fprintf(f, "roomgate_%s_sum %.9g\n", name, (double)h->sum / scale);
	fprintf(f, "roomgate_%s_count %llu\n", name, (unsigned long long)h->count);
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
	rg__opened(f, m);
	rg__by(f, "connections_open", "gauge", "WebSocket connections and SSE streams open",
	       "transport", rg__transports, m->open, RG_TR_SSE + 1);
	rg__one(f, "tcp_connections", "gauge",
		"TCP connections held, whatever they carry (limits.max_connections)",
		st->connections);
	static const char *const tls[2] = {"false", "true"};
	rg__by(f, "tcp_connections_accepted_total", "counter",
	       "TCP connections admitted by the connection limits, by TLS", "tls", tls,
	       m->tcp_opened, 2);
	rg__one(f, "tcp_connections_refused_total", "counter",
		"TCP connections closed at accept by limits.max_connections or "
		"max_connections_per_address",
		m->tcp_refused);
	/* a connection lws dropped before adopting it failed its first handshake step */
	uint64_t hs[RG_HS_KINDS];
	memcpy(hs, m->handshake_failures, sizeof(hs));
	hs[RG_HS_TLS] += m->tcp_opened[1] - m->tcp_adopted[1];
	hs[RG_HS_NO_REQUEST] += m->tcp_opened[0] - m->tcp_adopted[0];
	rg__by(f, "handshake_failures_total", "counter",
	       "TCP connections that ended before a request was answered, by why", "reason",
	       rg__handshakes, hs, RG_HS_KINDS);
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
	rg__by(f, "received_bytes_total", "counter",
	       "bytes of WebSocket messages and HTTP request bodies read", "transport",
	       rg__publishers, m->bytes_in, RG_TR_COUNT);
	rg__one(f, "lagged_total", "counter", "connections closed as too slow (lagged)", m->lagged);
	rg__one(f, "gaps_total", "counter", "gap notices: messages a subscriber will not get",
		m->gaps);
	rg__one(f, "resets_total", "counter", "cursors of another epoch answered with a reset",
		m->resets);
	rg__one(f, "cluster_gaps_total", "counter",
		"messages of the cluster's order a room here never received (cluster.redis)",
		m->cluster_gaps);
	rg__one(f, "cluster_outages_total", "counter",
		"times the cluster's Redis became unreachable (cluster.redis)", m->cluster_outages);
	rg__by(f, "errors_total", "counter", "error answers, by code (docs/PROTOCOL.md)", "code",
	       codes, m->errors, RG_E_COUNT);
	rg__by(f, "refusals_total", "counter", "requests refused by a limit (docs/CONFIG.md)",
	       "limit", rg__limits, m->refusals, RG_LIMIT_KINDS);
	rg__by(f, "auth_failures_total", "counter", "credentials refused, by why", "reason",
	       rg__auth_fails, m->auth_failures, RG_AF_KINDS);
	rg__hist(f, "loop_pass_seconds",
		 "event loop passes: the time from the poll's return to the next poll", &m->pass_us,
		 rg_pass_bounds_us, RG_PASS_BUCKETS, 1e6);
	rg__hist(f, "write_bytes", "writes to WebSocket and SSE clients: bytes per write",
		 &m->write_bytes, rg_write_bounds, RG_WRITE_BUCKETS, 1);
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
	if (st->cluster)
		rg__one(f, "cluster_ready", "gauge",
			"1 while the cluster's Redis takes publishes, else 0 (cluster.redis)",
			st->cluster_ready);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}
