#include "srv.h"

#include "../gateway/log.h"
#include "../gateway/session.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utlist.h>

#define RG_SCRATCH_MIN (64 * 1024)
#define RG_SWEEP_US    (1 * LWS_US_PER_SEC)

size_t rg_srv_scratch_len(const struct rg_config *cfg)
{
	size_t n = rg_session_max_item(cfg);
	return n < RG_SCRATCH_MIN ? RG_SCRATCH_MIN : n;
}

struct rg_srv *rg_srv_new(struct rg_config *cfg)
{
	struct rg_srv *srv = calloc(1, sizeof(*srv));

	if (!srv || rg_registry_init(&srv->reg, cfg)) {
		free(srv);
		return NULL;
	}
	srv->cfg = cfg;
	srv->own_cfg = cfg;
	rg_srv_limits_set(srv);
	srv->scratch_len = rg_srv_scratch_len(cfg);
	if (!(srv->scratch = malloc(LWS_PRE + srv->scratch_len))) {
		rg_registry_cleanup(&srv->reg);
		free(srv);
		return NULL;
	}
	return srv;
}

void rg_srv_free(struct rg_srv *srv)
{
	if (!srv)
		return;
	rg_registry_cleanup(&srv->reg);
	rg_conn_limits_cleanup(&srv->conns);
	free(srv->scratch);
	rg_config_free(srv->own_cfg);
	free(srv);
}

static void rg__config_err(void *ctx, const char *line)
{
	(void)ctx;
	rg_err("%s", line);
}

void rg_srv_state(const struct rg_srv *srv, struct rg_metrics_state *st)
{
	const struct rg_registry *reg = &srv->reg;
	unsigned long pages, resident;
	struct dirent *e;
	FILE *f;
	DIR *d;

	memset(st, 0, sizeof(*st));
	st->rooms = reg->nrooms;
	for (const struct rg_room *r = reg->rooms; r; r = r->hh.next)
		st->subscribers += r->nsubs;
	st->connections = srv->conns.total;
	st->memory_used = reg->mem.used;
	st->memory_limit = reg->mem.limit;
	memcpy(st->memory_by, reg->mem.by, sizeof(st->memory_by));
	st->cluster = reg->engine != NULL;
	st->cluster_ready = (uint64_t)rg_registry_ready(reg);
	if ((f = fopen("/proc/self/statm", "r"))) {
		if (fscanf(f, "%lu %lu", &pages, &resident) == 2)
			st->rss_bytes = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
		fclose(f);
	}
	if ((d = opendir("/proc/self/fd"))) {
		while ((e = readdir(d)))
			st->open_fds += e->d_name[0] != '.';
		closedir(d);
		st->open_fds--; /* the directory's own */
	}
}

unsigned rg_srv_tick(struct rg_srv *srv)
{
	struct rg_registry *reg = &srv->reg;
	unsigned n = rg_registry_sweep(reg, rg_now_ms());
	rg_registry_overloaded(reg, NULL); /* rooms that lost their last member make way */
	rg_conn_limits_sweep(&srv->conns, rg_mono_us());
	if (reg->reclaimed != srv->reclaimed_seen)
		rg_notice("memory: %llu of %llu MiB in use (limits.memory_mb); %llu idle pattern "
			  "room(s) dropped to make way so far",
			  (unsigned long long)(reg->mem.used >> 20),
			  (unsigned long long)(reg->mem.limit >> 20),
			  (unsigned long long)reg->reclaimed);
	srv->reclaimed_seen = reg->reclaimed;
	return n;
}

static void rg__on_sweep(lws_sorted_usec_list_t *sul)
{
	struct rg_srv *srv = lws_container_of(sul, struct rg_srv, sweep);

	rg_srv_tick(srv);
	lws_sul_schedule(srv->ctx, 0, &srv->sweep, rg__on_sweep, RG_SWEEP_US);
}

int rg_srv_bind(struct lws *wsi, const void *in)
{
	const struct lws_protocol_vhost_options *pvo = in, *o;
	const struct lws_protocols *proto = lws_get_protocol(wsi);
	struct rg_srv **slot =
		lws_protocol_vh_priv_zalloc(lws_get_vhost(wsi), proto, sizeof(*slot));
	struct rg_config *cfg;

	if (!slot) {
		rg_err("%s: out of memory", proto->name);
		return -1;
	}
	if ((o = lws_pvo_search(pvo, RG_SRV_PVO_CONFIG))) {
		if (!(cfg = rg_config_load(o->value, rg__config_err, NULL)))
			return -1; /* every problem logged */
		if (!(*slot = rg_srv_new(cfg))) {
			rg_config_free(cfg);
			rg_err("%s: out of memory", proto->name);
			return -1;
		}
		(*slot)->ctx = lws_get_context(wsi);
		lws_sul_schedule((*slot)->ctx, 0, &(*slot)->sweep, rg__on_sweep, RG_SWEEP_US);
		return 0;
	}
	if (lws_pvo_search(pvo, RG_SRV_PVO_SHARED) &&
	    (*slot = lws_context_user(lws_get_context(wsi))))
		return 0;
	rg_err("%s: needs the per-vhost option \"" RG_SRV_PVO_CONFIG
	       "\" (the path of a roomgate JSON config)",
	       proto->name);
	return -1;
}

void rg_srv_unbind(struct lws *wsi)
{
	struct rg_srv **slot = lws_protocol_vh_priv_get(lws_get_vhost(wsi), lws_get_protocol(wsi));

	if (!slot || !*slot || !(*slot)->own_cfg)
		return;
	lws_sul_cancel(&(*slot)->sweep);
	rg_srv_free(*slot);
	*slot = NULL;
}

int rg_srv_lifecycle(struct lws *wsi, enum lws_callback_reasons reason, const void *in, int *ret)
{
	if (reason == LWS_CALLBACK_PROTOCOL_INIT) {
		*ret = rg_srv_bind(wsi, in);
		return 1;
	}
	if (reason == LWS_CALLBACK_PROTOCOL_DESTROY) {
		rg_srv_unbind(wsi);
		*ret = 0;
		return 1;
	}
	return 0;
}

struct rg_srv *rg_srv_of(struct lws *wsi)
{
	struct rg_srv **slot = lws_protocol_vh_priv_get(lws_get_vhost(wsi), lws_get_protocol(wsi));
	return slot ? *slot : NULL;
}

void rg_wake_init(struct rg_wake *w, struct rg_srv *srv, struct lws *wsi)
{
	w->wsi = wsi;
	w->srv = srv;
	w->prev = w->next = NULL;
}

/* In a utlist DL list every member's prev is set (the head's is the tail). */
static int rg__queued(const struct rg_wake *w)
{
	return w->prev != NULL;
}

static void rg__unlink(struct rg_wake *w)
{
	DL_DELETE(w->srv->pending, w);
	w->prev = w->next = NULL;
}

void rg_wake_flush(struct rg_srv *srv)
{
	while (srv->pending) {
		struct rg_wake *w = srv->pending;
		rg__unlink(w);
		lws_callback_on_writable(w->wsi);
	}
}

void rg_wake_on_window(struct ev_loop *ev, ev_timer *w, int revents)
{
	(void)ev;
	(void)revents;
	rg_wake_flush(w->data);
}

void rg_wake(void *owner)
{
	struct rg_wake *w = owner;
	struct rg_srv *srv = w->srv;

	if (!srv->cfg->coalesce_us || !srv->ev) {
		lws_callback_on_writable(w->wsi);
		return;
	}
	if (rg__queued(w))
		return;
	if (!ev_is_active(&srv->flush)) {
		ev_timer_set(&srv->flush, srv->cfg->coalesce_us / 1e6, 0.);
		ev_timer_start(srv->ev, &srv->flush);
	}
	DL_PREPEND(srv->pending, w);
}

void rg_wake_doom(void *owner)
{
	struct rg_wake *w = owner;

	lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, (int)w->srv->cfg->ws_ping_timeout_seconds);
	lws_callback_on_writable(w->wsi);
}

void rg_wake_cancel(struct rg_wake *w)
{
	if (rg__queued(w))
		rg__unlink(w);
}

void rg_rx_more(struct rg_srv *srv, struct lws *wsi, struct rg_rx_budget *b, size_t len)
{
	if (!srv->ev) /* lws's own loop: it reads on by itself */
		return;
	unsigned it = ev_iteration(srv->ev);

	if (b->iteration != it) {
		b->iteration = it;
		b->bytes = 0;
	}
	b->bytes += len;
	if (b->bytes < RG_RX_PASS_BYTES)
		ev_feed_fd_event(srv->ev, lws_get_socket_fd(wsi), EV_READ);
}

void rg_rx_resume(struct rg_srv *srv, struct lws *wsi)
{
	if (srv->ev)
		ev_feed_fd_event(srv->ev, lws_get_socket_fd(wsi), EV_READ);
}

static void rg__conn_timer_fire(lws_sorted_usec_list_t *sul)
{
	struct rg_conn_timer *t = lws_container_of(sul, struct rg_conn_timer, sul);

	t->fn(t->wsi);
}

int rg_conn_timer_at(struct rg_conn_timer **t, struct lws *wsi, int64_t unix_s,
		     void (*fn)(struct lws *wsi))
{
	int64_t now = rg_unix_s();

	if (!*t && !(*t = calloc(1, sizeof(**t))))
		return -1;
	(*t)->wsi = wsi;
	(*t)->fn = fn;
	lws_sul_schedule(lws_get_context(wsi), 0, &(*t)->sul, rg__conn_timer_fire,
			 unix_s > now ? (lws_usec_t)(unix_s - now) * LWS_US_PER_SEC : 1);
	return 0;
}

void rg_conn_timer_free(struct rg_conn_timer **t)
{
	if (!*t)
		return;
	lws_sul_cancel(&(*t)->sul);
	free(*t);
	*t = NULL;
}

/* Descriptors the gateway needs besides its connections: listeners, files, logs. */
#define RG__FD_MARGIN 64

void rg_srv_limits_set(struct rg_srv *srv)
{
	struct rlimit rl = {0, 0};
	unsigned max = srv->cfg->max_connections, fds = RG__FD_MARGIN * 2;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur > RG__FD_MARGIN * 2)
		fds = rl.rlim_cur > 10000000 ? 10000000 : (unsigned)rl.rlim_cur;
	if (!max)
		max = fds - RG__FD_MARGIN;
	else if (max > fds - RG__FD_MARGIN)
		rg_warn("limits.max_connections %u is above what the open-files limit (%u) "
			"allows: past about %u connections accepting fails; raise `ulimit -n`",
			max, fds, fds - RG__FD_MARGIN);
	/* the table is zeroed with the state, and keeps its connections across reloads */
	srv->conns.max_total = max;
	srv->conns.max_per_peer = srv->cfg->max_connections_per_address;
}

/* The peer's address of socket fd as 16 bytes (IPv4 mapped): 0, or -1 (not an IP peer). */
static int rg__peer_addr(int fd, unsigned char addr[16])
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);

	memset(addr, 0, 16);
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&sa, &len))
		return -1;
	if (sa.ss_family == AF_INET6) {
		memcpy(addr, &((struct sockaddr_in6 *)&sa)->sin6_addr, 16);
	} else if (sa.ss_family == AF_INET) {
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &((struct sockaddr_in *)&sa)->sin_addr, 4);
	} else {
		return -1;
	}
	return 0;
}

/* 1 if socket fd was accepted on a TLS listener (by its local port). */
static int rg__listener_tls(const struct rg_srv *srv, int fd)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	unsigned port;

	if (getsockname(fd, (struct sockaddr *)&sa, &len))
		return 0;
	port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
					      : ((struct sockaddr_in *)&sa)->sin_port);
	for (size_t i = 0; i < srv->cfg->nlisten; i++)
		if (srv->cfg->listen[i].port == port)
			return srv->cfg->listen[i].cert != NULL;
	return 0;
}

int rg_srv_conn_check(struct rg_srv *srv, int fd)
{
	unsigned char addr[16];
	char text[INET6_ADDRSTRLEN];
	const char *why;

	if (rg__peer_addr(fd, addr))
		return 0;
	if (!rg_conn_limits_check(&srv->conns, addr, &why)) {
		srv->reg.metrics.tcp_opened[rg__listener_tls(srv, fd)]++;
		return 0;
	}
	srv->reg.metrics.tcp_refused++;
	rg_peer_addr_text(addr, text, sizeof(text));
	rg_notice("limits: refused a connection from %s: %s", text, why);
	return -1;
}

int rg_srv_conn_admit(struct rg_srv *srv, struct lws *wsi)
{
	unsigned char addr[16];
	struct rg_peer *peer;
	struct rg_conn *c;
	const char *why;

	/* only network connections count: not HTTP/2 streams, nor what is no socket */
	if (lws_get_network_wsi(wsi) != wsi || rg__peer_addr(lws_get_socket_fd(wsi), addr))
		return 0;
	if (!(c = calloc(1, sizeof(*c)))) {
		rg_err("limits: out of memory: refused a connection");
		return -1;
	}
	int tls = rg__listener_tls(srv, lws_get_socket_fd(wsi));
	if (rg_conn_limits_admit(&srv->conns, addr, &peer, &why)) {
		char text[INET6_ADDRSTRLEN];
		rg_peer_addr_text(addr, text, sizeof(text));
		rg_notice("limits: refused a connection from %s: %s", text, why);
		srv->reg.metrics.tcp_refused++;
		srv->reg.metrics.tcp_opened[tls]--; /* let in at accept, refused here */
		free(c);
		return -1;
	}
	c->peer = peer;
	c->id = ++srv->conn_ids;
	static const unsigned char v4[12] = {[10] = 0xff, [11] = 0xff}, v6_lo[16] = {[15] = 1};
	c->loopback = (!memcmp(addr, v4, 12) && addr[12] == 127) || !memcmp(addr, v6_lo, 16);
	srv->reg.metrics.tcp_adopted[tls]++;
	lws_set_opaque_user_data(wsi, c);
	return 0;
}

void rg_srv_conn_release(struct rg_srv *srv, struct lws *wsi)
{
	struct rg_conn *c = lws_get_opaque_user_data(wsi);

	if (!c || lws_get_network_wsi(wsi) != wsi)
		return;
	lws_set_opaque_user_data(wsi, NULL);
	if (!c->served)
		srv->reg.metrics
			.handshake_failures[lws_is_ssl(wsi) && !c->tls_done ? RG_HS_TLS
									    : RG_HS_NO_REQUEST]++;
	rg_conn_limits_release(&srv->conns, c->peer);
	free(c);
}

void rg_srv_conn_tls_done(struct lws *wsi)
{
	struct rg_conn *c = rg_conn_of(wsi);

	if (c)
		c->tls_done = 1;
}

void rg_srv_conn_upgrade_refused(struct rg_srv *srv, struct lws *wsi)
{
	struct rg_conn *c = rg_conn_of(wsi);

	if (!srv)
		return;
	srv->reg.metrics.handshake_failures[RG_HS_UPGRADE]++;
	if (c)
		c->served = 1; /* counted here, not again when it ends */
}

struct rg_conn *rg_conn_of(struct lws *wsi)
{
	return lws_get_opaque_user_data(lws_get_network_wsi(wsi));
}

struct rg_peer *rg_conn_peer(struct lws *wsi)
{
	struct rg_conn *c = rg_conn_of(wsi);

	return c ? c->peer : NULL;
}

uint64_t rg_conn_id(struct lws *wsi)
{
	struct rg_conn *c = rg_conn_of(wsi);

	return c ? c->id : 0;
}

static void rg__lws_log(int level, const char *line)
{
	char buf[512];
	size_t n = strlen(line);

	/* 4.1.6 logs this at ERR for every HTTP/1.1 SSE stream; it is expected. Its libev
	 * glue traces every socket event at NOTICE ("elops_io_ev: wsi ...", 24 lines for
	 * one request): debug lines that would bury the rest. */
	if (strstr(line, "not h2 substream") || !strncmp(line, "elops_", 6))
		return;
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, line, n);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	rg_log_lws(level == LLL_ERR    ? RG_LOG_ERR
		   : level == LLL_WARN ? RG_LOG_WARN
				       : RG_LOG_NOTICE,
		   buf);
}

void rg_srv_log_set(const struct rg_config *cfg)
{
	static const int lws_levels[] = {0, LLL_ERR, LLL_ERR | LLL_WARN,
					 LLL_ERR | LLL_WARN | LLL_NOTICE};

	rg_log_set_format((enum rg_log_format)cfg->log_format);
	rg_log_set_level((enum rg_log_level)cfg->log_level);
	rg_log_set_access(cfg->log_access);
	/* lws filters its own lines by these bits; ours then pass them on whatever
	 * log.level says (the operator chose lws's level apart) */
	lws_set_log_level(lws_levels[cfg->log_lws_level], rg__lws_log);
}
