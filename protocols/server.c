#include "server.h"

#include "http_api.h"
#include "srv.h"
#include "sse.h"
#include "static_files.h"
#include "ws_chat.h"

#include "../gateway/log.h"
#include "../gateway/session.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define RG_SCRATCH_MIN (64 * 1024)
#define RG_TICK_US     (1 * LWS_US_PER_SEC)
#define RG_DRAIN_US    (1 * LWS_US_PER_SEC)

_Static_assert(LWS_PRE <= 32, "scratch headroom is LWS_PRE");

static volatile sig_atomic_t rg__signal;

static void rg__on_signal(int sig)
{
	rg__signal = sig;
}

/* The once-a-second tick: drops idle pattern rooms, and bounds how long a signal
 * that lands outside poll() waits to be seen. */
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

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
		       LWS_SERVER_OPTION_VALIDATE_UTF8;
	ctx = lws_create_context(&info);
	if (!ctx) {
		rg_err("cannot create the lws context");
		goto out;
	}
	if (rg_static_confine(ctx, cfg->web_root))
		goto out;
	tick.ctx = ctx;
	srv.ctx = ctx;

	char names[RG_LISTEN_MAX][32];
	for (size_t i = 0; i < cfg->nlisten; i++) {
		struct lws_context_creation_info vi;
		memset(&vi, 0, sizeof(vi));
		vi.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
		vi.pprotocols = pprotos;
		vi.pvo = &pvo_chat;
		vi.mounts = &m_events;
		vi.retry_and_idle_policy = &retry;
		if (rg__listen(ctx, &cfg->listen[i], &vi, names[i]))
			goto out;
	}

	struct sigaction sa = {.sa_handler = rg__on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	lws_sul_schedule(ctx, 0, &tick.sul, rg__on_tick, RG_TICK_US);
	rg_notice("roomgate serving %zu room(s) and %zu pattern(s)", (size_t)srv.reg.nrooms,
		  cfg->nrooms - srv.reg.nrooms);
	while (!rg__signal)
		if (lws_service(ctx, 0) < 0)
			break;

	rg_notice("signal %d: closing connections", (int)rg__signal);
	srv.stopping = 1;
	rg_wake_flush(&srv);
	lws_sul_cancel(&srv.flush);
	lws_callback_on_writable_all_protocol(ctx, &protos[0]);
	lws_callback_on_writable_all_protocol(ctx, &protos[1]);
	lws_usec_t until = lws_now_usecs() + (lws_usec_t)cfg->drain_ms * 1000;
	while (srv.streams && lws_now_usecs() < until)
		if (lws_service(ctx, 0) < 0)
			break;
	rc = 0;
out:
	if (ctx) {
		lws_sul_cancel(&tick.sul);
		lws_context_destroy(ctx);
	}
	rg_registry_cleanup(&srv.reg);
	free(srv.scratch);
	if (!rc)
		rg_notice("stopped");
	return rc;
}
