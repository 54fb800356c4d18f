/*
 * loadgen: an open-loop fan-out load generator for roomgate and its peers.
 *
 * Opens N subscribers (WebSocket or SSE, plain or TLS) spread over R rooms, publishes
 * 128-byte JSON messages over WebSocket or HTTP POST (keep-alive) at a fixed rate,
 * and measures, per message delivery, receive time minus the message's scheduled send
 * time (CLOCK_MONOTONIC ns carried in the message: {"t":NS,"i":N,"pad":"x..."}).
 * Everything is hand-written: TCP on epoll, the WebSocket client handshake and
 * framing, SSE and chunked parsing, an HTTP/1.1 response parser; OpenSSL for TLS.
 *
 * Targets: roomgate and the Node peer speak roomgate's protocol (join/publish/message);
 * nchan subscribes at /sub?room=X (raw bodies as text frames or SSE data) and is
 * published to at POST /pub?room=X.
 *
 * Modes: fanout (one step at --rate), search (raise the rate until the pass rule
 * fails, then bisect), idle (connect, hold, then check every connection still
 * receives), storm (drop every subscriber at once, reconnect, time until all caught up).
 * Every run is bounded by --max-time. Results: human text on stderr, one JSON object
 * per line on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wsframe.h"

#define NS 1000000000LL
#define MS 1000000LL

/* ---------------------------------------------------------------- options */

enum target { T_ROOMGATE, T_NODE, T_NCHAN };
enum mode { M_FANOUT, M_SEARCH, M_IDLE, M_STORM };
enum kind { K_SUB_WS, K_SUB_SSE, K_PUB_WS, K_PUB_HTTP };

static struct opts {
	enum target target;
	enum mode mode;
	const char *host;
	int port, pub_port;
	int tls, pub_plain;
	int sub_sse;  /* subscribers: 0 WebSocket, 1 SSE */
	int pub_http; /* publishers: 0 WebSocket, 1 HTTP POST */
	unsigned subs, rooms, pub_conns, threads, window, srcaddrs, pipeline;
	double rate, duration, drain, settle, hold, connect_timeout, max_time;
	unsigned size;
	const char *prefix;
	int pid;
	/* search */
	double search_start, search_factor, search_max, p99_ms, min_pct;
	unsigned search_bisect, search_steps;
	int busy_poll;
	/* storm */
	double storm_after, storm_timeout;
	const char *label;
} o = {
	.target = T_ROOMGATE,
	.mode = M_FANOUT,
	.host = "127.0.0.1",
	.port = 9001,
	.subs = 1000,
	.rooms = 1,
	.pub_conns = 1,
	.threads = 1,
	.window = 256,
	.srcaddrs = 8,
	.pipeline = 1,
	.rate = 100,
	.duration = 3,
	.drain = 1.5,
	.settle = 0.5,
	.hold = 0,
	.connect_timeout = 60,
	.max_time = 300,
	.size = 128,
	.prefix = "bench:",
	.search_start = 100,
	.search_factor = 2,
	.search_max = 1e6,
	.p99_ms = 100,
	.min_pct = 99,
	.search_bisect = 3,
	.search_steps = 16,
	.storm_after = 1,
	.storm_timeout = 30,
	.label = "",
};

/* ---------------------------------------------------------------- utilities */

static inline int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static void sleep_ns(int64_t d)
{
	if (d <= 0)
		return;
	struct timespec ts = {d / NS, d % NS};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static atomic_int log_budget = 40;

static void warnx_limited(const char *fmt, ...)
{
	if (atomic_fetch_sub(&log_budget, 1) <= 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "loadgen: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "loadgen: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void *xcalloc(size_t n, size_t s)
{
	void *p = calloc(n, s);
	if (!p)
		die("out of memory");
	return p;
}

/* The FIFO ring *buf (cap elements of size elem, n of them from head) made room for one
 * more: when full, doubled (1024 at first) and unwrapped to start at 0. */
static void ring_reserve(void **buf, uint32_t *cap, uint32_t *head, uint32_t n, size_t elem)
{
	if (n < *cap)
		return;
	uint32_t ncap = *cap ? *cap * 2 : 1024;
	char *p = xcalloc(ncap, elem), *old = *buf;
	for (uint32_t i = 0; i < n; i++)
		memcpy(p + i * elem, old + ((*head + i) % *cap) * elem, elem);
	free(old);
	*buf = p;
	*cap = ncap;
	*head = 0;
}

/* ---------------------------------------------------------------- histogram */

/* Log-linear like HdrHistogram: values below 128 exact, above that 64 sub-buckets per
 * power of two (<= 1.6% relative error). Values in ns. */
#define H_SUB     64
#define H_BUCKETS (64 * H_SUB)

struct hist {
	uint64_t n, max, min, sum;
	uint64_t c[H_BUCKETS];
};

static inline unsigned h_idx(uint64_t v)
{
	if (v < 2 * H_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v), sh = msb - 6;
	return (sh + 1) * H_SUB + (unsigned)(v >> sh) - H_SUB;
}

static uint64_t h_upper(unsigned idx)
{
	if (idx < 2 * H_SUB)
		return idx;
	unsigned sh = idx / H_SUB - 1;
	uint64_t sub = idx % H_SUB + H_SUB;
	return ((sub + 1) << sh) - 1;
}

static inline void h_add(struct hist *h, uint64_t v)
{
	h->c[h_idx(v)]++;
	if (!h->n || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->n++;
	h->sum += v;
}

static void h_merge(struct hist *d, const struct hist *s)
{
	if (!s->n)
		return;
	for (unsigned i = 0; i < H_BUCKETS; i++)
		d->c[i] += s->c[i];
	if (!d->n || s->min < d->min)
		d->min = s->min;
	if (s->max > d->max)
		d->max = s->max;
	d->n += s->n;
	d->sum += s->sum;
}

static double h_pct_ms(const struct hist *h, double p)
{
	if (!h->n)
		return 0;
	uint64_t target = (uint64_t)ceil(p / 100.0 * (double)h->n), cum = 0;
	if (!target)
		target = 1;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		cum += h->c[i];
		if (cum >= target) {
			uint64_t v = h_upper(i);
			return (double)(v > h->max ? h->max : v) / 1e6;
		}
	}
	return (double)h->max / 1e6;
}

/* ---------------------------------------------------------------- buffers */

struct buf {
	char *p;
	uint32_t len, off, cap;
};

static void buf_reserve(struct buf *b, size_t need)
{
	if (b->cap >= need)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		die("out of memory");
	b->p = p;
	b->cap = (uint32_t)cap;
}

static void buf_append(struct buf *b, const void *d, size_t n)
{
	if (b->off && b->off == b->len)
		b->off = b->len = 0;
	if (b->off > 65536 && b->off > b->len / 2) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	buf_reserve(b, (size_t)b->len + n);
	memcpy(b->p + b->len, d, n);
	b->len += (uint32_t)n;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---------------------------------------------------------------- connections */

enum cstate {
	C_IDLE,       /* not connected; may be queued to connect */
	C_CONNECTING, /* TCP connect in progress */
	C_TLS,        /* TLS handshake */
	C_HANDSHAKE,  /* HTTP request sent, awaiting the response headers */
	C_JOINING,    /* WebSocket up, join(s) sent, awaiting joined */
	C_READY,
	C_CLOSED, /* closed after having been ready */
	C_FAILED, /* gave up connecting */
};

enum { CK_SIZE, CK_EXT, CK_DATA, CK_CRLF, CK_TRAILER, CK_END };

struct pubitem {
	int64_t t;
	uint64_t i;
	uint32_t room;
};

struct pubq {
	struct pubitem *it;
	uint32_t cap, head, n;
	struct pubitem cur[64]; /* in flight, oldest first */
	uint32_t ncur;
};

struct worker;

struct conn {
	int fd;
	uint8_t kind, state, chunked, ck_st;
	uint8_t ready_at_run, in_body, caught, reconnected;
	uint16_t close_code, joins_needed;
	uint32_t ev; /* registered epoll events (0: not registered) */
	uint32_t id; /* subscriber index, or publisher index */
	uint32_t room;
	uint32_t attempts;
	int64_t ck_rem, body_rem;
	int64_t t0, t_attempt, t_ready, t_first;
	uint64_t last_i, win_recv;
	SSL *ssl;
	struct buf in, out, frag;
	struct pubq *q;
	struct worker *w;
};

struct stats {
	uint64_t recv, stale, gaps, dups, lagged, closes, conn_fail, conn_retry;
	uint64_t pub_sent, pub_ok, pub_err, pub_requeued;
	uint64_t subs_full, subs_partial, subs_none, subs_counted;
	uint64_t caught, reads, bytes_in;
	int64_t pub_lag_max, pub_backlog_max, ready_max, caught_max;
	struct hist lat;
	struct hist conn;
};

struct worker {
	int id, ep;
	pthread_t th;
	struct conn **conns; /* subscribers then (worker 0) publishers */
	uint32_t nconns, nsubs;
	struct conn **pend; /* ring of connections waiting to connect */
	uint32_t pend_head, pend_n, pend_cap;
	uint32_t inflight, window;
	char *rbuf;
	size_t rbuf_cap;
	struct stats st, snap;
	uint32_t *room_ready; /* subscribers ready at the step start, per room */
	int seen;
	int64_t drop_t, last_scan;
	/* publisher state (worker 0) */
	int pub_active;
	uint64_t any; /* bench payloads received, any window */
	uint64_t pub_k, pub_total;
	_Atomic uint64_t a_ready, a_failed, a_recv, a_any, a_caught, a_inflight;
	atomic_int ack;
	int quit;
};

enum { CMD_NONE, CMD_CONNECT, CMD_RUN, CMD_COLLECT, CMD_DROP, CMD_QUIT };

static struct {
	struct worker *w;
	struct conn *subs, *pubs;
	atomic_int seq;
	int cmd;
	int64_t win_start, win_end;
	double rate;
	atomic_int pub_done, pub_stop, stepping;
	uint64_t *pub_count, *room_seq;
	char **room_name;
	size_t *room_name_len;
	SSL_CTX *ssl_ctx;
	struct sockaddr_in dst, pub_dst;
	char hostport[64], pub_hostport[64];
	struct tl_bucket *tl; /* LG_TIMELINE: per 10 ms of publish schedule */
	size_t tl_n;
} g;

/* A diagnostic for latency tails (LG_TIMELINE=file): for each 10 ms of the publish
 * schedule, the deliveries, those over 2 ms, the worst latency and the worst publisher
 * lag, so a stall shows when it happened and whether the publisher was late. */
#define TL_NS (10 * MS)
struct tl_bucket {
	atomic_uint_fast64_t n, slow, max, pub_lag;
};

static void atomic_max(atomic_uint_fast64_t *a, uint64_t v)
{
	uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);
	while (v > cur && !atomic_compare_exchange_weak(a, &cur, v))
		;
}

static struct tl_bucket *tl_at(int64_t ts)
{
	if (!g.tl || ts < g.win_start)
		return NULL;
	size_t b = (size_t)((ts - g.win_start) / TL_NS);
	return b < g.tl_n ? &g.tl[b] : NULL;
}

static void conn_close(struct conn *c, int rst);
static void conn_after_transport(struct conn *c);
static int conn_flush(struct conn *c);
static void pub_kick(struct conn *c);

static void set_events(struct conn *c, uint32_t ev)
{
	if (c->ev == ev)
		return;
	struct epoll_event e = {.events = ev, .data.ptr = c};
	if (epoll_ctl(c->w->ep, c->ev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e))
		die("epoll_ctl: %s", strerror(errno));
	c->ev = ev;
}

static void update_events(struct conn *c)
{
	uint32_t ev = EPOLLIN;
	if (c->state == C_CONNECTING || c->out.len > c->out.off)
		ev |= EPOLLOUT;
	set_events(c, ev);
}

static void pend_push(struct worker *w, struct conn *c)
{
	ring_reserve((void **)&w->pend, &w->pend_cap, &w->pend_head, w->pend_n, sizeof(*w->pend));
	w->pend[(w->pend_head + w->pend_n++) % w->pend_cap] = c;
}

static int is_pub(const struct conn *c)
{
	return c->kind == K_PUB_WS || c->kind == K_PUB_HTTP;
}

static void set_ready(struct conn *c)
{
	struct worker *w = c->w;
	int64_t t = now_ns();
	c->state = C_READY;
	c->t_ready = t;
	c->attempts = 0;
	w->inflight--;
	h_add(&w->st.conn, (uint64_t)(t - c->t0));
	atomic_store_explicit(&w->a_ready, atomic_load_explicit(&w->a_ready, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (c->reconnected && t - w->drop_t > w->st.ready_max)
		w->st.ready_max = t - w->drop_t;
	if (is_pub(c) && c->kind == K_PUB_HTTP)
		pub_kick(c);
}

/* A connection attempt failed before becoming ready: retry a few times, then give up. */
static void conn_fail(struct conn *c, const char *why)
{
	struct worker *w = c->w;
	warnx_limited("%s %u: %s (attempt %u)", is_pub(c) ? "publisher" : "subscriber", c->id, why,
		      c->attempts + 1);
	conn_close(c, 1);
	w->inflight--;
	if (++c->attempts < 4) {
		w->st.conn_retry++;
		c->state = C_IDLE;
		pend_push(w, c);
	} else {
		c->state = C_FAILED;
		w->st.conn_fail++;
		atomic_store_explicit(&w->a_failed,
				      atomic_load_explicit(&w->a_failed, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	}
}

/* A ready connection went away (peer close, reset, close frame). */
static void conn_lost(struct conn *c, const char *why)
{
	struct worker *w = c->w;
	if (c->close_code == 4008)
		w->st.lagged++;
	else
		w->st.closes++;
	warnx_limited("%s %u closed: %s (close code %u)", is_pub(c) ? "publisher" : "subscriber",
		      c->id, why, c->close_code);
	conn_close(c, 1);
	c->state = C_CLOSED;
	atomic_store_explicit(&w->a_ready, atomic_load_explicit(&w->a_ready, memory_order_relaxed) - 1,
			      memory_order_relaxed);
	if (is_pub(c)) {
		/* Publishers come back by themselves (HTTP keep-alive timeouts); requests in
		 * flight go back to the queue. */
		if (c->q) {
			for (uint32_t k = c->q->ncur; k-- > 0;) {
				if (c->q->n == c->q->cap) {
					warnx_limited("publisher queue full, dropping a message");
					continue;
				}
				c->q->head = (c->q->head + c->q->cap - 1) % c->q->cap;
				c->q->it[c->q->head] = c->q->cur[k];
				c->q->n++;
				w->st.pub_requeued++;
			}
			c->q->ncur = 0;
		}
		c->state = C_IDLE;
		c->attempts = 0;
		c->t0 = now_ns();
		pend_push(w, c);
	}
}

static void conn_close(struct conn *c, int rst)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		if (rst) {
			struct linger l = {1, 0};
			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		close(c->fd); /* also leaves the epoll set */
		c->fd = -1;
	}
	c->ev = 0;
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->frag);
	c->chunked = 0;
	c->ck_st = CK_SIZE;
	c->ck_rem = 0;
	c->in_body = 0;
	c->body_rem = 0;
	c->close_code = 0;
}

static void conn_start(struct conn *c)
{
	struct worker *w = c->w;
	int64_t t = now_ns();
	if (!c->attempts || !c->t0)
		c->t0 = t;
	c->t_attempt = t;
	c->last_i = 0;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	w->inflight++;
	c->state = C_CONNECTING;
	if (c->fd < 0) {
		conn_fail(c, strerror(errno));
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o.srcaddrs > 1 && ntohl(g.dst.sin_addr.s_addr) >> 24 == 127) {
		/* Several loopback source addresses: more ephemeral ports than one address has. */
		struct sockaddr_in src = {.sin_family = AF_INET};
		src.sin_addr.s_addr = htonl(0x7f000001u + (c->id % o.srcaddrs));
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src))) {
			conn_fail(c, strerror(errno));
			return;
		}
	}
	const struct sockaddr_in *dst = is_pub(c) ? &g.pub_dst : &g.dst;
	if (connect(c->fd, (const struct sockaddr *)dst, sizeof(*dst)) && errno != EINPROGRESS) {
		conn_fail(c, strerror(errno));
		return;
	}
	update_events(c);
}

/* ---------------------------------------------------------------- writing */

static int conn_flush(struct conn *c)
{
	while (c->out.off < c->out.len) {
		size_t n = c->out.len - c->out.off;
		ssize_t r;
		if (c->ssl) {
			ERR_clear_error();
			int k = SSL_write(c->ssl, c->out.p + c->out.off, (int)(n > 1 << 30 ? 1 << 30 : n));
			if (k <= 0) {
				int e = SSL_get_error(c->ssl, k);
				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
					break;
				return -1;
			}
			r = k;
		} else {
			r = send(c->fd, c->out.p + c->out.off, n, MSG_NOSIGNAL);
			if (r < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				return -1;
			}
		}
		c->out.off += (uint32_t)r;
	}
	if (c->out.off == c->out.len) {
		c->out.off = c->out.len = 0;
		if (c->out.cap > 65536 || (!is_pub(c) && c->state == C_READY))
			buf_free(&c->out);
	}
	update_events(c);
	return 0;
}

static void conn_send(struct conn *c, const void *d, size_t n)
{
	buf_append(&c->out, d, n);
}

static uint32_t xorshift32(void)
{
	static _Thread_local uint32_t s = 2463534242u;
	s ^= s << 13;
	s ^= s >> 17;
	s ^= s << 5;
	return s;
}

/* A masked client frame. */
static size_t ws_frame(unsigned char *out, unsigned op, const void *payload, size_t len)
{
	const unsigned char *pl = payload;
	size_t h = 0;
	out[h++] = (unsigned char)(0x80 | op);
	if (len < 126)
		out[h++] = (unsigned char)(0x80 | len);
	else if (len < 65536) {
		out[h++] = 0x80 | 126;
		out[h++] = (unsigned char)(len >> 8);
		out[h++] = (unsigned char)len;
	} else {
		out[h++] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			out[h++] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	}
	uint32_t m = xorshift32();
	unsigned char *mk = out + h;
	memcpy(mk, &m, 4);
	h += 4;
	for (size_t i = 0; i < len; i++)
		out[h + i] = pl[i] ^ mk[i & 3];
	return h + len;
}

static void ws_send_text(struct conn *c, const char *text, size_t len)
{
	unsigned char stackbuf[1024], *f = len + 14 <= sizeof(stackbuf) ? stackbuf : malloc(len + 14);
	if (!f)
		die("out of memory");
	size_t n = ws_frame(f, 1, text, len);
	conn_send(c, f, n);
	if (f != stackbuf)
		free(f);
}

/* {"t":T,"i":I,"pad":"xxx"} of exactly o.size bytes (or shorter if o.size is tiny). */
static size_t make_data(char *out, int64_t t, uint64_t i)
{
	int n = sprintf(out, "{\"t\":%" PRId64 ",\"i\":%" PRIu64 ",\"pad\":\"", t, i);
	size_t pad = o.size > (size_t)n + 2 ? o.size - (size_t)n - 2 : 0;
	memset(out + n, 'x', pad);
	n += (int)pad;
	out[n++] = '"';
	out[n++] = '}';
	return (size_t)n;
}

static const char WS_KEY[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char WS_ACCEPT[] = "s3pplmbitxaq9kygzzhzrbk+xoo="; /* lower-cased */

static void send_request(struct conn *c)
{
	char req[1024];
	const char *room = g.room_name[c->room];
	int n;
	if (c->kind == K_SUB_WS || c->kind == K_PUB_WS) {
		char path[300];
		if (o.target == T_NCHAN)
			snprintf(path, sizeof(path), "/sub?room=%s", room);
		else
			snprintf(path, sizeof(path), "/ws");
		n = snprintf(req, sizeof(req),
			     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
			     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
			     "Sec-WebSocket-Version: 13\r\n%s\r\n",
			     path, is_pub(c) ? g.pub_hostport : g.hostport, WS_KEY,
			     o.target == T_NCHAN ? "" : "Sec-WebSocket-Protocol: roomgate.v1\r\n");
	} else {
		n = snprintf(req, sizeof(req),
			     "GET %s%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
			     "Cache-Control: no-cache\r\n\r\n",
			     o.target == T_NCHAN ? "/sub?room=" : "/events?room=", room, g.hostport);
	}
	conn_send(c, req, (size_t)n);
	c->state = C_HANDSHAKE;
}

static void send_joins(struct conn *c)
{
	char msg[400];
	c->joins_needed = 0;
	if (c->kind == K_SUB_WS) {
		int n = snprintf(msg, sizeof(msg), "{\"type\":\"join\",\"room\":\"%s\"}",
				 g.room_name[c->room]);
		ws_send_text(c, msg, (size_t)n);
		c->joins_needed = 1;
		return;
	}
	for (uint32_t r = c->id; r < o.rooms; r += o.pub_conns) {
		int n = snprintf(msg, sizeof(msg), "{\"type\":\"join\",\"room\":\"%s\"}",
				 g.room_name[r]);
		ws_send_text(c, msg, (size_t)n);
		c->joins_needed++;
	}
}

static void conn_after_transport(struct conn *c)
{
	if (c->kind == K_PUB_HTTP) {
		set_ready(c);
		update_events(c);
		return;
	}
	send_request(c);
	if (conn_flush(c))
		conn_fail(c, "write failed");
}

static void tls_step(struct conn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		conn_after_transport(c);
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		set_events(c, EPOLLIN);
	else if (e == SSL_ERROR_WANT_WRITE)
		set_events(c, EPOLLIN | EPOLLOUT);
	else {
		char why[160];
		unsigned long ec = ERR_peek_error();
		snprintf(why, sizeof(why), "TLS handshake failed: %s",
			 ec ? ERR_error_string(ec, NULL) : strerror(errno));
		conn_fail(c, why);
	}
}

static void on_connected(struct conn *c)
{
	int err = 0;
	socklen_t l = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) || err) {
		conn_fail(c, strerror(err ? err : errno));
		return;
	}
	if (o.tls && !(is_pub(c) && o.pub_plain)) {
		c->ssl = SSL_new(g.ssl_ctx);
		if (!c->ssl)
			die("SSL_new failed");
		SSL_set_fd(c->ssl, c->fd);
		SSL_set_connect_state(c->ssl);
		c->state = C_TLS;
		tls_step(c);
		return;
	}
	conn_after_transport(c);
}

/* ---------------------------------------------------------------- publishing */

static inline int64_t sched_t(uint64_t k)
{
	return g.win_start + (int64_t)((double)k * 1e9 / g.rate);
}

static void pubq_push(struct pubq *q, struct pubitem it)
{
	ring_reserve((void **)&q->it, &q->cap, &q->head, q->n, sizeof(*q->it));
	q->it[(q->head + q->n++) % q->cap] = it;
}

static void pub_note_lag(struct worker *w, int64_t t)
{
	int64_t lag = now_ns() - t;
	struct tl_bucket *b = tl_at(t);
	if (b && lag > 0)
		atomic_max(&b->pub_lag, (uint64_t)lag);
	if (lag > w->st.pub_lag_max)
		w->st.pub_lag_max = lag;
}

/* HTTP publisher: send queued requests while fewer than o.pipeline are in flight. */
static void pub_kick(struct conn *c)
{
	struct pubq *q = c->q;
	if (c->state != C_READY)
		return;
	int sent = 0;
	while (q->n && q->ncur < o.pipeline) {
		struct pubitem it = q->it[q->head];
		q->head = (q->head + 1) % q->cap;
		q->n--;
		char data[4096], req[4096 + 512];
		size_t dl = make_data(data, it.t, it.i);
		int n;
		if (o.target == T_NCHAN)
			n = snprintf(req, sizeof(req),
				     "POST /pub?room=%s HTTP/1.1\r\nHost: %s\r\n"
				     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
				     g.room_name[it.room], g.pub_hostport, dl);
		else
			n = snprintf(req, sizeof(req),
				     "POST /rooms/%s/messages HTTP/1.1\r\nHost: %s\r\n"
				     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
				     g.room_name[it.room], g.pub_hostport, dl);
		memcpy(req + n, data, dl);
		conn_send(c, req, (size_t)n + dl);
		q->cur[q->ncur++] = it;
		c->w->st.pub_sent++;
		pub_note_lag(c->w, it.t);
		sent = 1;
	}
	if (sent && conn_flush(c))
		conn_lost(c, "write failed");
}

static void pub_emit(struct worker *w, uint64_t k)
{
	uint32_t room = (uint32_t)(k % o.rooms);
	struct conn *c = &g.pubs[room % o.pub_conns];
	struct pubitem it = {.t = sched_t(k), .i = ++g.room_seq[room], .room = room};
	g.pub_count[room]++;
	if (c->kind == K_PUB_HTTP) {
		pubq_push(c->q, it);
		return;
	}
	char data[4096], msg[4096 + 400];
	size_t dl = make_data(data, it.t, it.i);
	int n = snprintf(msg, sizeof(msg), "{\"type\":\"publish\",\"room\":\"%s\",\"data\":",
			 g.room_name[room]);
	memcpy(msg + n, data, dl);
	n += (int)dl;
	msg[n++] = '}';
	if (c->state != C_READY) {
		/* A WebSocket publisher that is down loses the message: count it as sent
		 * so that it shows as undelivered. */
		warnx_limited("publisher %u not ready, message lost", c->id);
		return;
	}
	ws_send_text(c, msg, (size_t)n);
	w->st.pub_sent++;
	pub_note_lag(w, it.t);
}

/* Worker 0: emits every message due by now; returns ns until the next one (or -1). */
static int64_t pub_pump(struct worker *w)
{
	if (!w->pub_active)
		return -1;
	int64_t t = now_ns();
	int emitted = 0;
	while (w->pub_k < w->pub_total && sched_t(w->pub_k) <= t &&
	       !atomic_load_explicit(&g.pub_stop, memory_order_relaxed)) {
		pub_emit(w, w->pub_k++);
		emitted = 1;
	}
	if (emitted) {
		for (uint32_t j = 0; j < o.pub_conns; j++) {
			struct conn *c = &g.pubs[j];
			if (c->state != C_READY)
				continue;
			if (c->kind == K_PUB_HTTP)
				pub_kick(c);
			else {
				int64_t backlog = (int64_t)c->out.len - c->out.off;
				if (backlog > w->st.pub_backlog_max)
					w->st.pub_backlog_max = backlog;
				if (conn_flush(c))
					conn_lost(c, "write failed");
			}
		}
	}
	if (w->pub_k >= w->pub_total || atomic_load_explicit(&g.pub_stop, memory_order_relaxed)) {
		w->pub_active = 0;
		atomic_store_explicit(&g.pub_done, 1, memory_order_release);
		return -1;
	}
	int64_t d = sched_t(w->pub_k) - t;
	return d > 0 ? d : 0;
}

/* ---------------------------------------------------------------- receiving */

static inline uint64_t parse_u64(const char *p, const char *end, int *ok)
{
	uint64_t v = 0;
	const char *s = p;
	while (p < end && *p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	*ok = p > s;
	return v;
}

/* The JSON key "k": (one letter) in [p, end), or NULL. The receive path's hottest
 * search: memchr for the letter beats glibc memmem for a 4-byte needle by far, which
 * matters where the load generator's own CPU bounds a saturation search. */
static const char *find_key1(const char *p, const char *end, char k)
{
	const char *q = p + 1;
	while (q + 2 < end && (q = memchr(q, k, (size_t)(end - q - 2))) != NULL) {
		if (q[-1] == '"' && q[1] == '"' && q[2] == ':')
			return q - 1;
		q++;
	}
	return NULL;
}

/* One delivered message body (WS text payload or SSE data line). */
static void on_payload(struct conn *c, const char *p, size_t len, int64_t t)
{
	struct worker *w = c->w;
	const char *end = p + len, *q = find_key1(p, end, 't');
	int ok, ok2 = 0;
	if (!q)
		return;
	uint64_t ts = parse_u64(q + 4, end, &ok), i = 0;
	const char *qi = find_key1(q, end, 'i');
	if (qi)
		i = parse_u64(qi + 4, end, &ok2);
	if (!ok)
		return;
	if (ok2) {
		if (c->last_i && i != c->last_i + 1) {
			if (i <= c->last_i)
				w->st.dups++;
			else
				w->st.gaps += i - c->last_i - 1;
		}
		if (i > c->last_i)
			c->last_i = i;
	}
	w->any++;
	if ((int64_t)ts < g.win_start || (int64_t)ts >= g.win_end) {
		w->st.stale++;
		return;
	}
	int64_t lat = t - (int64_t)ts;
	h_add(&w->st.lat, lat > 0 ? (uint64_t)lat : 0);
	struct tl_bucket *b = tl_at((int64_t)ts);
	if (b) {
		atomic_fetch_add_explicit(&b->n, 1, memory_order_relaxed);
		if (lat > 2 * MS)
			atomic_fetch_add_explicit(&b->slow, 1, memory_order_relaxed);
		atomic_max(&b->max, lat > 0 ? (uint64_t)lat : 0);
	}
	w->st.recv++;
	c->win_recv++;
	if (!c->t_first) {
		c->t_first = t;
		if (c->reconnected && !c->caught) {
			c->caught = 1;
			w->st.caught++;
			if (t - w->drop_t > w->st.caught_max)
				w->st.caught_max = t - w->drop_t;
		}
	}
}

static int on_ws_text(struct conn *c, const char *p, size_t len, int64_t t)
{
	size_t head = len < 48 ? len : 48;
	if (c->state == C_JOINING) {
		if (memmem(p, head, "\"type\":\"joined\"", 15)) {
			if (c->joins_needed && !--c->joins_needed)
				set_ready(c);
			return 0;
		}
		if (memmem(p, head, "\"type\":\"error\"", 14)) {
			char why[200];
			snprintf(why, sizeof(why), "join refused: %.*s", (int)(len < 150 ? len : 150), p);
			conn_fail(c, why);
			return -1;
		}
		return 0;
	}
	if (c->kind == K_PUB_WS) {
		if (memmem(p, head, "\"type\":\"ack\"", 12))
			c->w->st.pub_ok++;
		else if (memmem(p, head, "\"type\":\"error\"", 14)) {
			c->w->st.pub_err++;
			warnx_limited("publish refused: %.*s", (int)(len < 200 ? len : 200), p);
		}
		return 0;
	}
	on_payload(c, p, len, t);
	return 0;
}

/* Parses server frames; returns the bytes consumed (a partial frame stays), -1 when
 * the connection was closed. */
static long ws_parse(struct conn *c, const char *data, size_t len, int64_t t)
{
	unsigned char *p = (unsigned char *)data; /* unmasked in place */
	size_t pos = 0;
	while (len - pos >= 2) {
		unsigned char *f = p + pos;
		size_t avail = len - pos, hl;
		uint64_t pl;
		int fin = f[0] & 0x80, op = f[0] & 0x0f;
		if (ws_frame_head(f, avail, &hl, &pl))
			break;
		if (pl > (64u << 20)) {
			conn_lost(c, "frame too large");
			return -1;
		}
		if (avail < hl + pl)
			break;
		char *payload = (char *)f + hl;
		ws_frame_unmask(f, hl, pl); /* servers do not mask; tolerate it anyway */
		pos += hl + pl;
		switch (op) {
		case 0x1:
		case 0x2:
			if (fin) {
				if (on_ws_text(c, payload, pl, t))
					return -1;
			} else {
				c->frag.len = 0;
				buf_append(&c->frag, payload, pl);
			}
			break;
		case 0x0:
			buf_append(&c->frag, payload, pl);
			if (fin) {
				int r = on_ws_text(c, c->frag.p, c->frag.len, t);
				buf_free(&c->frag);
				if (r)
					return -1;
			}
			break;
		case 0x8: {
			c->close_code = pl >= 2 ? (uint16_t)((unsigned char)payload[0] << 8 |
							     (unsigned char)payload[1])
						: 1005;
			char why[160];
			snprintf(why, sizeof(why), "close frame %u %.*s", c->close_code,
				 (int)(pl > 2 && pl < 100 ? pl - 2 : 0), payload + 2);
			if (c->state == C_READY)
				conn_lost(c, why);
			else
				conn_fail(c, why);
			return -1;
		}
		case 0x9: {
			unsigned char pong[256];
			size_t n = ws_frame(pong, 0xA, payload, pl < 125 ? pl : 125);
			conn_send(c, pong, n);
			if (conn_flush(c)) {
				conn_lost(c, "write failed");
				return -1;
			}
			break;
		}
		default:
			break;
		}
	}
	return (long)pos;
}

static void sse_line(struct conn *c, const char *p, size_t n, int64_t t)
{
	if (n && p[n - 1] == '\r')
		n--;
	if (n >= 5 && !memcmp(p, "data:", 5))
		on_payload(c, p + 5, n - 5, t);
	else if (n >= 13 && !memcmp(p, "event: lagged", 13))
		c->close_code = 4008;
}

static void sse_feed(struct conn *c, const char *p, size_t len, int64_t t)
{
	while (len) {
		const char *nl = memchr(p, '\n', len);
		if (!nl) {
			if (c->in.len + len > (1u << 20)) {
				c->in.len = 0; /* garbage; resync */
				return;
			}
			buf_append(&c->in, p, len);
			return;
		}
		size_t n = (size_t)(nl - p);
		if (c->in.len) {
			buf_append(&c->in, p, n);
			sse_line(c, c->in.p, c->in.len, t);
			c->in.len = c->in.off = 0;
		} else
			sse_line(c, p, n, t);
		p = nl + 1;
		len -= n + 1;
	}
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Chunked transfer decoding; data goes to the SSE parser (sse) or nowhere. Returns the
 * bytes consumed; stops after the last chunk's trailer (c->ck_st == CK_END). */
static size_t dechunk(struct conn *c, const char *p, size_t len, int sse, int64_t t)
{
	size_t pos = 0;
	while (pos < len && c->ck_st != CK_END) {
		char ch = p[pos];
		switch (c->ck_st) {
		case CK_SIZE: {
			int v = hexval((unsigned char)ch);
			pos++;
			if (v >= 0)
				c->ck_rem = c->ck_rem * 16 + v;
			else if (ch == '\n')
				c->ck_st = c->ck_rem ? CK_DATA : CK_TRAILER;
			else if (ch != '\r')
				c->ck_st = CK_EXT;
			if (c->ck_st == CK_TRAILER)
				c->body_rem = 0; /* length of the current trailer line */
			break;
		}
		case CK_EXT:
			pos++;
			if (ch == '\n') {
				c->ck_st = c->ck_rem ? CK_DATA : CK_TRAILER;
				c->body_rem = 0;
			}
			break;
		case CK_DATA: {
			size_t n = len - pos < (size_t)c->ck_rem ? len - pos : (size_t)c->ck_rem;
			if (sse)
				sse_feed(c, p + pos, n, t);
			pos += n;
			c->ck_rem -= (int64_t)n;
			if (!c->ck_rem)
				c->ck_st = CK_CRLF;
			break;
		}
		case CK_CRLF:
			pos++;
			if (ch == '\n') {
				c->ck_st = CK_SIZE;
				c->ck_rem = 0;
			}
			break;
		case CK_TRAILER:
			pos++;
			if (ch == '\n') {
				if (!c->body_rem)
					c->ck_st = CK_END;
				c->body_rem = 0;
			} else if (ch != '\r')
				c->body_rem++;
			break;
		}
	}
	return pos;
}

/* Lower-cased copy of a header block, for case-insensitive searches. */
static void lower_copy(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[n] = 0;
}

static int header_value(const char *lhdr, const char *name, char *out, size_t cap)
{
	const char *h = strstr(lhdr, name);
	if (!h)
		return -1;
	h += strlen(name);
	while (*h == ' ' || *h == '\t')
		h++;
	size_t n = strcspn(h, "\r\n");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, h, n);
	out[n] = 0;
	return 0;
}

/* Response headers of a subscriber's request: 0 to go on, -1 failed (handled). */
static int on_sub_headers(struct conn *c, const char *p, size_t hl)
{
	char lh[8193], v[256];
	if (hl > 8192) {
		conn_fail(c, "response headers too long");
		return -1;
	}
	lower_copy(lh, p, hl);
	int status = hl > 12 ? atoi(lh + 9) : 0;
	if (c->kind == K_SUB_SSE) {
		if (status != 200) {
			char why[200];
			snprintf(why, sizeof(why), "SSE request answered %d: %.*s", status,
				 (int)(hl < 120 ? hl : 120), p);
			conn_fail(c, why);
			return -1;
		}
		c->chunked = !header_value(lh, "\ntransfer-encoding:", v, sizeof(v)) &&
			     strstr(v, "chunked");
		c->ck_st = CK_SIZE;
		c->ck_rem = 0;
		set_ready(c);
		return 0;
	}
	if (status != 101 || header_value(lh, "\nsec-websocket-accept:", v, sizeof(v)) ||
	    strcmp(v, WS_ACCEPT)) {
		char why[200];
		snprintf(why, sizeof(why), "WebSocket upgrade answered %d: %.*s", status,
			 (int)(hl < 120 ? hl : 120), p);
		conn_fail(c, why);
		return -1;
	}
	if (o.target == T_NCHAN) {
		set_ready(c);
		return 0;
	}
	c->state = C_JOINING;
	send_joins(c);
	if (!c->joins_needed)
		set_ready(c);
	if (conn_flush(c)) {
		conn_fail(c, "write failed");
		return -1;
	}
	return 0;
}

/* HTTP publisher responses; returns bytes consumed or -1. */
static long on_pub_responses(struct conn *c, const char *p, size_t len)
{
	size_t pos = 0;
	struct worker *w = c->w;
	while (pos < len) {
		if (!c->in_body) {
			const char *e = memmem(p + pos, len - pos, "\r\n\r\n", 4);
			if (!e) {
				if (len - pos > 16384) {
					conn_lost(c, "response headers too long");
					return -1;
				}
				break;
			}
			size_t hl = (size_t)(e + 4 - (p + pos));
			char lh[4097], v[64];
			lower_copy(lh, p + pos, hl < 4096 ? hl : 4096);
			int status = atoi(lh + 9);
			if (status >= 200 && status < 300)
				w->st.pub_ok++;
			else {
				w->st.pub_err++;
				warnx_limited("publish answered %d: %.*s", status,
					      (int)(hl < 200 ? hl : 200), p + pos);
			}
			c->chunked = !header_value(lh, "\ntransfer-encoding:", v, sizeof(v)) &&
				     strstr(v, "chunked");
			c->body_rem = 0;
			if (!c->chunked && !header_value(lh, "\ncontent-length:", v, sizeof(v)))
				c->body_rem = atoll(v);
			c->ck_st = CK_SIZE;
			c->ck_rem = 0;
			c->in_body = 1;
			pos += hl;
		}
		if (c->chunked) {
			pos += dechunk(c, p + pos, len - pos, 0, 0);
			if (c->ck_st != CK_END)
				break;
		} else {
			size_t n = len - pos < (size_t)c->body_rem ? len - pos : (size_t)c->body_rem;
			pos += n;
			c->body_rem -= (int64_t)n;
			if (c->body_rem)
				break;
		}
		c->in_body = 0;
		if (c->q->ncur) {
			memmove(c->q->cur, c->q->cur + 1, (c->q->ncur - 1) * sizeof(c->q->cur[0]));
			c->q->ncur--;
		}
	}
	pub_kick(c);
	return c->state == C_READY ? (long)pos : -1;
}

/* Everything read from a connection: p[0..len) (carry first). Returns the bytes
 * consumed (the rest is kept), -1 when the connection closed or failed. */
static long process(struct conn *c, char *p, size_t len, int64_t t)
{
	size_t pos = 0;
	if (c->state == C_HANDSHAKE) {
		const char *e = memmem(p, len, "\r\n\r\n", 4);
		if (!e) {
			if (len > 16384) {
				conn_fail(c, "response headers too long");
				return -1;
			}
			return 0;
		}
		pos = (size_t)(e + 4 - p);
		if (on_sub_headers(c, p, pos))
			return -1;
	}
	switch (c->kind) {
	case K_SUB_WS:
	case K_PUB_WS: {
		long r = ws_parse(c, p + pos, len - pos, t);
		return r < 0 ? -1 : (long)pos + r;
	}
	case K_SUB_SSE:
		if (c->chunked)
			dechunk(c, p + pos, len - pos, 1, t);
		else
			sse_feed(c, p + pos, len - pos, t);
		return (long)len;
	default:
		return on_pub_responses(c, p, len);
	}
}

static void conn_read(struct conn *c)
{
	struct worker *w = c->w;
	for (int round = 0; round < 64; round++) {
		/* SSE streams keep their own line carry; everything else prepends its carry. */
		int prepend = !(c->kind == K_SUB_SSE && c->state == C_READY);
		size_t off = 0;
		if (prepend && c->in.len) {
			if (c->in.len > w->rbuf_cap / 2) {
				conn_lost(c, "carry overflow");
				return;
			}
			memcpy(w->rbuf, c->in.p, c->in.len);
			off = c->in.len;
			c->in.len = 0;
		}
		ssize_t n;
		if (c->ssl) {
			ERR_clear_error();
			int k = SSL_read(c->ssl, w->rbuf + off, (int)(w->rbuf_cap - off));
			if (k <= 0) {
				int e = SSL_get_error(c->ssl, k);
				if (off)
					buf_append(&c->in, w->rbuf, off);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					return;
				if (c->state == C_READY)
					conn_lost(c, e == SSL_ERROR_ZERO_RETURN ? "TLS close" : "TLS read error");
				else
					conn_fail(c, "TLS read failed");
				return;
			}
			n = k;
		} else {
			n = recv(c->fd, w->rbuf + off, w->rbuf_cap - off, 0);
			if (n <= 0) {
				if (off)
					buf_append(&c->in, w->rbuf, off);
				if (n < 0 && (errno == EAGAIN || errno == EINTR))
					return;
				const char *why = n == 0 ? "peer closed" : strerror(errno);
				if (c->state == C_READY)
					conn_lost(c, why);
				else
					conn_fail(c, why);
				return;
			}
		}
		size_t total = off + (size_t)n;
		w->st.reads++;
		w->st.bytes_in += (uint64_t)n;
		long used = process(c, w->rbuf, total, now_ns());
		if (used < 0)
			return;
		if ((size_t)used < total) {
			if (c->kind == K_SUB_SSE && c->state == C_READY && !prepend)
				; /* cannot happen: SSE consumes everything */
			else
				buf_append(&c->in, w->rbuf + used, total - (size_t)used);
		}
		if (c->out.len > c->out.off && conn_flush(c)) {
			if (c->state == C_READY)
				conn_lost(c, "write failed");
			else
				conn_fail(c, "write failed");
			return;
		}
		/* Plain sockets: one read per readiness (level-triggered, fair). TLS: drain
		 * what OpenSSL already holds. */
		if (!c->ssl || c->fd < 0 || !SSL_has_pending(c->ssl))
			return;
	}
}

static void conn_event(struct conn *c, uint32_t ev)
{
	switch (c->state) {
	case C_CONNECTING:
		on_connected(c);
		return;
	case C_TLS:
		tls_step(c);
		return;
	case C_HANDSHAKE:
	case C_JOINING:
	case C_READY:
		if (ev & EPOLLOUT) {
			if (conn_flush(c)) {
				if (c->state == C_READY)
					conn_lost(c, "write failed");
				else
					conn_fail(c, "write failed");
				return;
			}
		}
		if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
			conn_read(c);
		return;
	default:
		return;
	}
}

/* ---------------------------------------------------------------- workers */

static void publish_counters(struct worker *w)
{
	atomic_store_explicit(&w->a_recv, w->st.recv, memory_order_relaxed);
	atomic_store_explicit(&w->a_caught, w->st.caught, memory_order_relaxed);
	atomic_store_explicit(&w->a_inflight, w->inflight + w->pend_n, memory_order_relaxed);
	atomic_store_explicit(&w->a_any, w->any, memory_order_relaxed);
}

static void do_cmd(struct worker *w, int cmd)
{
	switch (cmd) {
	case CMD_CONNECT:
		memset(&w->st.conn, 0, sizeof(w->st.conn));
		for (uint32_t i = 0; i < w->nconns; i++) {
			struct conn *c = w->conns[i];
			if (c->state == C_IDLE || c->state == C_CLOSED || c->state == C_FAILED) {
				if (c->state == C_FAILED)
					atomic_store_explicit(
						&w->a_failed,
						atomic_load_explicit(&w->a_failed, memory_order_relaxed) - 1,
						memory_order_relaxed);
				c->state = C_IDLE;
				c->attempts = 0;
				c->t0 = 0;
				pend_push(w, c);
			}
		}
		break;
	case CMD_RUN: {
		struct hist conn = w->st.conn;
		memset(&w->st, 0, sizeof(w->st));
		w->st.conn = conn;
		memset(w->room_ready, 0, o.rooms * sizeof(*w->room_ready));
		for (uint32_t i = 0; i < w->nsubs; i++) {
			struct conn *c = w->conns[i];
			c->win_recv = 0;
			c->t_first = 0;
			c->caught = 0;
			c->reconnected = 0;
			c->ready_at_run = c->state == C_READY;
			if (c->ready_at_run)
				w->room_ready[c->room]++;
		}
		if (w->id == 0) {
			w->pub_k = 0;
			w->pub_total = (uint64_t)llround(g.rate * (double)(g.win_end - g.win_start) / 1e9);
			w->pub_active = 1;
		}
		break;
	}
	case CMD_COLLECT:
		w->snap = w->st;
		for (uint32_t i = 0; i < w->nsubs; i++) {
			struct conn *c = w->conns[i];
			if (!c->ready_at_run)
				continue;
			w->snap.subs_counted++;
			if (c->win_recv >= g.pub_count[c->room])
				w->snap.subs_full++;
			else if (c->win_recv)
				w->snap.subs_partial++;
			else
				w->snap.subs_none++;
		}
		break;
	case CMD_DROP:
		/* Reconnect storm: every subscriber drops at once and reconnects at once. */
		w->drop_t = now_ns();
		memset(&w->st.conn, 0, sizeof(w->st.conn));
		for (uint32_t i = 0; i < w->nsubs; i++) {
			struct conn *c = w->conns[i];
			if (c->state == C_READY)
				atomic_store_explicit(
					&w->a_ready, atomic_load_explicit(&w->a_ready, memory_order_relaxed) - 1,
					memory_order_relaxed);
			else if (c->state == C_FAILED)
				atomic_store_explicit(
					&w->a_failed, atomic_load_explicit(&w->a_failed, memory_order_relaxed) - 1,
					memory_order_relaxed);
			else if (c->state != C_IDLE && c->state != C_CLOSED)
				w->inflight--;
			conn_close(c, 1);
			c->state = C_IDLE;
			c->attempts = 0;
			c->t0 = 0;
			c->t_first = 0;
			c->caught = 0;
			c->reconnected = 1;
		}
		w->pend_n = 0;
		for (uint32_t i = 0; i < w->nsubs; i++)
			pend_push(w, w->conns[i]);
		break;
	case CMD_QUIT:
		for (uint32_t i = 0; i < w->nconns; i++)
			conn_close(w->conns[i], 1);
		w->quit = 1;
		break;
	}
}

static void scan_timeouts(struct worker *w, int64_t t)
{
	if (t - w->last_scan < NS)
		return;
	w->last_scan = t;
	for (uint32_t i = 0; i < w->nconns; i++) {
		struct conn *c = w->conns[i];
		if (c->state >= C_CONNECTING && c->state <= C_JOINING &&
		    t - c->t_attempt > (int64_t)(o.connect_timeout / 2 * 1e9))
			conn_fail(c, "handshake timed out");
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[512];
	while (!w->quit) {
		int s = atomic_load_explicit(&g.seq, memory_order_acquire);
		if (s != w->seen) {
			w->seen = s;
			do_cmd(w, g.cmd);
			publish_counters(w);
			atomic_store_explicit(&w->ack, s, memory_order_release);
			if (w->quit)
				break;
		}
		while (w->inflight < w->window && w->pend_n) {
			struct conn *c = w->pend[w->pend_head];
			w->pend_head = (w->pend_head + 1) % w->pend_cap;
			w->pend_n--;
			conn_start(c);
		}
		int64_t wait = 2 * MS;
		if (w->id == 0) {
			int64_t d = pub_pump(w);
			if (d >= 0 && d < wait)
				wait = d;
		}
		/* Busy polling while a step runs: the server then never has to wake us, as
		 * it would not have to wake a client on another machine. */
		if (o.busy_poll && atomic_load_explicit(&g.stepping, memory_order_relaxed))
			wait = 0;
		struct timespec ts = {wait / NS, wait % NS};
		int n = epoll_pwait2(w->ep, evs, 512, &ts, NULL);
		if (n < 0 && errno != EINTR)
			die("epoll_pwait2: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			conn_event(evs[i].data.ptr, evs[i].events);
			if (w->id == 0 && (i & 63) == 63)
				pub_pump(w); /* keep the schedule while a big batch is served */
		}
		scan_timeouts(w, now_ns());
		publish_counters(w);
	}
	return NULL;
}

static void command(int cmd)
{
	g.cmd = cmd;
	int s = atomic_fetch_add(&g.seq, 1) + 1;
	for (unsigned i = 0; i < o.threads; i++)
		while (atomic_load_explicit(&g.w[i].ack, memory_order_acquire) != s)
			sleep_ns(200000);
}

/* ---------------------------------------------------------------- /proc */

/* /proc/PID/NAME into buf (NUL-terminated); its length, or -1. */
static long read_proc(int pid, const char *name, char *buf, size_t cap)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = 0;
	return (long)n;
}

/* The fields of /proc/PID/stat after "(comm) ", which may itself hold spaces and
 * parentheses; NULL when unreadable. */
static const char *proc_stat_fields(int pid, char *buf, size_t cap)
{
	if (pid <= 0 || read_proc(pid, "stat", buf, cap) < 0)
		return NULL;
	const char *p = strrchr(buf, ')');
	return p ? p + 2 : NULL;
}

static long read_rss_kb(int pid)
{
	char buf[4096];
	if (pid <= 0 || read_proc(pid, "status", buf, sizeof(buf)) < 0)
		return -1;
	const char *p = strstr(buf, "\nVmRSS:");
	return p ? atol(p + 7) : -1;
}

static double read_cpu_s(int pid)
{
	char buf[1024];
	const char *p = proc_stat_fields(pid, buf, sizeof(buf));
	unsigned long ut = 0, st = 0;
	/* state(3) ... utime is field 14, stime 15 */
	if (!p || sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds of every other process (with their reaped children): how much of the
 * machine the rest of the world took while we measured. */
static double other_cpu_s(void)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	struct dirent *e;
	unsigned long long ticks = 0;
	int self = getpid();
	while ((e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		int pid = atoi(e->d_name);
		if (pid == self || pid == o.pid)
			continue;
		char buf[1024];
		const char *p = proc_stat_fields(pid, buf, sizeof(buf));
		unsigned long ut, st;
		long cut, cst;
		if (p && sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld", &ut,
				&st, &cut, &cst) == 4)
			ticks += ut + st + (unsigned long long)cut + (unsigned long long)cst;
	}
	closedir(d);
	return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static long rss_peak = -1;

static void sample_rss(void)
{
	long kb = read_rss_kb(o.pid);
	if (kb > rss_peak)
		rss_peak = kb;
}

/* Sleeps d ns while sampling the server's RSS every 50 ms. */
static void wait_sampling(int64_t d)
{
	int64_t end = now_ns() + d;
	for (;;) {
		sample_rss();
		int64_t left = end - now_ns();
		if (left <= 0)
			return;
		sleep_ns(left < 50 * MS ? left : 50 * MS);
	}
}

static uint64_t sum_atomic(size_t off)
{
	uint64_t s = 0;
	for (unsigned i = 0; i < o.threads; i++)
		s += atomic_load_explicit((_Atomic uint64_t *)((char *)&g.w[i] + off),
					  memory_order_relaxed);
	return s;
}
#define SUM(field) sum_atomic(offsetof(struct worker, field))

/* ---------------------------------------------------------------- controller */

static unsigned total_conns(void)
{
	return o.subs + o.pub_conns;
}

struct connect_result {
	double ms, p50, p99, max;
	uint64_t ready, failed;
};

/* Connects everything not connected; waits until all are ready or failed. */
static struct connect_result ensure_connected(void)
{
	struct connect_result r = {0};
	int64_t t0 = now_ns(), deadline = t0 + (int64_t)(o.connect_timeout * 1e9);
	command(CMD_CONNECT);
	for (;;) {
		uint64_t ready = SUM(a_ready), failed = SUM(a_failed);
		if (ready + failed >= total_conns() || now_ns() > deadline) {
			r.ready = ready;
			r.failed = failed;
			break;
		}
		sample_rss();
		sleep_ns(2 * MS);
	}
	r.ms = (double)(now_ns() - t0) / 1e6;
	struct hist h = {0};
	for (unsigned i = 0; i < o.threads; i++)
		h_merge(&h, &g.w[i].st.conn); /* racy read of a finished phase: fine */
	r.p50 = h_pct_ms(&h, 50);
	r.p99 = h_pct_ms(&h, 99);
	r.max = (double)h.max / 1e6;
	return r;
}

/* Waits until nothing has arrived for 300 ms (a failed step may leave a backlog). */
static void wait_quiet(double max_s)
{
	int64_t end = now_ns() + (int64_t)(max_s * 1e9), last_change = now_ns();
	uint64_t last = SUM(a_any);
	while (now_ns() < end) {
		sleep_ns(20 * MS);
		uint64_t v = SUM(a_any);
		if (v != last) {
			last = v;
			last_change = now_ns();
		} else if (now_ns() - last_change > 300 * MS)
			return;
	}
}

struct step {
	double rate, duration;
	uint64_t published, expected, delivered;
	double pct, dps, p50, p90, p99, p999, max, mean;
	uint64_t gaps, dups, lagged, closes, stale;
	uint64_t pub_sent, pub_ok, pub_err, reads, bytes_in;
	double pub_lag_max_ms, pub_backlog_max;
	long rss_peak;
	double srv_cpu, lg_cpu, other_cpu;
	uint64_t subs_full, subs_partial, subs_none, subs_counted;
	int pass;
	/* storm */
	double storm_ready_ms, storm_caught_ms;
	uint64_t storm_caught, storm_failed;
};

static void print_step(const char *ev, const struct step *s)
{
	fprintf(stderr,
		"  %-6s rate %8.0f msg/s (other procs %.0f%% cpu): delivered %6.2f%% (%" PRIu64 "/%" PRIu64 ") %10.0f deliv/s"
		"  p50 %.3f p90 %.3f p99 %.3f max %.3f ms  gaps %" PRIu64 " dups %" PRIu64
		" lagged %" PRIu64 " closes %" PRIu64 "  srv cpu %.0f%% lg cpu %.0f%%  %.1f msg/read"
		"  rss peak %ld kB  %s\n",
		ev, s->rate, s->other_cpu, s->pct, s->delivered, s->expected, s->dps, s->p50, s->p90, s->p99, s->max,
		s->gaps, s->dups, s->lagged, s->closes, s->srv_cpu, s->lg_cpu,
		s->reads ? (double)s->delivered / (double)s->reads : 0, s->rss_peak,
		s->pass ? "PASS" : "FAIL");
	printf("{\"event\":\"%s\",\"label\":\"%s\",\"rate\":%.1f,\"duration\":%.3f,\"published\":%" PRIu64
	       ",\"expected\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"delivered_pct\":%.4f,"
	       "\"deliveries_per_s\":%.1f,\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p99_ms\":%.4f,"
	       "\"p999_ms\":%.4f,\"max_ms\":%.4f,\"mean_ms\":%.4f,\"gaps\":%" PRIu64 ",\"dups\":%" PRIu64
	       ",\"lagged\":%" PRIu64 ",\"closes\":%" PRIu64 ",\"stale\":%" PRIu64
	       ",\"pub_sent\":%" PRIu64 ",\"pub_ok\":%" PRIu64 ",\"pub_err\":%" PRIu64
	       ",\"reads\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"pub_lag_max_ms\":%.3f,\"pub_backlog_max_bytes\":%.0f,\"rss_peak_kb\":%ld,"
	       "\"srv_cpu_pct\":%.1f,\"lg_cpu_pct\":%.1f,\"other_cpu_pct\":%.1f,\"subs_counted\":%" PRIu64
	       ",\"subs_full\":%" PRIu64 ",\"subs_partial\":%" PRIu64 ",\"subs_none\":%" PRIu64
	       ",\"storm_ready_ms\":%.1f,\"storm_caught_ms\":%.1f,\"storm_caught\":%" PRIu64
	       ",\"storm_failed\":%" PRIu64 ",\"pass\":%s}\n",
	       ev, o.label, s->rate, s->duration, s->published, s->expected, s->delivered, s->pct,
	       s->dps, s->p50, s->p90, s->p99, s->p999, s->max, s->mean, s->gaps, s->dups, s->lagged,
	       s->closes, s->stale, s->pub_sent, s->pub_ok, s->pub_err, s->reads, s->bytes_in, s->pub_lag_max_ms,
	       s->pub_backlog_max, s->rss_peak, s->srv_cpu, s->lg_cpu, s->other_cpu, s->subs_counted, s->subs_full,
	       s->subs_partial, s->subs_none, s->storm_ready_ms, s->storm_caught_ms, s->storm_caught,
	       s->storm_failed, s->pass ? "true" : "false");
	fflush(stdout);
}

/* Appends the buckets with a delivery over 2 ms or a publisher late by over 1 ms. */
static void tl_write(void)
{
	const char *path = getenv("LG_TIMELINE");
	FILE *f = g.tl && path ? fopen(path, "a") : NULL;
	if (!f)
		return;
	fprintf(f, "# %s: start %.6f s (CLOCK_MONOTONIC); ms_from_start deliveries over_2ms max_ms pub_lag_ms\n",
		o.label, (double)g.win_start / 1e9);
	for (size_t i = 0; i < g.tl_n; i++) {
		struct tl_bucket *b = &g.tl[i];
		if (b->slow || b->pub_lag > MS)
			fprintf(f, "%zu %" PRIuFAST64 " %" PRIuFAST64 " %.2f %.2f\n", i * 10, b->n,
				b->slow, (double)b->max / 1e6, (double)b->pub_lag / 1e6);
	}
	fclose(f);
}

static struct step run_step(double rate, double duration, int storm)
{
	struct step s = {.rate = rate, .duration = duration};
	memset(g.pub_count, 0, o.rooms * sizeof(*g.pub_count));
	atomic_store(&g.pub_done, 0);
	atomic_store(&g.pub_stop, 0);
	g.rate = rate;
	g.win_start = now_ns() + 20 * MS;
	g.win_end = g.win_start + (int64_t)(duration * 1e9);
	if (getenv("LG_TIMELINE")) {
		free(g.tl);
		g.tl_n = (size_t)((g.win_end - g.win_start) / TL_NS) + 1;
		g.tl = calloc(g.tl_n, sizeof(*g.tl));
		if (!g.tl)
			die("out of memory");
	}
	double cpu0 = read_cpu_s(o.pid), lg0 = self_cpu_s(), oth0 = other_cpu_s();
	int64_t w0 = now_ns();
	rss_peak = -1;
	atomic_store(&g.stepping, 1);
	command(CMD_RUN);

	if (storm) {
		/* Publish steadily; after storm_after s every subscriber drops and reconnects. */
		wait_sampling(g.win_start + (int64_t)(o.storm_after * 1e9) - now_ns());
		int64_t drop = now_ns();
		command(CMD_DROP);
		int64_t deadline = drop + (int64_t)(o.storm_timeout * 1e9);
		while (now_ns() < deadline && SUM(a_caught) < o.subs)
			wait_sampling(10 * MS);
		atomic_store(&g.pub_stop, 1);
		g.win_end = now_ns();
	} else
		wait_sampling(g.win_end - now_ns());

	/* Drain: until every expected delivery arrived, or o.drain after the last send. */
	while (!atomic_load_explicit(&g.pub_done, memory_order_acquire) &&
	       now_ns() < g.win_end + 10 * NS)
		wait_sampling(MS);
	uint64_t expected = 0;
	{
		/* room_ready is written by each worker at CMD_RUN, before its ack */
		for (uint32_t r = 0; r < o.rooms; r++) {
			uint64_t ready = 0;
			for (unsigned i = 0; i < o.threads; i++)
				ready += g.w[i].room_ready[r];
			expected += g.pub_count[r] * ready;
		}
	}
	int64_t drain_end = now_ns() + (int64_t)(o.drain * 1e9);
	while (now_ns() < drain_end && SUM(a_recv) < expected)
		wait_sampling(2 * MS);
	atomic_store(&g.stepping, 0);
	double wall = (double)(now_ns() - w0) / 1e9;
	double cpu1 = read_cpu_s(o.pid), lg1 = self_cpu_s(), oth1 = other_cpu_s();
	command(CMD_COLLECT);

	struct stats t = {0};
	for (unsigned i = 0; i < o.threads; i++) {
		struct stats *x = &g.w[i].snap;
		t.recv += x->recv;
		t.stale += x->stale;
		t.gaps += x->gaps;
		t.dups += x->dups;
		t.lagged += x->lagged;
		t.closes += x->closes;
		t.pub_sent += x->pub_sent;
		t.pub_ok += x->pub_ok;
		t.pub_err += x->pub_err;
		t.subs_full += x->subs_full;
		t.subs_partial += x->subs_partial;
		t.subs_none += x->subs_none;
		t.subs_counted += x->subs_counted;
		t.caught += x->caught;
		t.conn_fail += x->conn_fail;
		t.reads += x->reads;
		t.bytes_in += x->bytes_in;
		if (x->pub_lag_max > t.pub_lag_max)
			t.pub_lag_max = x->pub_lag_max;
		if (x->pub_backlog_max > t.pub_backlog_max)
			t.pub_backlog_max = x->pub_backlog_max;
		if (x->ready_max > t.ready_max)
			t.ready_max = x->ready_max;
		if (x->caught_max > t.caught_max)
			t.caught_max = x->caught_max;
		h_merge(&t.lat, &x->lat);
	}
	for (uint32_t r = 0; r < o.rooms; r++)
		s.published += g.pub_count[r];
	s.duration = (double)(g.win_end - g.win_start) / 1e9;
	s.expected = expected;
	s.delivered = t.recv;
	s.pct = expected ? 100.0 * (double)t.recv / (double)expected : 0;
	s.dps = s.duration > 0 ? (double)t.recv / s.duration : 0;
	s.p50 = h_pct_ms(&t.lat, 50);
	s.p90 = h_pct_ms(&t.lat, 90);
	s.p99 = h_pct_ms(&t.lat, 99);
	s.p999 = h_pct_ms(&t.lat, 99.9);
	s.max = (double)t.lat.max / 1e6;
	s.mean = t.lat.n ? (double)t.lat.sum / (double)t.lat.n / 1e6 : 0;
	s.gaps = t.gaps;
	s.dups = t.dups;
	s.lagged = t.lagged;
	s.closes = t.closes;
	s.stale = t.stale;
	s.pub_sent = t.pub_sent;
	s.reads = t.reads;
	s.bytes_in = t.bytes_in;
	s.pub_ok = t.pub_ok;
	s.pub_err = t.pub_err;
	s.pub_lag_max_ms = (double)t.pub_lag_max / 1e6;
	s.pub_backlog_max = (double)t.pub_backlog_max;
	s.rss_peak = rss_peak;
	s.srv_cpu = cpu0 >= 0 && cpu1 >= 0 ? 100.0 * (cpu1 - cpu0) / wall : -1;
	s.lg_cpu = 100.0 * (self_cpu_s() - lg0 - 0) / wall;
	s.other_cpu = oth0 >= 0 && oth1 >= 0 ? 100.0 * (oth1 - oth0) / wall : -1;
	(void)lg1;
	s.subs_full = t.subs_full;
	s.subs_partial = t.subs_partial;
	s.subs_none = t.subs_none;
	s.subs_counted = t.subs_counted;
	s.storm_ready_ms = (double)t.ready_max / 1e6;
	s.storm_caught_ms = (double)t.caught_max / 1e6;
	s.storm_caught = t.caught;
	s.storm_failed = SUM(a_failed);
	s.pass = expected > 0 && s.pct >= o.min_pct && s.p99 <= o.p99_ms && !s.pub_err;
	if (storm)
		s.pass = s.storm_caught == o.subs;
	tl_write();
	return s;
}

static void print_connect(const struct connect_result *r, long rss_before, long rss_idle)
{
	double per = r->ready && rss_before >= 0 && rss_idle >= 0
			     ? (double)(rss_idle - rss_before) * 1024.0 / (double)r->ready
			     : -1;
	fprintf(stderr,
		"loadgen: %" PRIu64 "/%u connected (%" PRIu64 " failed) in %.1f ms (per connection p50 %.2f"
		" p99 %.2f max %.2f ms); server RSS before %ld kB, idle %ld kB: %.0f B/conn\n",
		r->ready, total_conns(), r->failed, r->ms, r->p50, r->p99, r->max, rss_before, rss_idle,
		per);
	printf("{\"event\":\"connect\",\"label\":\"%s\",\"conns\":%u,\"subs\":%u,\"ready\":%" PRIu64
	       ",\"failed\":%" PRIu64 ",\"connect_ms\":%.2f,\"conn_p50_ms\":%.3f,\"conn_p99_ms\":%.3f,"
	       "\"conn_max_ms\":%.3f,\"rss_before_kb\":%ld,\"rss_idle_kb\":%ld,\"bytes_per_conn\":%.1f}\n",
	       o.label, total_conns(), o.subs, r->ready, r->failed, r->ms, r->p50, r->p99, r->max,
	       rss_before, rss_idle, per);
	fflush(stdout);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char m[] = "loadgen: --max-time reached, giving up\n";
	if (write(2, m, sizeof(m) - 1) < 0) {
	}
	_exit(3);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: loadgen [options]\n"
		"  --target roomgate|node|nchan|raw  protocol dialect (default roomgate)\n"
		"  --host A --port P [--tls]      server (default 127.0.0.1:9001)\n"
		"  --sub ws|sse                   subscriber transport (default ws)\n"
		"  --pub ws|http                  publisher transport (default ws; nchan: http)\n"
		"  --subs N --rooms R             subscribers, spread round-robin over R rooms\n"
		"  --pub-conns K --pipeline D     publisher connections; HTTP requests in flight each\n"
		"  --pub-port P [--pub-plain]     publishers to another port (without TLS)\n"
		"  --rate MSG/S --duration S      open-loop publish rate (all rooms) and time\n"
		"  --size B                       message data bytes (default 128)\n"
		"  --drain S --settle S           wait for stragglers; pause after connecting\n"
		"  --mode fanout|search|idle|storm\n"
		"  --hold S                       idle: seconds to hold before measuring memory\n"
		"  --search-start R --search-factor F --search-max R --search-bisect N\n"
		"  --p99-ms MS --min-pct P        pass rule (default 100 ms, 99%%)\n"
		"  --storm-after S --storm-timeout S\n"
		"  --pid PID                      server process to read RSS/CPU from (/proc)\n"
		"  --threads T --window W         IO threads; connections being opened at once\n"
		"  --srcaddrs N                   loopback source addresses to spread over (8)\n"
		"  --busy-poll                    spin instead of sleeping while a step runs\n"
		"  --connect-timeout S --max-time S --label TEXT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	enum {
		O_TARGET = 256, O_HOST, O_PORT, O_TLS, O_SUB, O_PUB, O_SUBS, O_ROOMS, O_PUBC, O_PIPE,
		O_RATE, O_DUR, O_SIZE, O_DRAIN, O_SETTLE, O_MODE, O_HOLD, O_SS, O_SF, O_SM, O_SB,
		O_SN, O_P99, O_MINPCT, O_SA, O_ST, O_PID, O_THREADS, O_WINDOW, O_SRC, O_CT, O_MT,
		O_LABEL, O_PREFIX, O_BUSY, O_PUBPORT, O_PUBPLAIN
	};
	static const struct option lo[] = {
		{"target", 1, 0, O_TARGET}, {"host", 1, 0, O_HOST},	    {"port", 1, 0, O_PORT},
		{"tls", 0, 0, O_TLS},	    {"sub", 1, 0, O_SUB},	    {"pub", 1, 0, O_PUB},
		{"subs", 1, 0, O_SUBS},	    {"rooms", 1, 0, O_ROOMS},	    {"pub-conns", 1, 0, O_PUBC},
		{"pipeline", 1, 0, O_PIPE}, {"rate", 1, 0, O_RATE},	    {"duration", 1, 0, O_DUR},
		{"size", 1, 0, O_SIZE},	    {"drain", 1, 0, O_DRAIN},	    {"settle", 1, 0, O_SETTLE},
		{"mode", 1, 0, O_MODE},	    {"hold", 1, 0, O_HOLD},	    {"search-start", 1, 0, O_SS},
		{"search-factor", 1, 0, O_SF}, {"search-max", 1, 0, O_SM}, {"search-bisect", 1, 0, O_SB},
		{"search-steps", 1, 0, O_SN}, {"p99-ms", 1, 0, O_P99},	    {"min-pct", 1, 0, O_MINPCT},
		{"storm-after", 1, 0, O_SA}, {"storm-timeout", 1, 0, O_ST}, {"pid", 1, 0, O_PID},
		{"threads", 1, 0, O_THREADS}, {"window", 1, 0, O_WINDOW},  {"srcaddrs", 1, 0, O_SRC},
		{"connect-timeout", 1, 0, O_CT}, {"max-time", 1, 0, O_MT}, {"label", 1, 0, O_LABEL},
		{"room-prefix", 1, 0, O_PREFIX}, {"busy-poll", 0, 0, O_BUSY}, {"pub-port", 1, 0, O_PUBPORT}, {"pub-plain", 0, 0, O_PUBPLAIN}, {"help", 0, 0, 'h'},	    {0, 0, 0, 0}};
	int pub_set = 0, ch;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case O_TARGET:
			/* raw: bench/peers/rawfanout, same dialect as roomgate */
			o.target = !strcmp(optarg, "roomgate") || !strcmp(optarg, "raw") ? T_ROOMGATE
				   : !strcmp(optarg, "node")   ? T_NODE
				   : !strcmp(optarg, "nchan")  ? T_NCHAN
							       : (die("--target: roomgate, node or nchan"), 0);
			break;
		case O_HOST: o.host = optarg; break;
		case O_PORT: o.port = atoi(optarg); break;
		case O_TLS: o.tls = 1; break;
		case O_SUB: o.sub_sse = !strcmp(optarg, "sse"); break;
		case O_PUB: o.pub_http = !strcmp(optarg, "http"); pub_set = 1; break;
		case O_SUBS: o.subs = (unsigned)atol(optarg); break;
		case O_ROOMS: o.rooms = (unsigned)atol(optarg); break;
		case O_PUBC: o.pub_conns = (unsigned)atol(optarg); break;
		case O_PIPE: o.pipeline = (unsigned)atol(optarg); break;
		case O_RATE: o.rate = atof(optarg); break;
		case O_DUR: o.duration = atof(optarg); break;
		case O_SIZE: o.size = (unsigned)atol(optarg); break;
		case O_DRAIN: o.drain = atof(optarg); break;
		case O_SETTLE: o.settle = atof(optarg); break;
		case O_MODE:
			o.mode = !strcmp(optarg, "fanout")   ? M_FANOUT
				 : !strcmp(optarg, "search") ? M_SEARCH
				 : !strcmp(optarg, "idle")   ? M_IDLE
				 : !strcmp(optarg, "storm")  ? M_STORM
							     : (die("--mode: fanout, search, idle or storm"), 0);
			break;
		case O_HOLD: o.hold = atof(optarg); break;
		case O_SS: o.search_start = atof(optarg); break;
		case O_SF: o.search_factor = atof(optarg); break;
		case O_SM: o.search_max = atof(optarg); break;
		case O_SB: o.search_bisect = (unsigned)atol(optarg); break;
		case O_SN: o.search_steps = (unsigned)atol(optarg); break;
		case O_P99: o.p99_ms = atof(optarg); break;
		case O_MINPCT: o.min_pct = atof(optarg); break;
		case O_SA: o.storm_after = atof(optarg); break;
		case O_ST: o.storm_timeout = atof(optarg); break;
		case O_PID: o.pid = atoi(optarg); break;
		case O_THREADS: o.threads = (unsigned)atol(optarg); break;
		case O_WINDOW: o.window = (unsigned)atol(optarg); break;
		case O_SRC: o.srcaddrs = (unsigned)atol(optarg); break;
		case O_CT: o.connect_timeout = atof(optarg); break;
		case O_MT: o.max_time = atof(optarg); break;
		case O_LABEL: o.label = optarg; break;
		case O_PREFIX: o.prefix = optarg; break;
		case O_BUSY: o.busy_poll = 1; break;
		case O_PUBPORT: o.pub_port = atoi(optarg); break;
		case O_PUBPLAIN: o.pub_plain = 1; break;
		default: usage();
		}
	}
	if (optind < argc)
		usage();
	if (o.target == T_NCHAN && !pub_set)
		o.pub_http = 1;
	if (o.target == T_NCHAN && !o.pub_http)
		die("--target nchan publishes over HTTP only (--pub http)");
	if (!o.subs || !o.rooms || !o.pub_conns || !o.threads || !o.window || o.rate <= 0 ||
	    o.duration <= 0 || o.pipeline < 1 || o.pipeline > 64 || o.size < 16 || o.size > 4000)
		die("bad numbers (see --help)");
	if (o.pub_conns > o.rooms)
		o.pub_conns = o.rooms;
	if (!o.pub_http && o.target != T_NCHAN && (o.rooms + o.pub_conns - 1) / o.pub_conns > 64)
		die("WebSocket publishers join their rooms: at most 64 rooms per --pub-conns");
	if (o.threads > 64)
		o.threads = 64;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm((unsigned)ceil(o.max_time));

	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < total_conns() + 32)
		die("%u connections need more file descriptors than the limit %llu (ulimit -n)",
		    total_conns(), (unsigned long long)rl.rlim_cur);

	g.dst.sin_family = AF_INET;
	g.dst.sin_port = htons((uint16_t)o.port);
	if (inet_pton(AF_INET, o.host, &g.dst.sin_addr) != 1)
		die("--host: an IPv4 address");
	snprintf(g.hostport, sizeof(g.hostport), "%s:%d", o.host, o.port);
	g.pub_dst = g.dst;
	if (o.pub_port)
		g.pub_dst.sin_port = htons((uint16_t)o.pub_port);
	snprintf(g.pub_hostport, sizeof(g.pub_hostport), "%s:%d", o.host, o.pub_port ? o.pub_port : o.port);
	if (o.tls) {
		g.ssl_ctx = SSL_CTX_new(TLS_client_method());
		if (!g.ssl_ctx)
			die("SSL_CTX_new failed");
		SSL_CTX_set_verify(g.ssl_ctx, SSL_VERIFY_NONE, NULL); /* self-signed bench certs */
		SSL_CTX_set_mode(g.ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
						    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
						    SSL_MODE_RELEASE_BUFFERS);
		SSL_CTX_set_session_cache_mode(g.ssl_ctx, SSL_SESS_CACHE_OFF); /* full handshakes */
	}

	g.room_name = xcalloc(o.rooms, sizeof(char *));
	g.room_name_len = xcalloc(o.rooms, sizeof(size_t));
	for (uint32_t r = 0; r < o.rooms; r++) {
		char b[200];
		snprintf(b, sizeof(b), "%s%u", o.prefix, r);
		g.room_name[r] = strdup(b);
		g.room_name_len[r] = strlen(b);
	}
	g.pub_count = xcalloc(o.rooms, sizeof(uint64_t));
	g.room_seq = xcalloc(o.rooms, sizeof(uint64_t));
	g.subs = xcalloc(o.subs, sizeof(struct conn));
	g.pubs = xcalloc(o.pub_conns, sizeof(struct conn));
	g.w = xcalloc(o.threads, sizeof(struct worker));
	for (unsigned i = 0; i < o.threads; i++) {
		struct worker *w = &g.w[i];
		w->id = (int)i;
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		w->rbuf_cap = 256 * 1024;
		w->rbuf = xcalloc(1, w->rbuf_cap);
		w->window = o.window / o.threads ? o.window / o.threads : 1;
		w->room_ready = xcalloc(o.rooms, sizeof(uint32_t));
		w->conns = xcalloc(o.subs / o.threads + 1 + (i ? 0 : o.pub_conns), sizeof(struct conn *));
	}
	for (uint32_t k = 0; k < o.subs; k++) {
		struct conn *c = &g.subs[k];
		struct worker *w = &g.w[k % o.threads];
		c->fd = -1;
		c->kind = o.sub_sse ? K_SUB_SSE : K_SUB_WS;
		c->id = k;
		c->room = k % o.rooms;
		c->w = w;
		w->conns[w->nconns++] = c;
		w->nsubs++;
	}
	for (uint32_t j = 0; j < o.pub_conns; j++) {
		struct conn *c = &g.pubs[j];
		struct worker *w = &g.w[0];
		c->fd = -1;
		c->kind = o.pub_http ? K_PUB_HTTP : K_PUB_WS;
		c->id = j;
		c->room = j; /* its first room */
		c->w = w;
		if (o.pub_http)
			c->q = xcalloc(1, sizeof(struct pubq));
		w->conns[w->nconns++] = c;
	}
	/* no messages count before the first step */
	g.win_start = g.win_end = INT64_MAX;
	for (unsigned i = 0; i < o.threads; i++)
		if (pthread_create(&g.w[i].th, NULL, worker_main, &g.w[i]))
			die("pthread_create failed");

	static const char *mname[] = {"fanout", "search", "idle", "storm"};
	static const char *tname[] = {"roomgate", "node", "nchan"};
	fprintf(stderr,
		"loadgen: %s %s%s %u %s subscribers in %u room(s), %u %s publisher(s), %u-byte data,"
		" mode %s\n",
		tname[o.target], o.tls ? "TLS " : "", g.hostport, o.subs, o.sub_sse ? "SSE" : "WS",
		o.rooms, o.pub_conns, o.pub_http ? "HTTP" : "WS", o.size, mname[o.mode]);

	long rss_before = read_rss_kb(o.pid);
	struct connect_result cr = ensure_connected();
	wait_sampling((int64_t)((o.settle + (o.mode == M_IDLE ? o.hold : 0)) * 1e9));
	long rss_idle = read_rss_kb(o.pid);
	print_connect(&cr, rss_before, rss_idle);
	int rc = cr.ready == total_conns() ? 0 : 1;
	if (cr.ready < total_conns())
		fprintf(stderr, "loadgen: only %" PRIu64 " of %u connections are up\n", cr.ready,
			total_conns());

	if (o.mode == M_FANOUT || o.mode == M_IDLE) {
		struct step s = run_step(o.rate, o.duration, 0);
		print_step(o.mode == M_IDLE ? "idle" : "step", &s);
		if (!s.pass)
			rc = 1;
	} else if (o.mode == M_STORM) {
		struct step s = run_step(o.rate, o.storm_after + o.storm_timeout, 1);
		fprintf(stderr,
			"loadgen: storm: %u subscribers dropped; all reconnected after %.1f ms, all "
			"receiving after %.1f ms (%" PRIu64 " caught up, %" PRIu64 " failed)\n",
			o.subs, s.storm_ready_ms, s.storm_caught_ms, s.storm_caught, s.storm_failed);
		print_step("storm", &s);
		if (!s.pass)
			rc = 1;
	} else {
		double rate = o.search_start, pass_rate = 0, fail_rate = 0;
		struct step best = {0}, fail = {0};
		unsigned steps = 0;
		int down = 0;
		while (steps < o.search_steps) {
			if (steps) {
				wait_quiet(10);
				ensure_connected();
				wait_sampling((int64_t)(o.settle * 1e9));
			}
			struct step s = run_step(rate, o.duration, 0);
			steps++;
			print_step("search_step", &s);
			if (s.pass) {
				if (s.dps > best.dps || !best.pass)
					best = s;
				pass_rate = rate;
				if (down || fail_rate)
					break;
				if (rate * o.search_factor > o.search_max)
					break;
				rate *= o.search_factor;
			} else {
				fail_rate = rate;
				fail = s;
				if (pass_rate || steps >= 4)
					break;
				down = 1;
				rate /= o.search_factor;
			}
		}
		for (unsigned b = 0; b < o.search_bisect && pass_rate && fail_rate && steps < o.search_steps;
		     b++) {
			double mid = sqrt(pass_rate * fail_rate);
			wait_quiet(10);
			ensure_connected();
			wait_sampling((int64_t)(o.settle * 1e9));
			struct step s = run_step(mid, o.duration, 0);
			steps++;
			print_step("search_step", &s);
			if (s.pass) {
				pass_rate = mid;
				if (s.dps > best.dps || !best.pass)
					best = s;
			} else {
				fail_rate = mid;
				fail = s;
			}
		}
		fprintf(stderr,
			"loadgen: saturation: highest passing rate %.0f msg/s = %.0f deliveries/s "
			"(p99 %.3f ms); first failing %.0f msg/s\n",
			pass_rate, best.dps, best.p99, fail_rate);
		printf("{\"event\":\"search\",\"label\":\"%s\",\"subs\":%u,\"rooms\":%u,\"best_rate\":%.1f,"
		       "\"best_deliveries_per_s\":%.1f,\"best_p99_ms\":%.4f,\"best_delivered_pct\":%.4f,"
		       "\"first_fail_rate\":%.1f,\"steps\":%u,\"best_rss_peak_kb\":%ld,"
		       "\"best_srv_cpu_pct\":%.1f,\"best_lg_cpu_pct\":%.1f,\"best_p50_ms\":%.4f,"
		       "\"best_other_cpu_pct\":%.1f,\"fail_other_cpu_pct\":%.1f,\"fail_srv_cpu_pct\":%.1f,"
		       "\"fail_p99_ms\":%.4f,\"fail_delivered_pct\":%.4f}\n",
		       o.label, o.subs, o.rooms, pass_rate, best.dps, best.p99, best.pct, fail_rate, steps,
		       best.rss_peak, best.srv_cpu, best.lg_cpu, best.p50, best.other_cpu, fail.other_cpu,
		       fail.srv_cpu, fail.p99, fail.pct);
		fflush(stdout);
	}
	command(CMD_QUIT);
	for (unsigned i = 0; i < o.threads; i++)
		pthread_join(g.w[i].th, NULL);
	return rc;
}
