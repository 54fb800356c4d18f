#include "admin_api.h"

#include "credentials.h"
#include "http_reply.h"
#include "srv.h"

#include "../gateway/admin.h"
#include "../gateway/log.h"
#include "../gateway/session.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pss__rg_admin {
	struct rg_http_reply reply;
};

/* 1 when the request has a body: it is not read (the answer closes an HTTP/1.1
 * connection, where the next request would start inside it). */
static int rg__has_body(struct lws *wsi)
{
	return lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 ||
	       lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
}

static int rg__refuse(struct lws *wsi, struct pss__rg_admin *pss, enum rg_err err, const char *why,
		      const char *allow)
{
	pss->reply.close_after = rg__has_body(wsi);
	return rg_http_reply_error(wsi, &pss->reply, err, why, allow);
}

/* Answers 200 with text (taken), or 500 when it is NULL (out of memory). */
static int rg__answer(struct lws *wsi, struct pss__rg_admin *pss, char *text)
{
	if (!text)
		return rg__refuse(wsi, pss, RG_E_INTERNAL, rg_why_nomem, NULL);
	pss->reply.close_after = rg__has_body(wsi);
	int rc = rg_http_reply_json(wsi, &pss->reply, HTTP_STATUS_OK, text, strlen(text), NULL);
	free(text);
	return rc;
}

/* o (taken) as compact JSON text, or NULL. */
static char *rg__text(json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(o);
	return text;
}

static int rg__method(struct lws *wsi, struct pss__rg_admin *pss, int meth, int want,
		      const char *path)
{
	static const char *const names[] = {
		[LWSHUMETH_GET] = "GET", [LWSHUMETH_POST] = "POST", [LWSHUMETH_DELETE] = "DELETE"};
	char why[96];

	if (meth == want)
		return 0;
	snprintf(why, sizeof(why), "%s takes %s", path, names[want]);
	rg__refuse(wsi, pss, RG_E_METHOD_NOT_ALLOWED, why, names[want]);
	return 1;
}

/* /admin/rooms[/{room}[/close | /messages]]: rest is what follows /admin/rooms. */
static int rg__rooms(struct rg_srv *srv, struct lws *wsi, struct pss__rg_admin *pss,
		     const char *rest, int meth)
{
	uint64_t conn = rg_conn_id(wsi);
	struct rg_room *room;
	const char *why;

	if (!*rest || !strcmp(rest, "/"))
		return rg__method(wsi, pss, meth, LWSHUMETH_GET, "/admin/rooms")
			       ? 0
			       : rg__answer(wsi, pss, rg_admin_rooms(&srv->reg));
	const char *name = rest + 1, *tail = strchr(name, '/');
	size_t nlen = tail ? (size_t)(tail - name) : strlen(name);
	int rc = rg_room_name_valid(name, nlen) ? rg_registry_get(&srv->reg, name, nlen, 0, &room)
						: -EINVAL;
	if (rc) {
		enum rg_err err = rg_err_room(rc, &why);
		return rg__refuse(wsi, pss, err, why, NULL);
	}
	if (!tail)
		return rg__method(wsi, pss, meth, LWSHUMETH_GET, "/admin/rooms/{room}")
			       ? 0
			       : rg__answer(wsi, pss, rg_admin_room(room));

	char copy[RG_ROOM_NAME_MAX + 1];
	snprintf(copy, sizeof(copy), "%s", room->name); /* a closed room may go */
	if (!strcmp(tail, "/close")) {
		if (rg__method(wsi, pss, meth, LWSHUMETH_POST, "/admin/rooms/{room}/close"))
			return 0;
		uint32_t dropped = room->count;
		unsigned n = rg_registry_close_room(&srv->reg, room);
		rg_log_conn(RG_LOG_NOTICE, conn,
			    "admin: closed room %s: %u member(s) told room_closed, %" PRIu32
			    " message(s) dropped",
			    copy, n, dropped);
		return rg__answer(
			wsi, pss,
			rg__text(json_pack("{s:s, s:I, s:I}", "room", copy, "members",
					   (json_int_t)n, "dropped", (json_int_t)dropped)));
	}
	if (!strcmp(tail, "/messages")) {
		if (rg__method(wsi, pss, meth, LWSHUMETH_DELETE, "/admin/rooms/{room}/messages"))
			return 0;
		uint32_t dropped = rg_room_drop_history(room);
		rg_log_conn(RG_LOG_NOTICE, conn,
			    "admin: dropped the history of room %s: %" PRIu32 " message(s)", copy,
			    dropped);
		return rg__answer(wsi, pss,
				  rg__text(json_pack("{s:s, s:I}", "room", copy, "dropped",
						     (json_int_t)dropped)));
	}
	return rg__refuse(wsi, pss, RG_E_NOT_FOUND, "no such path", NULL);
}

/* /admin/connections/{id}/close and /admin/users/{sub}/close: rest is {id}/close or
 * {sub}/close; users: 1 for the latter. */
static int rg__close(struct rg_srv *srv, struct lws *wsi, struct pss__rg_admin *pss,
		     const char *rest, int meth, int users)
{
	size_t len = strlen(rest);
	char who[RG_NAME_MAX + 1];
	uint64_t id = 0;
	unsigned n;

	if (len < 7 || strcmp(rest + len - 6, "/close") || len - 6 > RG_NAME_MAX)
		return rg__refuse(wsi, pss, RG_E_NOT_FOUND, "no such path", NULL);
	if (rg__method(wsi, pss, meth, LWSHUMETH_POST,
		       users ? "/admin/users/{sub}/close" : "/admin/connections/{id}/close"))
		return 0;
	memcpy(who, rest, len - 6);
	who[len - 6] = '\0';
	if (!users) {
		char *end;
		unsigned long long v = strtoull(who, &end, 10);
		if (*end || !who[0] || who[0] == '-' || !v)
			return rg__refuse(wsi, pss, RG_E_NOT_FOUND,
					  "a connection id is a number > 0 (log lines: [conn N])",
					  NULL);
		id = v;
	}
	n = rg_registry_kick(&srv->reg, id, users ? who : NULL);
	if (!users && !n)
		return rg__refuse(wsi, pss, RG_E_NOT_FOUND,
				  "no WebSocket or SSE stream open on that connection", NULL);
	rg_log_conn(RG_LOG_NOTICE, rg_conn_id(wsi), "admin: closed %u stream(s) of %s %s", n,
		    users ? "user" : "connection", who);
	return rg__answer(wsi, pss, rg__text(json_pack("{s:I}", "closed", (json_int_t)n)));
}

/* Routes a request: backends only. */
static int rg__route(struct rg_srv *srv, struct lws *wsi, struct pss__rg_admin *pss)
{
	char *uri;
	int ulen, meth = lws_http_get_uri_and_method(wsi, &uri, &ulen);
	struct rg_identity id;
	const char *why;

	srv->reg.metrics.opened[RG_TR_HTTP][pss->reply.meter.tls][pss->reply.meter.h2]++;
	if (meth < 0)
		return rg__refuse(wsi, pss, RG_E_NOT_FOUND, "no such path", NULL);
	if (rg_http_origin(wsi, srv->cfg))
		/* no page, even on an allowed origin, gives orders to the gateway */
		return rg__refuse(wsi, pss, RG_E_FORBIDDEN, rg_why_origin, NULL);
	if (rg_credentials_caller(srv, wsi, &id, &why))
		return rg__refuse(wsi, pss, RG_E_UNAUTHORIZED, why, NULL);
	int server = id.server, authenticated = id.authenticated;
	rg_identity_clear(&id);
	if (!server)
		return rg__refuse(wsi, pss, authenticated ? RG_E_FORBIDDEN : RG_E_UNAUTHORIZED,
				  "the admin API is for backends: an API key or an admin token",
				  NULL);
	if (!strncmp(uri, "/admin/rooms", 12) && (!uri[12] || uri[12] == '/'))
		return rg__rooms(srv, wsi, pss, uri + 12, meth);
	if (!strncmp(uri, "/admin/connections/", 19))
		return rg__close(srv, wsi, pss, uri + 19, meth, 0);
	if (!strncmp(uri, "/admin/users/", 13))
		return rg__close(srv, wsi, pss, uri + 13, meth, 1);
	return rg__refuse(wsi, pss, RG_E_NOT_FOUND, "no such path", NULL);
}

static int rg__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len)
{
	struct pss__rg_admin *pss = user;
	struct rg_srv *srv = rg_srv_of(wsi);
	int ret;

	if (rg_srv_lifecycle(wsi, reason, in, &ret))
		return ret;
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return 1; /* only the chat protocol upgrades to WebSocket, on its path */

	case LWS_CALLBACK_HTTP:
		if (srv->stopping)
			return -1;
		rg_http_reply_begin(wsi, &pss->reply, "http");
		return rg__route(srv, wsi, pss) ? -1 : 0;

	case LWS_CALLBACK_HTTP_BODY:
		return 0; /* orders have no body: it is dropped */

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return rg_http_reply_service(wsi, reason, &pss->reply, &ret) ? ret : 0;

	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (pss)
			rg_http_reply_clear(&pss->reply);
		return 0;

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols rg_admin_api_protocol = {
	.name = "rg-admin",
	.callback = rg__callback,
	.per_session_data_size = sizeof(struct pss__rg_admin),
};
