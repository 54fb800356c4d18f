/*
 * The server state the protocols share: the config, the rooms, the write buffer, the
 * wake batching. Lives on the lws service thread only.
 *
 * How a protocol finds it, per vhost (lws_protocol_vh_priv_zalloc), from its per-vhost
 * options (docs/OPERATIONS.md, "Embedding the chat protocol"):
 * - "shared": the state of the roomgate process, which the server sets as the lws
 *   context's user pointer (one state for every listener and protocol);
 * - "config": the path of a roomgate JSON config: the protocol, loaded as a plugin
 *   into another lws server, makes a state of its own for the vhost from it, and frees
 *   it with the vhost.
 */
#ifndef RG_SRV_H
#define RG_SRV_H

#include "../gateway/limits.h"
#include "../gateway/registry.h"

#include <ev.h>
#include <libwebsockets.h>

/* A connection that wants to write, as the wake batching below sees it. */
struct rg_wake {
	struct lws *wsi;
	struct rg_srv *srv;
	struct rg_wake *prev, *next; /* srv->pending (utlist DL_*); prev is NULL when not in it */
};

struct rg_srv {
	const struct rg_config *cfg;
	struct rg_registry reg;
	/* One write buffer for every connection: writes happen one at a time on the
	 * loop, and lws copies whatever the kernel does not take at once. LWS_PRE
	 * bytes of headroom precede scratch_len usable bytes. */
	unsigned char *scratch;
	size_t scratch_len;
	/* Wakes are batched: connections woken within delivery.coalesce_us are asked
	 * to write together, so a busy room's messages leave in fewer, larger writes. */
	struct rg_wake *pending;
	struct ev_loop *ev; /* the loop lws runs on (server.c) */
	ev_timer flush;     /* the window's end; data: this rg_srv */
	unsigned streams;   /* open WebSocket sessions and SSE streams */
	int stopping;       /* SIGTERM/SIGINT seen: close connections, accept nothing */
	/* a state of the vhost's own ("config"): its config, and the sweep of idle
	 * pattern rooms that roomgate's server otherwise runs */
	struct rg_config *own_cfg;
	lws_sorted_usec_list_t sweep;
	struct lws_context *ctx;
	struct rg_conn_limits conns; /* connections held, in all and per address */
	uint64_t reclaimed_seen;     /* reg.reclaimed at the last tick */
	uint64_t conn_ids;           /* the last network connection's id */
};

/* A network connection the limits admitted: lws's opaque user data of its network wsi,
 * from rg_srv_conn_admit to rg_srv_conn_release, which frees it. */
struct rg_conn {
	struct rg_peer *peer; /* its address's entry in the connection limits */
	uint64_t id;          /* the connection id of its log lines (log.h) */
	int served;           /* a request of it was answered or taken (access.h) */
	int tls_done;         /* its TLS handshake completed (rg_srv_conn_tls_done) */
	int loopback;         /* its peer is a loopback address (127/8, ::1) */
};

/* The network connection wsi belongs to (itself, or the HTTP/2 connection that carries
 * its stream), or NULL (not admitted: a state of a plugin host's own). */
struct rg_conn *rg_conn_of(struct lws *wsi);
/* Its address's entry in the limits, or NULL. */
struct rg_peer *rg_conn_peer(struct lws *wsi);
/* Its id, for log lines: 0 when there is none. */
uint64_t rg_conn_id(struct lws *wsi);

/* Puts cfg's log.* keys in force: the gateway's level, format and access lines, and
 * libwebsockets' level (its lines reach the gateway's log). At start and on a reload;
 * not for a state made as a plugin (the host owns lws's logging). */
void rg_srv_log_set(const struct rg_config *cfg);

#define RG_SRV_PVO_SHARED "shared"
#define RG_SRV_PVO_CONFIG "config"

/* Makes and frees a state for a server that has none of its own: cfg (owned), no event
 * loop of ours (no rx-more, no coalescing window). NULL when out of memory. */
struct rg_srv *rg_srv_new(struct rg_config *cfg);
void rg_srv_free(struct rg_srv *srv);
/* Sets the connection limits from srv->cfg, at start and on a reload (rg_srv_free and
 * the server clean the table up): limits.max_connections, or the open-files limit
 * minus a margin; limits.max_connections_per_address. */
void rg_srv_limits_set(struct rg_srv *srv);

/* From protocols[0] (the chat protocol): FILTER_NETWORK_CONNECTION checks an accepted
 * socket against the limits (nonzero: refused, lws closes the socket at once, logged);
 * SERVER_NEW_CLIENT_INSTANTIATED, which follows at once for the same socket, counts the
 * new network connection (nonzero: refused), WSI_DESTROY releases it. */
int rg_srv_conn_check(struct rg_srv *srv, int fd);
int rg_srv_conn_admit(struct rg_srv *srv, struct lws *wsi);
void rg_srv_conn_release(struct rg_srv *srv, struct lws *wsi);
/* From protocols[0]'s SSL_INFO (a TLS handshake done): the connection's handshake
 * completed; one that ends with no request is then not a TLS failure. */
void rg_srv_conn_tls_done(struct lws *wsi);
/* A WebSocket upgrade refused (path, origin): counted as a handshake failure. */
void rg_srv_conn_upgrade_refused(struct rg_srv *srv, struct lws *wsi);

/* The once-a-second upkeep: drops idle pattern rooms (how many, returned) and
 * addresses done with, makes way in the memory budget and logs when it is crossed. */
unsigned rg_srv_tick(struct rg_srv *srv);

/* What GET /metrics reports beside the counters, read where it lives: rooms and their
 * subscribers (a walk over the rooms), connections, the memory budget, and the
 * process's resident memory and descriptors (/proc). */
void rg_srv_state(const struct rg_srv *srv, struct rg_metrics_state *st);

/* The write buffer a config needs. */
size_t rg_srv_scratch_len(const struct rg_config *cfg);

/* From a protocol's PROTOCOL_INIT (in: its per-vhost options): finds or makes the
 * server state and keeps it as the protocol's per-vhost data. 0, or -1 (logged). */
int rg_srv_bind(struct lws *wsi, const void *in);
/* From PROTOCOL_DESTROY: frees a state the vhost made itself. */
void rg_srv_unbind(struct lws *wsi);
/* A protocol's PROTOCOL_INIT (rg_srv_bind) and PROTOCOL_DESTROY (rg_srv_unbind), the
 * same for every protocol: 1 and the callback's return value in *ret when reason was
 * one of them, else 0. */
int rg_srv_lifecycle(struct lws *wsi, enum lws_callback_reasons reason, const void *in, int *ret);
/* Prepares w for wsi. */
void rg_wake_init(struct rg_wake *w, struct rg_srv *srv, struct lws *wsi);
/* The session wake callback (owner: a struct rg_wake): asks for a writeable callback,
 * at once or at the end of the coalescing window. */
void rg_wake(void *owner);
/* The session doom callback (owner: a struct rg_wake): the connection is judged slow.
 * It is asked to write, which closes it as lagged; one that cannot write within
 * ws.ping_timeout_seconds (a stalled peer) is closed by lws's timeout. */
void rg_wake_doom(void *owner);
/* Forgets a pending wake; before the connection's memory goes. */
void rg_wake_cancel(struct rg_wake *w);
/* Asks every pending connection to write now (the window's end, or shutdown). */
void rg_wake_flush(struct rg_srv *srv);
/* The flush timer's callback. */
void rg_wake_on_window(struct ev_loop *ev, ev_timer *w, int revents);

/* How much a connection has read in the current loop pass (rg_rx_more). */
struct rg_rx_budget {
	unsigned iteration;
	size_t bytes;
};

/* After lws handed over len received bytes of wsi: lws reads at most rx_buffer_size
 * per service and libev services a descriptor once per loop pass, so a busy
 * publisher would be read 1 KiB per pass while the pass writes to every subscriber.
 * This asks for another read of wsi in the same pass, up to RG_RX_PASS_BYTES per
 * connection per pass (fairness between connections). A read that finds nothing
 * costs one recv() returning EAGAIN. */
#define RG_RX_PASS_BYTES (64 * 1024)
void rg_rx_more(struct rg_srv *srv, struct lws *wsi, struct rg_rx_budget *b, size_t len);

/* After rx flow control was lifted: reads what lws kept meanwhile, in the next pass
 * (lws would wait for new bytes from the peer first). */
void rg_rx_resume(struct rg_srv *srv, struct lws *wsi);

/* A timer of one connection, made only for the connections that need one (a token that
 * expires): calls fn(wsi) once, at a time in Unix seconds. */
struct rg_conn_timer {
	lws_sorted_usec_list_t sul;
	struct lws *wsi;
	void (*fn)(struct lws *wsi);
	int64_t at; /* the owner's: what it armed the timer for */
	int stage;  /* the owner's: what the next firing means */
};
/* (Re)arms *t (allocating it on first use) to call fn(wsi) at unix_s. 0 or -1 (out of
 * memory). */
int rg_conn_timer_at(struct rg_conn_timer **t, struct lws *wsi, int64_t unix_s,
		     void (*fn)(struct lws *wsi));
/* Cancels and frees *t, if any; before the connection's memory goes. */
void rg_conn_timer_free(struct rg_conn_timer **t);

/* The server state of wsi's protocol on its vhost; NULL before PROTOCOL_INIT, as for
 * lws's vhost-wide events that come with a placeholder wsi. */
struct rg_srv *rg_srv_of(struct lws *wsi);

#endif
