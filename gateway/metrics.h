/*
 * The gateway's counters, for GET /metrics (docs/OPERATIONS.md, "Metrics"): plain
 * increments where things happen, no locks (one loop) and no allocation on the
 * delivery path. What is state (rooms, subscribers, open connections, memory) is read
 * where it lives when the text is made.
 *
 * Ownership: the registry holds the counters (registry.h); rg_metrics_text's text is
 * the caller's to free.
 */
#ifndef RG_METRICS_H
#define RG_METRICS_H

#include "budget.h"
#include "errors.h"
#include "limits.h"

#include <stddef.h>
#include <stdint.h>

/* How clients reach the gateway. */
enum rg_transport { RG_TR_WS, RG_TR_SSE, RG_TR_HTTP, RG_TR_COUNT };

/* Why a TCP connection ended without a request the gateway answered. */
enum rg_handshake_fail {
	RG_HS_TLS,        /* its TLS handshake never completed (failed, timed out, left) */
	RG_HS_NO_REQUEST, /* no request came (timed out, left, or lws refused it: 414, 431) */
	RG_HS_UPGRADE,    /* a WebSocket upgrade refused (path, origin) */
	RG_HS_KINDS
};

/* Why credentials were refused (rg_auth_fail_of). */
enum rg_auth_fail {
	RG_AF_MALFORMED, /* not a token or key of this gateway, or unreadable */
	RG_AF_SIGNATURE, /* no key, a bad signature, an algorithm not allowed */
	RG_AF_EXPIRED,
	RG_AF_NOT_YET_VALID, /* nbf, or iat in the future */
	RG_AF_CLAIMS,        /* issuer, audience, sub, name or roomgate claims */
	RG_AF_KINDS
};

/* The reason of a refusal's text (auth.h, jwt.h); RG_AF_MALFORMED for any other. */
enum rg_auth_fail rg_auth_fail_of(const char *why);

/* A histogram: counts per bucket (not cumulative), the last one past every bound. */
#define RG_HIST_MAX 16
struct rg_hist {
	uint64_t buckets[RG_HIST_MAX];
	uint64_t sum, count;
};

/* Bucket bounds: loop passes in microseconds, writes in bytes. */
#define RG_PASS_BUCKETS  12
#define RG_WRITE_BUCKETS 8
extern const uint64_t rg_pass_bounds_us[RG_PASS_BUCKETS];
extern const uint64_t rg_write_bounds[RG_WRITE_BUCKETS];

/* Counts v in h (bounds: n ascending upper bounds, inclusive). */
static inline void rg_hist_observe(struct rg_hist *h, const uint64_t *bounds, unsigned n,
				   uint64_t v)
{
	unsigned i = 0;

	while (i < n && v > bounds[i])
		i++;
	h->buckets[i]++;
	h->sum += v;
	h->count++;
}

struct rg_metrics {
	/* WebSocket connections, SSE streams, HTTP requests: by transport, TLS, HTTP/2 */
	uint64_t opened[RG_TR_COUNT][2][2];
	uint64_t open[RG_TR_COUNT]; /* open now (HTTP: 0, requests are not held) */
	/* TCP connections the limits let in, by their listener's TLS: counted as they are
	 * accepted, and again when lws has them adopted (it first tries the TLS handshake,
	 * and drops a connection that fails it at once unannounced) */
	uint64_t tcp_opened[2], tcp_adopted[2];
	uint64_t tcp_refused; /* closed at accept by the connection limits */
	uint64_t handshake_failures[RG_HS_KINDS];
	uint64_t bytes_in[RG_TR_COUNT];  /* WebSocket messages and HTTP bodies read */
	uint64_t publishes[RG_TR_COUNT]; /* messages stored, by how they came (WS, HTTP) */
	uint64_t deliveries[2];          /* messages written to subscribers (WS, SSE) */
	uint64_t bytes_out[2];           /* bytes written to WebSocket and SSE clients */
	uint64_t lagged;                 /* connections closed as too slow */
	uint64_t gaps;                   /* gap notices (messages a subscriber will not get) */
	uint64_t resets;                 /* cursors of another epoch answered with a reset */
	uint64_t cluster_gaps;           /* seqs the engine's order skipped here (engine.h) */
	uint64_t cluster_outages;        /* times the engine became unavailable */
	uint64_t errors[RG_E_COUNT];     /* error answers, by code */
	uint64_t refusals[RG_LIMIT_KINDS];
	uint64_t auth_failures[RG_AF_KINDS]; /* credentials refused, by why */
	struct rg_hist pass_us;              /* event loop passes: how long their work took */
	struct rg_hist write_bytes;          /* writes to WebSocket and SSE clients */
};

/* What the text reports beyond the counters, read by the caller where it lives. */
struct rg_metrics_state {
	uint64_t rooms, subscribers;
	uint64_t connections; /* TCP connections held */
	uint64_t memory_used, memory_limit, memory_by[RG_MEM_KINDS];
	uint64_t rss_bytes, open_fds; /* the process's; 0: unknown */
	int cluster;                  /* shares rooms through an engine (cluster.redis) */
	uint64_t cluster_ready;       /* 1 while it takes publishes */
};

/* The Prometheus text format (version 0.0.4) of m and st. malloc'd, or NULL. */
char *rg_metrics_text(const struct rg_metrics *m, const struct rg_metrics_state *st);

#endif
