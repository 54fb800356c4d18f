#include "server.h"

#include "http_api.h"
#include "srv.h"
#include "sse.h"
#include "static_files.h"
#include "ws_chat.h"

#include "../gateway/log.h"
#include "../gateway/session.h"

#include <ev.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define RG_SCRATCH_MIN (64 * 1024)
#define RG_TICK_US     (1 * LWS_US_PER_SEC)
#define RG_DRAIN_POLL  0.01 /* s: how often the drain checks for open streams */

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
	ev_signal sigint, sigterm;
	ev_timer drain;
	lws_sorted_usec_list_t heartbeat;
	struct lws_context *ctx;
	struct rg_srv *srv;
	lws_usec_t until; /* end of the drain */
	int signum;       /* the last SIGINT/SIGTERM seen, 0 before */
};

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
	unsigned n = rg_registry_sweep(&t->srv->reg, rg_now_ms());

	if (n)
		rg_info("dropped %u idle pattern room(s)", n);
	rg_log_flush();
	lws_sul_schedule(t->ctx, 0, &t->sul, rg__on_tick, RG_TICK_US);
}

static void rg__lws_log(int level, const char *line)
{
	char buf[512];
	size_t n = strlen(line);

	/* 4.1.6 logs this at ERR for every HTTP/1.1 SSE stream; it is expected. */
	if (strstr(line, "not h2 substream"))
		return;
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, line, n);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	rg_log(level == LLL_ERR    ? RG_LOG_ERR
	       : level == LLL_WARN ? RG_LOG_WARN
				   : RG_LOG_INFO,
	       "lws: %s", buf);
}

/* name: storage for the vhost name, which lws keeps pointing to until the context is
 * destroyed. */
static int rg__listen(struct lws_context *ctx, const struct rg_listen_conf *l,
		      struct lws_context_creation_info *vi, char name[32])
{
	snprintf(name, 32, "listen-%d", l->port);
	vi->vhost_name = name;
	vi->port = l->port;
	vi->iface = l->host;
	vi->ssl_cert_filepath = l->cert;
	vi->ssl_private_key_filepath = l->key;
	/* lws enables TLS on a vhost only when its own options carry this flag. */
	if (l->cert)
		vi->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	if (!lws_create_vhost(ctx, vi)) {
		rg_err("cannot listen on %s:%d%s (see the lws error above)",
		       l->host ? l->host : "*", l->port, l->cert ? " with TLS" : "");
		return -1;
	}
	if (l->cert)
		rg_notice("listening on %s:%d (TLS: https, wss; HTTP/2 by ALPN)",
			  l->host ? l->host : "*", l->port);
	else
		rg_warn("listening on %s:%d WITHOUT TLS (plain http, ws): add \"tls\" to this "
			"listener for anything beyond local testing",
			l->host ? l->host : "*", l->port);
	return 0;
}

int rg_server_run(const struct rg_config *cfg)
{
	struct rg_srv srv = {.cfg = cfg};
	struct lws_context_creation_info info;
	struct lws_context *ctx = NULL;
	struct rg__tick tick = {.srv = &srv};
	struct rg__loop loop = {.srv = &srv};
	int rc = -1;

	if (rg_registry_init(&srv.reg, cfg)) {
		rg_err("out of memory");
		return -1;
	}
	srv.scratch_len = rg_session_max_item(cfg);
	if (srv.scratch_len < RG_SCRATCH_MIN)
		srv.scratch_len = RG_SCRATCH_MIN;
	srv.scratch = malloc(LWS_PRE + srv.scratch_len);
	if (!srv.scratch) {
		rg_err("out of memory");
		goto out;
	}

	/* A batch of frames leaves in one send() (and one TLS record run): without an
	 * explicit tx_packet_size lws would cut sends at rx_buffer_size. */
	struct lws_protocols protos[] = {
		rg_ws_chat_protocol, rg_sse_protocol, rg_http_api_protocol, {0}};
	for (size_t i = 0; protos[i].callback; i++)
		protos[i].tx_packet_size = srv.scratch_len;
	const struct lws_protocols *pprotos[] = {&protos[0], &protos[1], &protos[2], NULL};

	struct lws_protocol_vhost_options srv_opt = {NULL, NULL, RG_SRV_PVO, (const char *)&srv};
	struct lws_protocol_vhost_options pvo_api = {NULL, &srv_opt, protos[2].name, ""};
	struct lws_protocol_vhost_options pvo_sse = {&pvo_api, &srv_opt, protos[1].name, ""};
	struct lws_protocol_vhost_options pvo_chat = {&pvo_sse, &srv_opt, protos[0].name, ""};

	struct lws_http_mount m_static = {
		.mountpoint = "/",
		.origin = cfg->web_root,
		.def = "index.html",
		.origin_protocol = LWSMPRO_FILE,
		.mountpoint_len = 1,
	};
	struct lws_http_mount m_health = {
		.mount_next = &m_static,
		.mountpoint = "/healthz",
		.protocol = protos[2].name,
		.origin_protocol = LWSMPRO_CALLBACK,
		.mountpoint_len = 8,
	};
	struct lws_http_mount m_streams = {
		.mount_next = &m_health,
		.mountpoint = "/streams",
		.protocol = protos[2].name,
		.origin_protocol = LWSMPRO_CALLBACK,
		.mountpoint_len = 8,
	};
	struct lws_http_mount m_rooms = {
		.mount_next = &m_streams,
		.mountpoint = "/rooms",
		.protocol = protos[2].name,
		.origin_protocol = LWSMPRO_CALLBACK,
		.mountpoint_len = 6,
	};
	struct lws_http_mount m_events = {
		.mount_next = &m_rooms,
		.mountpoint = "/events",
		.protocol = protos[1].name,
		.origin_protocol = LWSMPRO_CALLBACK,
		.mountpoint_len = 7,
	};
	/* Idle connections (WS, and HTTP/2 connections carrying SSE) are pinged, and
	 * closed if the peer stays silent past the timeout. */
	lws_retry_bo_t retry = {
		.secs_since_valid_ping = (uint16_t)cfg->ws_ping_seconds,
		.secs_since_valid_hangup =
			(uint16_t)(cfg->ws_ping_seconds + cfg->ws_ping_timeout_seconds),
	};

	lws_set_log_level(LLL_ERR | LLL_WARN | (rg_log_get_level() >= RG_LOG_INFO ? LLL_NOTICE : 0),
			  rg__lws_log);

	loop.ev = ev_loop_new(EVFLAG_AUTO);
	if (!loop.ev) {
		rg_err("cannot create the event loop (libev)");
		goto out;
	}
	srv.ev = loop.ev;
	void *foreign[] = {loop.ev};

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
		       LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_LIBEV;
	info.foreign_loops = foreign;
	ctx = lws_create_context(&info);
	if (!ctx) {
		rg_err("cannot create the lws context (see the lws error above)");
		goto out;
	}
	if (rg_static_confine(ctx, cfg->web_root))
		goto out;
	tick.ctx = ctx;

	char names[RG_LISTEN_MAX][32];
	for (size_t i = 0; i < cfg->nlisten; i++) {
		struct lws_context_creation_info vi;
		memset(&vi, 0, sizeof(vi));
		vi.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_LIBEV;
		vi.pprotocols = pprotos;
		vi.pvo = &pvo_chat;
		vi.mounts = &m_events;
		vi.retry_and_idle_policy = &retry;
		if (rg__listen(ctx, &cfg->listen[i], &vi, names[i]))
			goto out;
	}

	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&loop.sigint, rg__on_signal, SIGINT);
	ev_signal_init(&loop.sigterm, rg__on_signal, SIGTERM);
	loop.sigint.data = loop.sigterm.data = &loop;
	ev_signal_start(loop.ev, &loop.sigint);
	ev_signal_start(loop.ev, &loop.sigterm);
	ev_init(&srv.flush, rg_wake_on_window);
	srv.flush.data = &srv;
	loop.ctx = ctx;
	loop.srv = &srv;
	rg__on_heartbeat(&loop.heartbeat);

	lws_sul_schedule(ctx, 0, &tick.sul, rg__on_tick, RG_TICK_US);
	rg_notice("roomgate serving %zu room(s) and %zu pattern(s)", (size_t)srv.reg.nrooms,
		  cfg->nrooms - srv.reg.nrooms);
	ev_run(loop.ev, 0);

	rg_notice("signal %d: closing connections", loop.signum);
	srv.stopping = 1;
	rg_wake_flush(&srv);
	ev_timer_stop(loop.ev, &srv.flush);
	lws_callback_on_writable_all_protocol(ctx, &protos[0]);
	lws_callback_on_writable_all_protocol(ctx, &protos[1]);
	/* A second signal ends the drain early. */
	loop.until = lws_now_usecs() + (lws_usec_t)cfg->drain_ms * 1000;
	ev_timer_init(&loop.drain, rg__on_drain, RG_DRAIN_POLL, RG_DRAIN_POLL);
	loop.drain.data = &loop;
	ev_timer_start(loop.ev, &loop.drain);
	if (srv.streams)
		ev_run(loop.ev, 0);
	ev_timer_stop(loop.ev, &loop.drain);
	rc = 0;
out:
	if (ctx) {
		lws_sul_cancel(&tick.sul);
		lws_sul_cancel(&loop.heartbeat);
		lws_context_destroy(ctx);
	}
	if (loop.ev) {
		ev_signal_stop(loop.ev, &loop.sigint);
		ev_signal_stop(loop.ev, &loop.sigterm);
		ev_loop_destroy(loop.ev);
	}
	rg_registry_cleanup(&srv.reg);
	free(srv.scratch);
	if (!rc)
		rg_notice("stopped");
	return rc;
}
