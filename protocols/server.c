#include "server.h"

#include "admin_api.h"
#include "http_api.h"
#include "reload.h"
#include "srv.h"
#include "sse.h"
#include "static_files.h"
#include "ws_chat.h"

#include "../gateway/auth.h"
#include "../gateway/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RG_TICK_US    (1 * LWS_US_PER_SEC)
#define RG_DRAIN_POLL 0.01 /* s: how often the drain checks for open streams */

_Static_assert(LWS_PRE <= 32, "scratch headroom is LWS_PRE");

/* The event loop is libev's (epoll), lent to lws as a foreign loop: lws 4.1.6's own
 * poll() loop walks every descriptor on every wakeup, which with thousands of idle
 * connections cost more than the traffic (bench/RESULTS.md, many-rooms). Owning the
 * loop also lets a signal end it, and the drain wait without lws_service().
 *
 * 4.1.6's libev glue cannot move its timer earlier once armed (it re-arms an active
 * ev_timer, which libev ignores), so an lws timer could wait for a later one: the
 * heartbeat keeps the armed one at most RG_HEARTBEAT_US away, which bounds that
 * lateness. Timers that need precision (the wake window) are libev's own. */
#define RG_HEARTBEAT_US (50 * LWS_US_PER_MS)

struct rg__loop {
	struct ev_loop *ev;
	ev_signal sigint, sigterm, sighup;
	ev_timer drain;
	lws_sorted_usec_list_t heartbeat;
	struct lws_context *ctx;
	struct rg_srv *srv;
	lws_usec_t until; /* end of the drain */
	int signum;       /* the last SIGINT/SIGTERM seen, 0 before */
	/* a pass's work lies between the poll's return (check) and the next poll
	 * (prepare): roomgate_loop_pass_seconds */
	ev_check pass_begin;
	ev_prepare pass_end;
	int64_t pass_us; /* when the pass began; 0 before the first */
};

static void rg__on_pass_begin(struct ev_loop *ev, ev_check *w, int revents)
{
	struct rg__loop *l = w->data;

	(void)ev, (void)revents;
	l->pass_us = rg_mono_us();
}

static void rg__on_pass_end(struct ev_loop *ev, ev_prepare *w, int revents)
{
	struct rg__loop *l = w->data;

	(void)ev, (void)revents;
	rg_log_drain(); /* the pass's lines, in one write */
	if (l->pass_us)
		rg_hist_observe(&l->srv->reg.metrics.pass_us, rg_pass_bounds_us, RG_PASS_BUCKETS,
				(uint64_t)(rg_mono_us() - l->pass_us));
}

static void rg__on_signal(struct ev_loop *ev, ev_signal *w, int revents)
{
	struct rg__loop *l = w->data;

	(void)revents;
	l->signum = w->signum;
	ev_break(ev, EVBREAK_ALL);
}

static void rg__on_drain(struct ev_loop *ev, ev_timer *w, int revents)
{
	struct rg__loop *l = w->data;

	(void)revents;
	if (!l->srv->streams || lws_now_usecs() >= l->until)
		ev_break(ev, EVBREAK_ALL);
}

static void rg__on_heartbeat(lws_sorted_usec_list_t *sul)
{
	struct rg__loop *l = lws_container_of(sul, struct rg__loop, heartbeat);

	lws_sul_schedule(l->ctx, 0, &l->heartbeat, rg__on_heartbeat, RG_HEARTBEAT_US);
}

/* The once-a-second tick: drops idle pattern rooms, reports suppressed log lines. */
struct rg__tick {
	lws_sorted_usec_list_t sul;
	struct rg_srv *srv;
	struct lws_context *ctx;
};

static void rg__on_tick(lws_sorted_usec_list_t *sul)
{
	struct rg__tick *t = lws_container_of(sul, struct rg__tick, sul);
	unsigned n = rg_srv_tick(t->srv);

	if (n)
		rg_info("dropped %u idle pattern room(s)", n);
	rg_log_flush();
	lws_sul_schedule(t->ctx, 0, &t->sul, rg__on_tick, RG_TICK_US);
}

#define RG_TLS12_CIPHERS                                                                    \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-" \
	"SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-"       \
	"CHACHA20-POLY1305"
#define RG_TLS13_CIPHERS \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* Why the listener's address cannot be bound, in words ("" when it can): lws reports a
 * failed bind as "ERROR on binding fd 6 to port 8443 (-1 98)". The socket is closed at
 * once; lws binds its own right after. */
static void rg__probe(const struct rg_listen_conf *l, char *why, size_t cap)
{
	struct sockaddr_storage sa = {0};
	struct sockaddr_in *v4 = (struct sockaddr_in *)&sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&sa;
	int one = 1, zero = 0, fd;

	why[0] = '\0';
	if (l->host && inet_pton(AF_INET, l->host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)l->port);
	} else {
		v6->sin6_family = AF_INET6; /* no host: every address, as lws binds it */
		v6->sin6_port = htons((uint16_t)l->port);
		if (l->host && inet_pton(AF_INET6, l->host, &v6->sin6_addr) != 1)
			return;
	}
	if ((fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return; /* no IPv6 here, say: lws will say what it finds */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l->reuse_port)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (sa.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)&sa, sa.ss_family == AF_INET ? sizeof(*v4) : sizeof(*v6))) {
		if (errno == EADDRINUSE)
			snprintf(why, cap,
				 "port %u is already in use: another process listens on it%s "
				 "(`ss -ltnp 'sport = :%u'` names it)",
				 l->port,
				 l->reuse_port
					 ? " without sharing it (reuse_port), or as another user"
					 : "",
				 l->port);
		else if (errno == EACCES)
			snprintf(why, cap,
				 "port %u needs privileges: ports below 1024 need root or "
				 "CAP_NET_BIND_SERVICE; use a port above 1023",
				 l->port);
		else if (errno == EADDRNOTAVAIL)
			snprintf(why, cap, "%s is not an address of this machine", l->host);
		else
			snprintf(why, cap, "%s", strerror(errno));
	}
	close(fd);
}

/* name: storage for the vhost name, which lws keeps pointing to until the context is
 * destroyed. */
static int rg__listen(struct lws_context *ctx, const struct rg_listen_conf *l,
		      struct lws_context_creation_info *vi, char name[32])
{
	snprintf(name, 32, "listen-%u", l->port);
	vi->vhost_name = name;
	vi->port = (int)l->port;
	vi->iface = l->host;
	vi->ssl_cert_filepath = l->cert;
	vi->ssl_private_key_filepath = l->key;
	/* Mozilla's "intermediate" profile: TLS 1.2 and 1.3 only, forward secrecy and AEAD
	 * suites only (no CBC, RC4, 3DES, NULL, export or anonymous suites), whatever the
	 * system's OpenSSL defaults say; tests/attack/test_tls.py checks it with sslscan. */
	vi->ssl_cipher_list = RG_TLS12_CIPHERS;
	vi->tls1_3_plus_cipher_list = RG_TLS13_CIPHERS;
	vi->ssl_options_set = SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
			      SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
	/* lws enables TLS on a vhost only when its own options carry this flag. */
	if (l->cert)
		vi->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	/* SO_REUSEPORT in one service thread: patches/lws/0501 */
	if (l->reuse_port)
		vi->options |= LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE;
	char why[200];
	rg__probe(l, why, sizeof(why));
	if (why[0]) {
		rg_err("cannot listen on %s:%u: %s", l->host ? l->host : "*", l->port, why);
		return -1;
	}
	if (!lws_create_vhost(ctx, vi)) {
		rg_err("cannot listen on %s:%u%s (see the lws error above)",
		       l->host ? l->host : "*", l->port, l->cert ? " with TLS" : "");
		return -1;
	}
	const char *shared = l->reuse_port ? ", shared with other processes (reuse_port)" : "";
	if (l->cert)
		rg_notice("listening on %s:%u (TLS: https, wss; HTTP/2 by ALPN)%s",
			  l->host ? l->host : "*", l->port, shared);
	else
		rg_warn("listening on %s:%u WITHOUT TLS (plain http, ws)%s: add \"tls\" to this "
			"listener for anything beyond local testing",
			l->host ? l->host : "*", l->port, shared);
	return 0;
}

/* The protocols, in the order lws sees them: the chat protocol first (protocols[0]
 * gets the vhost-wide callbacks and a WebSocket upgrade that names no subprotocol). */
enum { RG__CHAT, RG__SSE, RG__API, RG__ADMIN, RG__STATIC, RG__NPROTOS };

/* The callback mounts, longest prefix first; the static web root comes last. */
static const struct {
	const char *mountpoint;
	int proto;
} rg__mount_table[] = {
	{"/events", RG__SSE}, {"/rooms", RG__API},   {"/streams", RG__API},  {"/healthz", RG__API},
	{"/readyz", RG__API}, {"/metrics", RG__API}, {"/messages", RG__API}, {"/admin", RG__ADMIN},
};
#define RG__NMOUNTS (sizeof(rg__mount_table) / sizeof(rg__mount_table[0]) + 1)

/* Everything the server holds while it runs; lws keeps pointers into it (protocols,
 * options, mounts, vhost names), so it lives as long as the context. */
struct rg__server {
	struct rg_srv srv;
	struct rg__loop loop;
	struct rg__tick tick;
	struct lws_context *ctx;
	struct lws_protocols protos[RG__NPROTOS + 1];
	const struct lws_protocols *pprotos[RG__NPROTOS + 1];
	struct lws_protocol_vhost_options srv_opt, pvos[RG__NPROTOS];
	struct lws_http_mount mounts[RG__NMOUNTS];
	lws_retry_bo_t retry;
	char names[RG_LISTEN_MAX][32];
	struct rg_reload reload;
	size_t making; /* the listener lws is making a vhost for */
};

/* protocols[0] as lws is given it: the chat protocol, which also hears what lws tells
 * every vhost. The server notes each TLS listener's SSL_CTX as lws makes it, so that a
 * reload can give it a new certificate. */
static int rg__chat_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
			     void *in, size_t len)
{
	if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS) {
		struct rg__server *s = lws_container_of(lws_context_user(lws_get_context(wsi)),
							struct rg__server, srv);
		if (s->making < RG_LISTEN_MAX)
			s->reload.tls[s->making] = user;
	}
	return rg_ws_chat_protocol.callback(wsi, reason, user, in, len);
}

static void rg__on_hup(struct ev_loop *ev, ev_signal *w, int revents)
{
	struct rg__server *s = w->data;

	(void)ev;
	(void)revents;
	rg_reload(&s->reload, &s->srv);
}

/* The protocols with their per-vhost option (the server state) and the mounts. */
static void rg__protocols(struct rg__server *s)
{
	const struct lws_protocols *all[RG__NPROTOS] = {
		[RG__CHAT] = &rg_ws_chat_protocol,  [RG__SSE] = &rg_sse_protocol,
		[RG__API] = &rg_http_api_protocol,  [RG__ADMIN] = &rg_admin_api_protocol,
		[RG__STATIC] = &rg_static_protocol,
	};
	size_t i;

	/* every protocol takes the state from the context's user pointer (rg__context) */
	s->srv_opt = (struct lws_protocol_vhost_options){NULL, NULL, RG_SRV_PVO_SHARED, ""};
	for (i = 0; i < RG__NPROTOS; i++) {
		s->protos[i] = *all[i];
		/* A batch of frames leaves in one send() (and one TLS record run): without
		 * an explicit tx_packet_size lws would cut sends at rx_buffer_size. */
		s->protos[i].tx_packet_size = s->srv.scratch_len;
		if (i == RG__CHAT)
			s->protos[i].callback = rg__chat_callback;
		s->pprotos[i] = &s->protos[i];
		s->pvos[i] = (struct lws_protocol_vhost_options){
			i + 1 < RG__NPROTOS ? &s->pvos[i + 1] : NULL, &s->srv_opt,
			s->protos[i].name, ""};
	}
	for (i = 0; i + 1 < RG__NMOUNTS; i++) {
		s->mounts[i] = (struct lws_http_mount){
			.mount_next = &s->mounts[i + 1],
			.mountpoint = rg__mount_table[i].mountpoint,
			.protocol = s->protos[rg__mount_table[i].proto].name,
			.origin_protocol = LWSMPRO_CALLBACK,
			.mountpoint_len = (unsigned char)strlen(rg__mount_table[i].mountpoint),
		};
	}
	s->mounts[i] = (struct lws_http_mount){
		.mountpoint = "/",
		.origin = s->srv.cfg->web_root,
		.def = "index.html",
		.protocol = s->protos[RG__STATIC].name,
		.origin_protocol = LWSMPRO_FILE,
		.mountpoint_len = 1,
	};
}

/* The libev loop and the lws context on it. 0, or -1 (logged). */
static int rg__context(struct rg__server *s)
{
	struct lws_context_creation_info info;

	s->loop.ev = ev_loop_new(EVFLAG_AUTO);
	if (!s->loop.ev) {
		rg_err("cannot create the event loop (libev)");
		return -1;
	}
	s->srv.ev = s->loop.ev;
	void *foreign[] = {s->loop.ev};

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
		       LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_LIBEV;
	info.foreign_loops = foreign;
	info.user = &s->srv;
	info.max_http_header_data = (unsigned short)s->srv.cfg->max_header_bytes;
	s->ctx = lws_create_context(&info);
	if (!s->ctx) {
		rg_err("cannot create the lws context (see the lws error above)");
		return -1;
	}
	return rg_static_confine(s->ctx, s->srv.cfg->web_root);
}

/* One vhost per listener, each with every protocol and mount. 0, or -1 (logged). */
static int rg__listeners(struct rg__server *s)
{
	const struct rg_config *cfg = s->srv.cfg;

	/* Idle connections (WS, and HTTP/2 connections carrying SSE) are pinged, and
	 * closed if the peer stays silent past the timeout. */
	rg_reload_retry(&s->retry, cfg);
	for (size_t i = 0; i < cfg->nlisten; i++) {
		struct lws_context_creation_info vi;
		memset(&vi, 0, sizeof(vi));
		vi.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_LIBEV;
		vi.pprotocols = s->pprotos;
		vi.pvo = &s->pvos[0];
		vi.mounts = &s->mounts[0];
		vi.retry_and_idle_policy = &s->retry;
		/* lws guards the TLS accept with timeout_secs, and a connection holding a
		 * header table without a complete request with timeout_secs_ah_idle */
		vi.timeout_secs = cfg->handshake_seconds;
		vi.timeout_secs_ah_idle = cfg->handshake_seconds;
		/* protocols[0] hears of each TLS handshake done: a connection that ends
		 * without a request is then told from one whose handshake failed */
		vi.ssl_info_event_mask = SSL_CB_HANDSHAKE_DONE;
		s->making = i;
		if (rg__listen(s->ctx, &cfg->listen[i], &vi, s->names[i]))
			return -1;
	}
	s->making = RG_LISTEN_MAX;
	return 0;
}

/* Signals, the wake window, the heartbeat and the tick; then the loop, until a signal. */
static void rg__serve(struct rg__server *s)
{
	struct rg__loop *l = &s->loop;

	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&l->sigint, rg__on_signal, SIGINT);
	ev_signal_init(&l->sigterm, rg__on_signal, SIGTERM);
	l->sigint.data = l->sigterm.data = l;
	ev_signal_start(l->ev, &l->sigint);
	ev_signal_start(l->ev, &l->sigterm);
	/* a reload, as `systemctl reload` and `docker kill -s HUP` ask (reload.h) */
	ev_signal_init(&l->sighup, rg__on_hup, SIGHUP);
	l->sighup.data = s;
	ev_signal_start(l->ev, &l->sighup);
	ev_init(&s->srv.flush, rg_wake_on_window);
	s->srv.flush.data = &s->srv;
	l->ctx = s->ctx;
	l->srv = &s->srv;
	ev_check_init(&l->pass_begin, rg__on_pass_begin);
	ev_prepare_init(&l->pass_end, rg__on_pass_end);
	l->pass_begin.data = l->pass_end.data = l;
	ev_check_start(l->ev, &l->pass_begin);
	ev_prepare_start(l->ev, &l->pass_end);
	rg__on_heartbeat(&l->heartbeat);
	s->tick.ctx = s->ctx;
	lws_sul_schedule(s->ctx, 0, &s->tick.sul, rg__on_tick, RG_TICK_US);
	rg_notice("roomgate serving %zu room(s) and %zu pattern(s)", (size_t)s->srv.reg.nrooms,
		  s->srv.cfg->nrooms - s->srv.reg.nrooms);
	if (s->srv.cfg->auth)
		rg_notice("auth: %zu token key(s), %zu API key(s)", s->srv.cfg->auth->keys.n,
			  s->srv.cfg->auth->napi_keys);
	else
		rg_warn("auth: none configured: every client is anonymous, and the HTTP API is a "
			"backend from loopback addresses only (docs/OPERATIONS.md, \"Security\")");
	rg_log_hold(1);
	ev_run(l->ev, 0);
}

/* Closes every WebSocket (1001) and SSE stream, and waits up to shutdown.drain_ms for
 * them to go. */
static void rg__drain(struct rg__server *s)
{
	struct rg__loop *l = &s->loop;

	rg_notice("signal %d: closing connections", l->signum);
	s->srv.stopping = 1;
	rg_wake_flush(&s->srv);
	ev_timer_stop(l->ev, &s->srv.flush);
	lws_callback_on_writable_all_protocol(s->ctx, &s->protos[RG__CHAT]);
	lws_callback_on_writable_all_protocol(s->ctx, &s->protos[RG__SSE]);
	/* A second signal ends the drain early. */
	l->until = lws_now_usecs() + (lws_usec_t)s->srv.cfg->drain_ms * 1000;
	ev_timer_init(&l->drain, rg__on_drain, RG_DRAIN_POLL, RG_DRAIN_POLL);
	l->drain.data = l;
	ev_timer_start(l->ev, &l->drain);
	if (s->srv.streams)
		ev_run(l->ev, 0);
	ev_timer_stop(l->ev, &l->drain);
}

int rg_server_run(const struct rg_config *cfg, rg_engine_new_fn engine_new)
{
	struct rg__server *s = calloc(1, sizeof(*s));
	struct rg_engine *engine = NULL;
	int rc = -1;

	rg_srv_log_set(cfg);
	if (!s || rg_registry_init(&s->srv.reg, cfg)) {
		rg_err("out of memory");
		free(s);
		return -1;
	}
	s->srv.cfg = cfg;
	s->reload.boot = cfg;
	s->reload.retry = &s->retry;
	s->making = RG_LISTEN_MAX;
	rg_srv_limits_set(&s->srv);
	s->tick.srv = &s->srv;
	s->loop.srv = &s->srv;
	s->srv.scratch_len = rg_srv_scratch_len(cfg);
	s->srv.scratch = malloc(LWS_PRE + s->srv.scratch_len);
	if (!s->srv.scratch) {
		rg_err("out of memory");
		goto out;
	}
	rg__protocols(s);
	if (rg__context(s))
		goto out;
	if (cfg->redis_address) {
		engine = engine_new(s->loop.ev, &s->srv.reg, cfg);
		if (!engine)
			goto out;
		rg_registry_set_engine(&s->srv.reg, engine);
	}
	if (rg__listeners(s) || rg_reload_start(&s->reload))
		goto out;
	rg__serve(s);
	rg__drain(s);
	rg_log_hold(0);
	rc = 0;
out:
	if (s->ctx) {
		lws_sul_cancel(&s->tick.sul);
		lws_sul_cancel(&s->loop.heartbeat);
		lws_context_destroy(s->ctx);
	}
	/* the server's own watchers go first: the engine may run the loop once more, to
	 * tell Redis this node is gone, and nothing of the server may run then (a SIGHUP
	 * would reload into the destroyed context) */
	if (s->loop.ev) {
		ev_signal_stop(s->loop.ev, &s->loop.sigint);
		ev_signal_stop(s->loop.ev, &s->loop.sigterm);
		ev_signal_stop(s->loop.ev, &s->loop.sighup);
		/* a reload now has nothing to reload into; its default action would kill */
		signal(SIGHUP, SIG_IGN);
		ev_check_stop(s->loop.ev, &s->loop.pass_begin);
		ev_prepare_stop(s->loop.ev, &s->loop.pass_end);
		ev_timer_stop(s->loop.ev, &s->srv.flush);
	}
	/* after every connection (each cancelled what it had in flight), before the loop */
	if (engine) {
		s->srv.reg.engine = NULL;
		engine->ops->free(engine);
	}
	if (s->loop.ev)
		ev_loop_destroy(s->loop.ev);
	rg_registry_cleanup(&s->srv.reg);
	rg_conn_limits_cleanup(&s->srv.conns);
	rg_reload_cleanup(&s->reload);
	free(s->srv.scratch);
	free(s);
	if (!rc)
		rg_notice("stopped");
	return rc;
}
