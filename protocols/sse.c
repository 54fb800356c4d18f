#include "sse.h"

#include "credentials.h"
#include "http_reply.h"
#include "srv.h"

#include "../gateway/cursor.h"
#include "../gateway/log.h"
#include "../gateway/session.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct pss__rg_sse {
	struct rg_http_reply reply; /* an error answered instead of a stream */
	struct rg_session session;
	struct rg_wake wake;
	int streaming;
	int greeted; /* retry: sent */
	int keepalive_due;
	int closing;                  /* the last write went out; close on the next writeable */
	struct rg_conn_timer *expiry; /* NULL unless its token expires */
};

/* Sets the refusal and returns -1. */
static int rg__refused(enum rg_err *err, const char **why, enum rg_err e, const char *w)
{
	*err = e;
	*why = w;
	return -1;
}

/* Refuses a stream's rooms past limits.max_rooms_per_connection (logged): -1. */
static int rg__too_many(struct rg_session *s, enum rg_err *err, const char **why)
{
	rg_session_log_limit(s, RG_LIMIT_ROOMS, "limits.max_rooms_per_connection",
			     RG_E_LIMIT_EXCEEDED);
	return rg__refused(err, why, RG_E_LIMIT_EXCEEDED, rg_why_too_many_rooms);
}

/* The stream's token expired: an `expired` event, and the stream ends. EventSource
 * would reconnect with the same URL and token: the page opens a new stream with a new
 * token instead (web/roomgate.js). */
static void rg__expiry(struct lws *wsi)
{
	struct pss__rg_sse *pss = lws_wsi_user(wsi);
	int64_t deadline = rg_session_deadline(&pss->session);

	if (rg_unix_s() < deadline) { /* a timer a little early: whole seconds */
		rg_conn_timer_at(&pss->expiry, wsi, deadline, rg__expiry);
		return;
	}
	rg_log_conn(RG_LOG_INFO, pss->session.conn, "sse: ending a stream: its token expired");
	if (rg_session_expire(&pss->session))
		pss->closing = 1;
	rg_session_end(&pss->session);
}

/* The request's credentials, made the session's identity: 0, or -1 with *err, *why. */
static int rg__authenticate(struct rg_srv *srv, struct lws *wsi, struct pss__rg_sse *pss,
			    enum rg_err *err, const char **why)
{
	struct rg_identity id;
	int c = rg_credentials(srv, wsi, 1, &id, why);

	if (c < 0)
		return rg__refused(err, why, RG_E_UNAUTHORIZED, *why);
	if (c > 0 && rg_session_authenticate(&pss->session, &id)) {
		rg_identity_clear(&id);
		return rg__refused(err, why, RG_E_INTERNAL, rg_why_nomem);
	}
	return 0;
}

/* The i-th room= argument: 1 and its value in arg (NUL-terminated, *len bytes), 0 when
 * the argument is another one, -1 when it is not a valid room name. */
static int rg__room_arg(struct lws *wsi, int i, char *arg, size_t cap, size_t *len)
{
	int n = lws_hdr_copy_fragment(wsi, arg, (int)cap, WSI_TOKEN_HTTP_URI_ARGS, i);

	if (n < 0)
		return -1; /* longer than any room= argument can be */
	if (n < 5 || strncmp(arg, "room=", 5))
		return 0;
	*len = (size_t)n - 5;
	memmove(arg, arg + 5, *len + 1);
	/* lws decodes %00 into the value: a NUL inside means garbage */
	return strlen(arg) == *len && rg_room_name_valid(arg, *len) ? 1 : -1;
}

/* The stream's Last-Event-ID: the header EventSource sends when it reconnects, or the
 * last_event_id query argument. Its length in out, 0 when there is none, -1 when it
 * is longer than any id this gateway writes. */
static int rg__last_event_id(struct lws *wsi, char *out, size_t cap)
{
	static const char hdr[] = "last-event-id:", arg[] = "last_event_id=";
	int n = lws_hdr_custom_length(wsi, hdr, (int)sizeof(hdr) - 1);

	if (n > 0)
		return (size_t)n < cap
			       ? lws_hdr_custom_copy(wsi, out, (int)cap, hdr, (int)sizeof(hdr) - 1)
			       : -1;
	for (int i = 0; lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0; i++) {
		n = lws_hdr_copy_fragment(wsi, out, (int)cap, WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n < 0 && lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 14)
			return -1;
		if (n >= (int)sizeof(arg) - 1 && !strncmp(out, arg, sizeof(arg) - 1)) {
			memmove(out, out + sizeof(arg) - 1, (size_t)n - sizeof(arg) + 2);
			return n - (int)sizeof(arg) + 1;
		}
	}
	return 0;
}

/* The name= argument, the stream's presence name, into name: 0 (or none: name is ""),
 * or -1 with *err and *why set. */
static int rg__name_arg(struct lws *wsi, char name[RG_NAME_MAX + 1], enum rg_err *err,
			const char **why)
{
	char arg[RG_HEADER_BYTES_MAX]; /* any argument fits: limits.max_header_bytes */
	int n;

	name[0] = '\0';
	for (int i = 0; lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0; i++) {
		n = lws_hdr_copy_fragment(wsi, arg, (int)sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n < 5 || strncmp(arg, "name=", 5))
			continue;
		/* lws decodes %00 into the value: a NUL inside is no name */
		if (!rg_token_valid(arg + 5, (size_t)n - 5, RG_NAME_MAX) ||
		    strlen(arg + 5) != (size_t)n - 5)
			return rg__refused(err, why, RG_E_BAD_REQUEST, rg_why_name);
		memcpy(name, arg + 5, (size_t)n - 4);
	}
	return 0;
}

/* Joins every room= argument of the URL, live and quiet, each once, as name (or NULL:
 * the connection's id) in presence rooms. 0, or -1 with *err and *why set. */
static int rg__join_url_rooms(struct rg_srv *srv, struct lws *wsi, struct rg_session *s,
			      const char *name, enum rg_err *err, const char **why)
{
	static char arg[RG_HEADER_BYTES_MAX]; /* any argument fits: limits.max_header_bytes */
	size_t len;
	int r;

	for (int i = 0; lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0; i++) {
		struct rg_join j = {.since = -1, .quiet = 1, .name = name};
		if (!(r = rg__room_arg(wsi, i, arg, sizeof(arg), &len)))
			continue;
		if (r < 0)
			return rg__refused(err, why, RG_E_BAD_REQUEST, rg_why_room_name);
		if (rg_session_joined(s, arg, len))
			return rg__refused(err, why, RG_E_BAD_REQUEST, "room: the same room twice");
		if (s->nsubs >= srv->cfg->max_rooms_per_connection)
			return rg__too_many(s, err, why);
		j.room = arg;
		j.len = len;
		if (rg_session_join(s, &j))
			return rg__refused(err, why, j.err, j.why);
	}
	if (!s->nsubs)
		return rg__refused(err, why, RG_E_BAD_REQUEST,
				   "room: expected at least one room=NAME argument");
	return 0;
}

/* Moves each room a Last-Event-ID cursor names to it (joining, quietly, a room the URL
 * lacks: one added to the stream later), with gap notices where the ring no longer
 * reaches back, and reset notices where the cursor is of another epoch (a restart) or
 * past the room's last seq. A cursor for a room the config no longer has is dropped:
 * there is nothing to resume. url_rooms: how many rooms the URL named. 0, or -1 with
 * *err and *why set. */
static int rg__resume(struct rg_srv *srv, struct rg_session *s, const struct rg_cursor *cursors,
		      int nc, const char *epoch, const char *name, unsigned url_rooms,
		      enum rg_err *err, const char **why)
{
	for (int c = 0; c < nc; c++) {
		struct rg_join j = {
			.since = (int64_t)cursors[c].seq, .quiet = 1, .epoch = epoch, .name = name};
		if (cursors[c].room[0])
			j.room = cursors[c].room;
		else if (url_rooms == 1) /* a bare SEQ belongs to a one-room stream */
			j.room = s->subs->sub.room->name;
		else
			return rg__refused(err, why, RG_E_BAD_REQUEST,
					   "Last-Event-ID: a bare SEQ fits only a one-room stream");
		j.len = strlen(j.room);
		if (!rg_registry_conf_for(&srv->reg, j.room, j.len))
			continue;
		if (!rg_session_joined(s, j.room, j.len) &&
		    s->nsubs >= srv->cfg->max_rooms_per_connection)
			return rg__too_many(s, err, why);
		if (rg_session_join(s, &j))
			return rg__refused(err, why, j.err, j.why);
		if (j.reset && rg_session_reset(s, j.ss->sub.room))
			return rg__refused(err, why, RG_E_INTERNAL, rg_why_nomem);
		if (j.gap_from && rg_session_gap(s, j.ss->sub.room, j.gap_from, j.gap_to))
			return rg__refused(err, why, RG_E_INTERNAL, rg_why_nomem);
	}
	return 0;
}

/* The stream's rooms: the URL's, then where the Last-Event-ID resumes them. The joins
 * are quiet: presence members hear of them only when the stream starts
 * (rg_session_announce), and a refused request, cleaned up by the caller, leaves
 * nothing behind. Linear in the rooms. 0, or -1 with *err and *why set. */
static int rg__subscribe(struct rg_srv *srv, struct lws *wsi, struct pss__rg_sse *pss,
			 enum rg_err *err, const char **why)
{
	static char id[32 + 150 * 1024];
	static struct rg_cursor cursors[1024];
	char epoch[RG_EPOCH_MAX + 1], name[RG_NAME_MAX + 1];
	unsigned max = srv->cfg->max_rooms_per_connection;
	int nc = 0, idlen = rg__last_event_id(wsi, id, sizeof(id));

	if (idlen < 0 ||
	    (idlen > 0 && (nc = rg_cursor_parse(id, (size_t)idlen, cursors, (int)max, epoch)) < 0))
		return rg__refused(
			err, why, RG_E_BAD_REQUEST,
			"Last-Event-ID: expected EPOCH/SEQ or EPOCH/ROOM=SEQ,... as this "
			"gateway sends");
	if (rg__name_arg(wsi, name, err, why) ||
	    rg__join_url_rooms(srv, wsi, &pss->session, name[0] ? name : NULL, err, why))
		return -1;
	return rg__resume(srv, &pss->session, cursors, nc, idlen > 0 ? epoch : NULL,
			  name[0] ? name : NULL, pss->session.nsubs, err, why);
}

/* An HTTP/1.1 stream has no ping: the keepalive comment is its liveness check, but
 * a write to a peer that vanished without a FIN or RST (a black-holed network, a
 * sleeping laptop) is retransmitted for many minutes before TCP gives up. Bounding
 * how long written data may stay unacknowledged ends such a stream within
 * sse.keepalive_seconds + ws.ping_timeout_seconds, as pings end a WebSocket. HTTP/2
 * connections are pinged by lws (retry_and_idle_policy). */
static void rg__liveness(struct rg_srv *srv, struct lws *wsi)
{
	unsigned ms = srv->cfg->ws_ping_timeout_seconds * 1000;
	int fd = lws_get_socket_fd(wsi);

	if (lws_get_network_wsi(wsi) == wsi && fd >= 0 &&
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)))
		rg_log_conn(RG_LOG_WARN, rg_conn_id(wsi), "sse: TCP_USER_TIMEOUT: %s",
			    strerror(errno));
}

static int rg__start(struct rg_srv *srv, struct lws *wsi, struct pss__rg_sse *pss, const char *rest)
{
	unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
					  *end = hdr + sizeof(hdr) - 1;
	char *uri;
	int ulen;
	enum rg_err err;
	const char *why;

	int meth = lws_http_get_uri_and_method(wsi, &uri, &ulen);

	if (rest && *rest && strcmp(rest, "/"))
		return rg_http_reply_error(wsi, &pss->reply, RG_E_NOT_FOUND, "no such path", NULL);
	int origin = rg_http_origin(wsi, srv->cfg);
	if (origin < 0) {
		pss->reply.close_after = meth != LWSHUMETH_GET;
		return rg_http_reply_error(wsi, &pss->reply, RG_E_FORBIDDEN, rg_why_origin, NULL);
	}
	pss->reply.cors = origin > 0;
	if (rg_http_is_options(wsi))
		return rg_http_preflight(wsi, &pss->reply, "GET");
	if (meth != LWSHUMETH_GET) {
		pss->reply.close_after = 1; /* a body may follow, unread */
		return rg_http_reply_error(wsi, &pss->reply, RG_E_METHOD_NOT_ALLOWED,
					   "/events takes GET", "GET");
	}
	/* a stream holds rooms and their messages: none is opened past the budget */
	if (rg_registry_overloaded(&srv->reg, NULL)) {
		rg_limit_log(srv->reg.metrics.refusals, rg_conn_peer(wsi), NULL, RG_LIMIT_MEMORY,
			     rg_conn_id(wsi), "limits.memory_mb", rg_err_code(RG_E_OVERLOADED));
		return rg_http_reply_error(wsi, &pss->reply, RG_E_OVERLOADED, rg_why_overloaded,
					   NULL);
	}
	rg_wake_init(&pss->wake, srv, wsi);
	rg_session_init(&pss->session, &srv->reg, RG_FMT_SSE, rg_wake, &pss->wake);
	pss->session.doom = rg_wake_doom;
	/* the connection's address (rg_srv_conn_admit): the rooms it may make */
	pss->session.peer = rg_conn_peer(wsi);
	pss->session.conn = rg_conn_id(wsi);
	/* the stream event comes first: the page needs the id to add and drop rooms */
	if (rg__authenticate(srv, wsi, pss, &err, &why) ||
	    rg__subscribe(srv, wsi, pss, &err, &why) ||
	    (rg_session_publish_token(&pss->session) &&
	     rg__refused(&err, &why, RG_E_INTERNAL, "no stream id"))) {
		rg_wake_cancel(&pss->wake);
		rg_session_cleanup(&pss->session);
		return rg_http_reply_error(wsi, &pss->reply, err, why, NULL);
	}
	if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/event-stream",
					LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-cache", 8, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"x-accel-buffering:",
					(const unsigned char *)"no", 2, &p, end) ||
	    (pss->reply.cors && rg_http_cors_headers(wsi, &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end)) {
		rg_wake_cancel(&pss->wake);
		rg_session_cleanup(&pss->session);
		return -1;
	}
	int64_t deadline = rg_session_deadline(&pss->session);
	if (deadline && rg_conn_timer_at(&pss->expiry, wsi, deadline, rg__expiry)) {
		rg_wake_cancel(&pss->wake);
		rg_session_cleanup(&pss->session);
		return -1;
	}
	pss->streaming = 1;
	free(pss->reply.path); /* a stream's access line names its mount */
	pss->reply.path = NULL;
	srv->streams++;
	srv->reg.metrics.opened[RG_TR_SSE][pss->reply.meter.tls][pss->reply.meter.h2]++;
	srv->reg.metrics.open[RG_TR_SSE]++;
	rg_session_announce(&pss->session);
	/* Drops the request headers and makes the stream immune to lws's idle
	 * timeouts (on HTTP/2 the whole connection); must happen exactly once. */
	lws_http_mark_sse(wsi);
	rg__liveness(srv, wsi);
	lws_set_timer_usecs(wsi, (lws_usec_t)srv->cfg->sse_keepalive_seconds * LWS_US_PER_SEC);
	lws_callback_on_writable(wsi);
	return 0;
}

static int rg__writeable(struct rg_srv *srv, struct lws *wsi, struct pss__rg_sse *pss)
{
	char *buf = (char *)srv->scratch + LWS_PRE;
	size_t cap = srv->scratch_len, n = 0, len;
	int flags;

	if (srv->stopping || pss->closing)
		return -1;
	if (!pss->greeted) {
		n = (size_t)snprintf(buf, cap, "retry: %u\n\n", srv->cfg->sse_retry_ms);
		pss->greeted = 1;
	}
	/* HTTP/2 flow control: send no more than the peer's window, unless it is
	 * smaller than one event (lws then holds the rest). */
	lws_fileofs_t allow = lws_get_peer_write_allowance(wsi);
	size_t need = rg_session_max_item(srv->cfg) + n;
	if (allow >= 0 && (size_t)allow >= need && (size_t)allow < cap)
		cap = (size_t)allow;

	flags = rg_session_fill(&pss->session, (unsigned char *)buf + n, cap - n, 0, &len);
	if (flags < 0) {
		rg_log_conn(RG_LOG_ERR, pss->session.conn, "sse: cannot compose a write (%d)",
			    flags);
		return -1;
	}
	n += len;
	if (flags & RG_FILL_LAGGED) {
		rg_log_conn(RG_LOG_INFO, pss->session.conn, "sse: ending a stream: lagged (%s)",
			    pss->session.lagged[0] ? pss->session.lagged : rg_why_unread);
		pss->closing = 1;
	}
	if (flags & RG_FILL_END)
		pss->closing = 1;
	if (!n && pss->keepalive_due) {
		memcpy(buf, ": keepalive\n\n", 13);
		n = 13;
	}
	pss->keepalive_due = 0;
	srv->reg.metrics.bytes_out[RG_FMT_SSE] += n;
	if (n)
		rg_hist_observe(&srv->reg.metrics.write_bytes, rg_write_bounds, RG_WRITE_BUCKETS,
				n);
	pss->reply.meter.out += n;
	if (n && lws_write(wsi, (unsigned char *)buf, n, LWS_WRITE_HTTP) < 0)
		return -1;
	if ((flags & RG_FILL_MORE) || pss->closing)
		lws_callback_on_writable(wsi);
	return 0;
}

static int rg__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len)
{
	struct pss__rg_sse *pss = user;
	struct rg_srv *srv = rg_srv_of(wsi);
	int ret;

	if (rg_srv_lifecycle(wsi, reason, in, &ret))
		return ret;
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return 1; /* only the chat protocol upgrades to WebSocket, on its path */

	case LWS_CALLBACK_HTTP_BODY:
		return 0; /* a refused request's body: read and dropped */

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return rg_http_reply_service(wsi, reason, &pss->reply, &ret) ? ret : 0;

	case LWS_CALLBACK_HTTP:
		if (srv->stopping)
			return -1;
		rg_http_reply_begin(wsi, &pss->reply, "sse");
		return rg__start(srv, wsi, pss, in);

	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (rg_http_reply_writable(wsi, &pss->reply, &ret))
			return ret;
		if (!pss->streaming)
			return 0;
		return rg__writeable(srv, wsi, pss);

	case LWS_CALLBACK_TIMER:
		if (!pss->streaming)
			return 0;
		pss->keepalive_due = 1;
		lws_callback_on_writable(wsi);
		lws_set_timer_usecs(wsi,
				    (lws_usec_t)srv->cfg->sse_keepalive_seconds * LWS_US_PER_SEC);
		return 0;

	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (pss && pss->streaming) {
			rg_access_log(wsi, &pss->reply.meter, "sse", "GET", "/events", 200, 0,
				      &pss->session);
			rg_conn_timer_free(&pss->expiry);
			lws_set_timer_usecs(wsi, LWS_SET_TIMER_USEC_CANCEL);
			rg_wake_cancel(&pss->wake);
			rg_session_cleanup(&pss->session);
			pss->streaming = 0;
			srv->streams--;
			srv->reg.metrics.open[RG_TR_SSE]--;
		}
		if (pss)
			rg_http_reply_clear(&pss->reply);
		return 0;

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols rg_sse_protocol = {
	.name = "rg-sse",
	.callback = rg__callback,
	.per_session_data_size = sizeof(struct pss__rg_sse),
};
