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

struct rg_metrics {
	uint64_t opened[RG_TR_COUNT];    /* WebSocket connections, SSE streams, HTTP requests */
	uint64_t open[RG_TR_COUNT];      /* open now (HTTP: 0, requests are not held) */
	uint64_t publishes[RG_TR_COUNT]; /* messages stored, by how they came (WS, HTTP) */
	uint64_t deliveries[2];          /* messages written to subscribers (WS, SSE) */
	uint64_t bytes_out[2];           /* bytes written to WebSocket and SSE clients */
	uint64_t lagged;                 /* connections closed as too slow */
	uint64_t gaps;                   /* gap notices (messages a subscriber will not get) */
	uint64_t resets;                 /* cursors of another epoch answered with a reset */
	uint64_t errors[RG_E_COUNT];     /* error answers, by code */
	uint64_t refusals[RG_LIMIT_KINDS];
	uint64_t auth_failures; /* credentials refused */
};

/* What the text reports beyond the counters, read by the caller where it lives. */
struct rg_metrics_state {
	uint64_t rooms, subscribers;
	uint64_t connections; /* TCP connections held */
	uint64_t memory_used, memory_limit, memory_by[RG_MEM_KINDS];
	uint64_t rss_bytes, open_fds; /* the process's; 0: unknown */
};

/* The Prometheus text format (version 0.0.4) of m and st. malloc'd, or NULL. */
char *rg_metrics_text(const struct rg_metrics *m, const struct rg_metrics_state *st);

#endif
