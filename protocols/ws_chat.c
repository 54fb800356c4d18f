#include "ws_chat.h"

#include "access.h"
#include "credentials.h"
#include "http_reply.h"
#include "srv.h"

#include "../gateway/log.h"
#include "../gateway/session.h"

#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

#define RG_WS_CLOSE_TRY_LATER    1013
#define RG_WS_CLOSE_UNAUTHORIZED 4001
#define RG_WS_CLOSE_LAGGED       4008
#define RG_WS_CLOSE_POLICY       1008

/* What the expiry timer's next firing means (rg_conn_timer.stage). */
enum { RG__EXP_TELL, RG__EXP_CLOSE, RG__EXP_CLOSING };

struct pss__rg_chat {
	struct lws *wsi;
	struct rg_session session;
	struct rg_wake wake;
	int established;
	int closing;        /* shutting down: its close is under way */
	int paused;         /* not read while its answers wait (rg_session_paused) */
	int in_message;     /* a message's first fragment arrived, its last not yet */
	int discard;        /* the current message is refused; drop its bytes */
	enum rg_err refuse; /* why, when discarding */
	char *rx;           /* reassembly of the current message */
	size_t rx_len;
	struct rg_rx_budget rx_budget;
	struct rg_conn_timer *expiry; /* NULL unless its token expires */
	struct rg_access_meter meter;
	unsigned close; /* the close code sent or received; 0: none yet */
};

/* Closes with code and reason (a static string): the access line tells it. -1. */
static int rg__close(struct pss__rg_chat *pss, unsigned code, const char *reason)
{
	pss->close = code;
	lws_close_reason(pss->wsi, (enum lws_close_status)code, (unsigned char *)reason,
			 strlen(reason));
	return -1;
}

static void rg__expiry(struct lws *wsi);

/* Arms the expiry timer for the session's deadline, when it has one it is not armed
 * for: a token at the upgrade, the first `auth`, or a refresh. 0 or -1. */
static int rg__arm_expiry(struct pss__rg_chat *pss)
{
	int64_t deadline = rg_session_deadline(&pss->session);

	if (!deadline || (pss->expiry && pss->expiry->at == deadline))
		return 0;
	if (rg_conn_timer_at(&pss->expiry, pss->wsi, deadline, rg__expiry))
		return -1;
	pss->expiry->at = deadline;
	pss->expiry->stage = RG__EXP_TELL;
	return 0;
}

/* At the deadline the client is told, and gets auth.expiry_grace_seconds to send a new
 * token; then it is closed. */
static void rg__expiry(struct lws *wsi)
{
	struct pss__rg_chat *pss = lws_wsi_user(wsi);
	struct rg_conn_timer *t = pss->expiry;
	int64_t now = rg_unix_s();

	if (now < t->at) { /* a timer a little early: whole seconds */
		rg_conn_timer_at(&pss->expiry, wsi, t->at, rg__expiry);
		return;
	}
	if (t->stage == RG__EXP_TELL) {
		t->stage = RG__EXP_CLOSE;
		if (rg_session_expire(&pss->session) ||
		    rg_conn_timer_at(&pss->expiry, wsi,
				     t->at + rg_srv_of(wsi)->cfg->auth_grace_seconds, rg__expiry))
			lws_set_timeout(wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
		return;
	}
	rg_log_conn(RG_LOG_INFO, pss->session.conn, "ws: closing a connection: its token expired");
	t->stage = RG__EXP_CLOSING;
	lws_callback_on_writable(wsi);
}

static int rg__refuse_frame(struct pss__rg_chat *pss, enum rg_err err)
{
	static const char *why[] = {
		[RG_E_TOO_LARGE] = "the message exceeds limits.max_message_bytes",
		[RG_E_BAD_REQUEST] = "binary frames are not accepted: send JSON text"};
	if (err == RG_E_TOO_LARGE)
		rg_session_log_limit(&pss->session, RG_LIMIT_MESSAGE_SIZE,
				     "limits.max_message_bytes", err);
	return rg_session_refuse(&pss->session, err, why[err]);
}

/* Appends one received chunk; at the end of a message, hands it to the session. */
static int rg__receive(struct rg_srv *srv, struct pss__rg_chat *pss, const void *in, size_t len)
{
	size_t max = srv->cfg->max_message_bytes;
	int rc = 0;

	if (pss->session.ending)
		return 0; /* refused already: closed once told why */
	if (!pss->in_message) {
		pss->in_message = 1;
		pss->discard = 0;
		pss->rx_len = 0;
		if (lws_frame_is_binary(pss->wsi)) {
			pss->discard = 1;
			pss->refuse = RG_E_BAD_REQUEST;
		}
	}
	if (!pss->discard && pss->rx_len + len > max) {
		pss->discard = 1;
		pss->refuse = RG_E_TOO_LARGE;
	}
	if (!pss->discard && len) {
		char *rx = rg_budget_realloc(&srv->reg.mem, RG_MEM_SESSIONS, pss->rx,
					     pss->rx_len + len);
		if (!rx)
			return -1;
		pss->rx = rx;
		memcpy(pss->rx + pss->rx_len, in, len);
		pss->rx_len += len;
	}
	if (!lws_is_final_fragment(pss->wsi) || lws_remaining_packet_payload(pss->wsi))
		return 0;

	pss->in_message = 0;
	if (pss->discard)
		rc = rg__refuse_frame(pss, pss->refuse);
	else
		rc = rg_session_handle(&pss->session, pss->rx, pss->rx_len);
	rg_budget_free(&srv->reg.mem, RG_MEM_SESSIONS, pss->rx);
	pss->rx = NULL;
	pss->rx_len = 0;
	/* an `auth` may have brought a token that expires, or a later expiry */
	if (!rc)
		rc = rg__arm_expiry(pss);
	/* A client that asks faster than it reads is paused, not judged: what it sends
	 * meanwhile waits in its socket (lws keeps what it read already). */
	if (!rc && !pss->paused && rg_session_paused(&pss->session)) {
		pss->paused = 1;
		lws_rx_flow_control(pss->wsi, 0);
	}
	return rc ? -1 : 0;
}

/* Ours carry a prebuilt header: 2, 4 or 10 bytes by the length code. */
static size_t rg__ws_header_len(const unsigned char *frame)
{
	unsigned code = frame[1] & 0x7f;
	return code < 126 ? 2 : code == 126 ? 4 : 10;
}

static int rg__writeable(struct rg_srv *srv, struct pss__rg_chat *pss)
{
	unsigned char *buf = srv->scratch + LWS_PRE;
	/* WebSocket over an HTTP/2 stream (RFC 8441) needs lws to frame each message
	 * in the h2 stream; on a plain connection the frames go out as they are. */
	int h2 = lws_get_network_wsi(pss->wsi) != pss->wsi;
	size_t len;
	int flags;

	if (srv->stopping) {
		/* Once: lws then sends the close frame and waits for the peer's
		 * (LRS_AWAITING_CLOSE_ACK, which still calls us writeable); closing again
		 * would drop the connection under the peer's reply. */
		if (pss->closing)
			return 0;
		pss->closing = 1;
		return rg__close(pss, LWS_CLOSE_STATUS_GOINGAWAY, "");
	}
	if (pss->expiry && pss->expiry->stage == RG__EXP_CLOSING)
		return rg__close(pss, RG_WS_CLOSE_UNAUTHORIZED, "token_expired");
	flags = rg_session_fill(&pss->session, buf, srv->scratch_len, h2 ? 1 : 0, &len);
	if (flags < 0) {
		rg_log_conn(RG_LOG_ERR, pss->session.conn, "ws: cannot compose a write (%d)",
			    flags);
		return -1;
	}
	if (flags & RG_FILL_LAGGED) {
		rg_log_conn(RG_LOG_INFO, pss->session.conn, "ws: closing a connection: lagged (%s)",
			    pss->session.lagged[0] ? pss->session.lagged : rg_why_unread);
		return rg__close(pss, RG_WS_CLOSE_LAGGED, "lagged");
	}
	if (pss->paused && !rg_session_paused(&pss->session)) {
		pss->paused = 0;
		lws_rx_flow_control(pss->wsi, 1);
		/* what lws kept while paused is read in the next loop pass */
		rg_rx_resume(srv, pss->wsi);
	}
	if (len) {
		size_t hl = h2 ? rg__ws_header_len(buf) : 0;
		srv->reg.metrics.bytes_out[RG_FMT_WS] += len - hl;
		rg_hist_observe(&srv->reg.metrics.write_bytes, rg_write_bounds, RG_WRITE_BUCKETS,
				len - hl);
		pss->meter.out += len - hl;
		if (lws_write(pss->wsi, buf + hl, len - hl, h2 ? LWS_WRITE_TEXT : LWS_WRITE_RAW) <
		    0)
			return -1;
	}
	if ((flags & RG_FILL_END) && !len) { /* the answer that says why went out before */
		enum rg_err why = pss->session.end_err;
		return rg__close(pss,
				 why == RG_E_OVERLOADED ? RG_WS_CLOSE_TRY_LATER
				 : why == RG_E_CLOSED   ? RG_WS_CLOSE_POLICY
							: RG_WS_CLOSE_UNAUTHORIZED,
				 rg_err_code(why));
	}
	if (flags & (RG_FILL_MORE | RG_FILL_END))
		lws_callback_on_writable(pss->wsi);
	return 0;
}

/* Refuses the new connection: it is told why, then closed (1013 when overloaded, else
 * 4001). */
static int rg__refuse_conn(struct pss__rg_chat *pss, enum rg_err err, const char *why)
{
	pss->session.end_err = err;
	rg_session_end(&pss->session);
	return rg_session_refuse(&pss->session, err, why) ? -1 : 0;
}

/* The credentials of the upgrade request: a token refused is answered, and the
 * connection closed with 4001 once the answer is out (a browser sees the close code,
 * not an HTTP status). */
static int rg__authenticate(struct rg_srv *srv, struct pss__rg_chat *pss)
{
	struct rg_identity id;
	const char *why;
	int c = rg_credentials(srv, pss->wsi, 1, &id, &why);

	if (c < 0)
		return rg__refuse_conn(pss, RG_E_UNAUTHORIZED, why);
	if (c > 0 && rg_session_authenticate(&pss->session, &id)) {
		rg_identity_clear(&id);
		return -1;
	}
	return rg__arm_expiry(pss);
}

static int rg__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len)
{
	struct pss__rg_chat *pss = user;
	struct rg_srv *srv = rg_srv_of(wsi);
	char uri[16];
	int ret;

	if (rg_srv_lifecycle(wsi, reason, in, &ret))
		return ret;
	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* lws tells protocols[0] about each TLS vhost's SSL_CTX. An idle TLS
		 * connection then holds no TLS read/write buffers. */
		SSL_CTX_set_mode((SSL_CTX *)user, SSL_MODE_RELEASE_BUFFERS);
		rg_info("tls: SSL_MODE_RELEASE_BUFFERS on vhost %s", lws_get_vhost_name(in));
		return 0;

	/* protocols[0] hears of every network connection: the connection limits. A
	 * refusal is made before the socket has a wsi: lws closes it at once. */
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		return srv && rg_srv_conn_check(srv, (int)(lws_intptr_t)in) ? -1 : 0;

	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		return srv && rg_srv_conn_admit(srv, wsi) ? -1 : 0;

	case LWS_CALLBACK_SSL_INFO:
		rg_srv_conn_tls_done(wsi);
		return 0;

	case LWS_CALLBACK_WSI_DESTROY:
		if (srv)
			rg_srv_conn_release(srv, wsi);
		return 0;

	case LWS_CALLBACK_FILTER_HTTP_CONNECTION: {
		/* protocols[0] sees every HTTP request first, before lws frames its body
		 * (by the first Content-Length) and before any mount takes it. */
		const char *why = rg_http_framing_error(wsi);
		if (why) {
			rg_http_refuse_now(wsi, "http", RG_E_BAD_REQUEST, why);
			return 1;
		}
		return 0;
	}

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* Only /ws upgrades, over HTTP/1.1 or as an HTTP/2 extended CONNECT
		 * (RFC 8441); anything else is refused before it costs a session. */
		if (!srv || srv->stopping || rg_http_path(wsi, uri, sizeof(uri)) ||
		    strcmp(uri, "/ws")) {
			rg_srv_conn_upgrade_refused(srv, wsi);
			return 1;
		}
		/* a browser page elsewhere would act as its user (cookies, client certs) */
		if (rg_http_origin(wsi, srv->cfg) < 0) {
			rg_srv_conn_upgrade_refused(srv, wsi);
			rg_http_refuse_now(wsi, "ws", RG_E_FORBIDDEN, rg_why_origin);
			return 1;
		}
		return 0;

	case LWS_CALLBACK_ESTABLISHED:
		pss->wsi = wsi;
		rg_wake_init(&pss->wake, srv, wsi);
		rg_session_init(&pss->session, &srv->reg, RG_FMT_WS, rg_wake, &pss->wake);
		pss->session.doom = rg_wake_doom;
		/* the connection's address (rg_srv_conn_admit): its publish budget */
		pss->session.peer = rg_conn_peer(wsi);
		pss->session.conn = rg_conn_id(wsi);
		rg_access_start(&pss->meter, wsi);
		pss->established = 1;
		srv->streams++;
		srv->reg.metrics.opened[RG_TR_WS][pss->meter.tls][pss->meter.h2]++;
		srv->reg.metrics.open[RG_TR_WS]++;
		/* a connection holds rooms and their messages: none is taken past the budget */
		if (rg_registry_overloaded(&srv->reg, NULL)) {
			rg_session_log_limit(&pss->session, RG_LIMIT_MEMORY, "limits.memory_mb",
					     RG_E_OVERLOADED);
			return rg__refuse_conn(pss, RG_E_OVERLOADED, rg_why_overloaded);
		}
		return rg__authenticate(srv, pss);

	case LWS_CALLBACK_RECEIVE:
		pss->meter.in += len;
		srv->reg.metrics.bytes_in[RG_TR_WS] += len;
		if (rg__receive(srv, pss, in, len))
			return -1;
		if (!pss->paused)
			rg_rx_more(srv, wsi, &pss->rx_budget, len);
		return 0;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		return rg__writeable(srv, pss);

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* the peer's code, or 1005: its close frame had none (RFC 6455 7.4.1) */
		pss->close = len >= 2 ? (unsigned)((const unsigned char *)in)[0] << 8 |
						((const unsigned char *)in)[1]
				      : 1005;
		return 0;

	case LWS_CALLBACK_CLOSED:
		if (pss->established) {
			/* 1006: it ended without a close frame either way */
			rg_access_log(wsi, &pss->meter, "ws", pss->meter.h2 ? "CONNECT" : "GET",
				      "/ws", 101, pss->close ? pss->close : 1006, &pss->session);
			rg_conn_timer_free(&pss->expiry);
			rg_wake_cancel(&pss->wake);
			rg_session_cleanup(&pss->session);
			srv->streams--;
			srv->reg.metrics.open[RG_TR_WS]--;
		}
		rg_budget_free(srv ? &srv->reg.mem : NULL, RG_MEM_SESSIONS, pss->rx);
		pss->rx = NULL;
		pss->established = 0;
		return 0;

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* The protocol in lws's plugin idiom (plugins/protocol_*.c): an initializer that
 * roomgate compiles in (LWS_PLUGIN_STATIC) and that the plugin build exports as
 * libprotocol_roomgate_chat.so. rx_buffer_size is allocated per connection: small
 * keeps idle connections cheap, and messages arrive in chunks that rg__receive
 * reassembles. A batch of frames leaves in one send of up to tx_packet_size (roomgate's
 * server sets it to its write buffer). */
#define LWS_PLUGIN_PROTOCOL_ROOMGATE_CHAT                                                     \
	{                                                                                     \
		.name = "roomgate.v1", .callback = rg__callback,                              \
		.per_session_data_size = sizeof(struct pss__rg_chat), .rx_buffer_size = 1024, \
		.tx_packet_size = 64 * 1024,                                                  \
	}

#if defined(LWS_PLUGIN_STATIC)
const struct lws_protocols rg_ws_chat_protocol = LWS_PLUGIN_PROTOCOL_ROOMGATE_CHAT;
#else
static const struct lws_protocols rg__protocols[] = {LWS_PLUGIN_PROTOCOL_ROOMGATE_CHAT};

LWS_VISIBLE const lws_plugin_protocol_t roomgate_chat = {
	.hdr = {"roomgate chat", "lws_protocol_plugin", LWS_PLUGIN_API_MAGIC},
	.protocols = rg__protocols,
	.count_protocols = 1,
};
#endif
