#include "http_api.h"

#include "credentials.h"
#include "http_reply.h"
#include "srv.h"

#include "../gateway/batch.h"
#include "../gateway/cursor.h"
#include "../gateway/history.h"
#include "../gateway/json_text.h"
#include "../gateway/request.h"
#include "../gateway/session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rg__wait;

struct pss__rg_api {
	struct rg_http_reply reply;
	/* The publish target while its body arrives, by name: a pattern room may be
	 * swept meanwhile, and is then made anew. */
	char room[RG_ROOM_NAME_MAX + 1];
	size_t room_len;
	char key[RG_ID_MAX + 1]; /* Idempotency-Key, "" when none */
	char stream[33];         /* POST /streams/{id}/rooms: the stream, while its body arrives */
	char *body;
	size_t body_len;
	int refused;               /* answered already; ignore the rest of the body */
	int batch;                 /* POST /messages: its body is a batch, published by caller */
	struct rg_identity caller; /* of a batch, while its body arrives */
	struct rg__wait *wait;     /* publishes the engine has yet to answer, or NULL */
};

static int rg__refuse(struct lws *wsi, struct pss__rg_api *pss, enum rg_err err, const char *why,
		      const char *allow, int body_unread)
{
	pss->refused = 1;
	pss->reply.close_after = body_unread;
	return rg_http_reply_error(wsi, &pss->reply, err, why, allow);
}

/* A refusal by a limit (key, its config key): logged (limits.h), then answered. */
static int rg__refuse_limit(struct lws *wsi, struct pss__rg_api *pss, enum rg_limit k,
			    const char *key, enum rg_err err, const char *why, int body_unread)
{
	struct rg_srv *srv = rg_srv_of(wsi);

	struct rg_conn *c = rg_conn_of(wsi);

	rg_limit_log(srv ? srv->reg.metrics.refusals : NULL, c ? c->peer : NULL, NULL, k,
		     c ? c->id : 0, key, rg_err_code(err));
	return rg__refuse(wsi, pss, err, why, NULL, body_unread);
}

/* A failed room lookup (rg_registry_get's return), answered as every transport does. */
static int rg__refuse_room(struct lws *wsi, struct pss__rg_api *pss, int rc, int body_unread)
{
	const char *why;
	enum rg_err err = rg_err_room(rc, &why);

	if (rc == -ENOBUFS)
		return rg__refuse_limit(wsi, pss, RG_LIMIT_MEMORY, "limits.memory_mb", err, why,
					body_unread);
	return rg__refuse(wsi, pss, err, why, NULL, body_unread);
}

/* May id do act in the room called name (nlen bytes)? 0, or 1 with the refusal
 * answered (unknown_room, unauthorized without credentials where the gateway takes them,
 * or forbidden) and the callback's return value in *ret. */
static int rg__may(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss,
		   const struct rg_identity *id, enum rg_action act, const char *name, size_t nlen,
		   int body_unread, int *ret)
{
	const struct rg_room_conf *rc = rg_registry_conf_for(&srv->reg, name, nlen);
	char room[RG_ROOM_NAME_MAX + 1];
	const char *why;

	if (!rc) {
		*ret = rg__refuse_room(wsi, pss, rg_room_name_valid(name, nlen) ? -ENOENT : -EINVAL,
				       body_unread);
		return 1;
	}
	memcpy(room, name, nlen);
	room[nlen] = '\0';
	if (rg_auth_room_allows(id, act, rc, room, &why))
		return 0;
	*ret = rg__refuse(wsi, pss,
			  id->authenticated || !srv->cfg->auth ? RG_E_FORBIDDEN : RG_E_UNAUTHORIZED,
			  why, NULL, body_unread);
	return 1;
}

static int rg__rooms(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss,
		     const struct rg_identity *id)
{
	char *text = rg_registry_describe(&srv->reg, id);
	if (!text)
		return rg__refuse(wsi, pss, RG_E_INTERNAL, rg_why_nomem, NULL, 0);
	int rc = rg_http_reply_json(wsi, &pss->reply, HTTP_STATUS_OK, text, strlen(text), NULL);
	free(text);
	return rc;
}

/* A query argument that must be a count: 1 and *out, 0 when absent, -1 when invalid. */
static int rg__count_arg(struct lws *wsi, const char *name, uint64_t max, int64_t *out)
{
	char arg[48];
	size_t nl = strlen(name);

	for (int i = 0; lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0; i++) {
		int n = lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n < 0 || strncmp(arg, name, nl) || arg[nl] != '=')
			continue;
		uint64_t v;
		if (rg_count_parse(arg + nl + 1, (size_t)n - nl - 1, max, &v))
			return -1;
		*out = (int64_t)v;
		return 1;
	}
	return 0;
}

/* The epoch= query argument into epoch (NUL-terminated): 1, 0 when there is none (epoch
 * is ""), -1 when it is not an epoch. */
static int rg__epoch_arg(struct lws *wsi, char epoch[RG_EPOCH_MAX + 1])
{
	char arg[RG_HEADER_BYTES_MAX]; /* any argument fits: limits.max_header_bytes */

	epoch[0] = '\0';
	for (int i = 0; lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0; i++) {
		int n = lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n < 6 || strncmp(arg, "epoch=", 6))
			continue;
		if (!rg_epoch_valid(arg + 6, (size_t)n - 6))
			return -1;
		memcpy(epoch, arg + 6, (size_t)n - 5);
		return 1;
	}
	return 0;
}

/* GET /rooms/{room}/messages?since=N&limit=K&epoch=E */
static int rg__history(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss,
		       const struct rg_identity *id, const char *name, size_t nlen)
{
	static const struct rg_room_conf none = {.history = 1};
	struct rg_room *room, empty = {.conf = &none};
	char room_name[RG_ROOM_NAME_MAX + 1], epoch[RG_EPOCH_MAX + 1], prefix[64];
	int64_t since = -1, limit = 100;
	size_t len;
	int rc = rg_registry_get(&srv->reg, name, nlen, 0, &room);

	/* a pattern room that is not alive is answered below, empty */
	if (rc && (rc != -ENOENT || !rg_registry_conf_for(&srv->reg, name, nlen)))
		return rg__refuse_room(wsi, pss, rc, 0);
	if (rg__may(srv, wsi, pss, id, RG_ACT_HISTORY, name, nlen, 0, &rc))
		return rc;
	if (rg__count_arg(wsi, "since", INT64_MAX, &since) < 0)
		return rg__refuse(wsi, pss, RG_E_BAD_REQUEST, rg_why_since, NULL, 0);
	if (rg__count_arg(wsi, "limit", RG_HISTORY_LIMIT_MAX, &limit) < 0 || !limit)
		return rg__refuse(wsi, pss, RG_E_BAD_REQUEST, rg_why_limit, NULL, 0);
	int e = rg__epoch_arg(wsi, epoch);
	if (e < 0)
		return rg__refuse(wsi, pss, RG_E_BAD_REQUEST, rg_why_epoch, NULL, 0);
	if (rc == -ENOENT) { /* a pattern room that is not alive: empty, and not made */
		empty.name = room_name;
		memcpy(room_name, name, nlen);
		room_name[nlen] = '\0';
		room = &empty;
	}
	if (rg_registry_cursor_unknown(&srv->reg, room, since, epoch))
		return rg__refuse(wsi, pss, RG_E_UNAVAILABLE, rg_why_catching_up, NULL, 0);
	/* a cursor of another epoch, or past the end: the room from its start, said so */
	int reset = rg_registry_cursor_stale(&srv->reg, room, since, epoch);
	snprintf(prefix, sizeof(prefix), "\"epoch\":\"%s\",%s", srv->reg.epoch,
		 reset ? "\"reset\":true," : "");
	char *text = rg_history_json(room, reset ? 0 : since, (unsigned)limit,
				     srv->cfg->max_message_bytes, prefix, &len);
	if (!text)
		return rg__refuse(wsi, pss, RG_E_INTERNAL, rg_why_nomem, NULL, 0);
	rc = rg_http_reply_json(wsi, &pss->reply, HTTP_STATUS_OK, text, len, NULL);
	free(text);
	return rc;
}

/* GET /rooms/{room}/presence */
static int rg__presence(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss,
			const struct rg_identity *id, const char *name, size_t nlen)
{
	const struct rg_room_conf *rc = rg_registry_conf_for(&srv->reg, name, nlen);
	char *users, *out;

	if (!rg_room_name_valid(name, nlen))
		return rg__refuse_room(wsi, pss, -EINVAL, 0);
	if (!rc)
		return rg__refuse_room(wsi, pss, -ENOENT, 0);
	if (!rc->presence)
		return rg__refuse(wsi, pss, RG_E_NO_PRESENCE, rg_why_no_presence, NULL, 0);
	int ret;
	if (rg__may(srv, wsi, pss, id, RG_ACT_PRESENCE, name, nlen, 0, &ret))
		return ret;
	users = rg_presence_json(&srv->reg, name, nlen);
	if (!users)
		return rg__refuse(wsi, pss, RG_E_INTERNAL, rg_why_nomem, NULL, 0);
	size_t cap = 64 + nlen + strlen(users);
	if (!(out = malloc(cap))) {
		free(users);
		return rg__refuse(wsi, pss, RG_E_INTERNAL, rg_why_nomem, NULL, 0);
	}
	int n = snprintf(out, cap, "{\"room\":\"%.*s\",\"users\":%s}", (int)nlen, name, users);
	int r = rg_http_reply_json(wsi, &pss->reply, HTTP_STATUS_OK, out, (size_t)n, NULL);
	free(out);
	free(users);
	return r;
}

/* The largest body the request may have: a message, or a batch of them. */
static size_t rg__body_max(const struct rg_srv *srv, const struct pss__rg_api *pss)
{
	return pss->batch ? srv->cfg->max_batch_bytes : srv->cfg->max_message_bytes;
}

static int rg__refuse_too_large(struct lws *wsi, struct pss__rg_api *pss)
{
	if (pss->batch)
		return rg__refuse_limit(wsi, pss, RG_LIMIT_MESSAGE_SIZE, "limits.max_batch_bytes",
					RG_E_TOO_LARGE, "the body exceeds limits.max_batch_bytes",
					1);
	return rg__refuse_limit(wsi, pss, RG_LIMIT_MESSAGE_SIZE, "limits.max_message_bytes",
				RG_E_TOO_LARGE, rg_why_body_too_large, 1);
}

/* A request with a JSON body, headers arrived: 0 when its body may follow. */
static int rg__body_start(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss)
{
	char type[128], clen[24];

	rg_http_media_type(wsi, type, sizeof(type));
	if (strcmp(type, "application/json") && strcmp(type, "application/x-www-form-urlencoded"))
		return rg__refuse(wsi, pss, RG_E_UNSUPPORTED_MEDIA_TYPE,
				  "Content-Type: expected application/json", NULL, 1);
	/* lws 4.1.6 reads a request body only by its Content-Length: a chunked
	 * HTTP/1.1 body, or an HTTP/2 body without the header, would never arrive.
	 * Say so (RFC 9110 411) instead of waiting. */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 &&
	    (lws_get_network_wsi(wsi) != wsi ||
	     lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0))
		return rg__refuse(wsi, pss, RG_E_LENGTH_REQUIRED,
				  "send the body with a Content-Length header", NULL, 1);
	if (lws_hdr_copy(wsi, clen, sizeof(clen), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
	    strtoull(clen, NULL, 10) > rg__body_max(srv, pss))
		return rg__refuse_too_large(wsi, pss);
	return 0;
}

/* The publish's idempotency key, from the Idempotency-Key header or, because lws
 * 4.1.6 drops unknown headers on HTTP/2, the idempotency_key query argument. Its
 * length in out ("" and 0 when none), or -1 when it is not a valid key. */
static int rg__idempotency_key(struct lws *wsi, char *out, size_t cap)
{
	static const char hk[] = "idempotency-key:", qk[] = "idempotency_key=";
	char arg[sizeof(qk) + RG_ID_MAX + 1];
	int n = lws_hdr_custom_length(wsi, hk, (int)sizeof(hk) - 1);

	out[0] = '\0';
	if (n > 0) {
		if ((size_t)n >= cap ||
		    lws_hdr_custom_copy(wsi, out, (int)cap, hk, (int)sizeof(hk) - 1) != n)
			return -1;
		return rg_token_valid(out, (size_t)n, cap - 1) ? n : -1;
	}
	for (int i = 0; lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0; i++) {
		int len = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
		n = lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n < 0 && len >= (int)sizeof(qk) - 1)
			return -1; /* too long for a key, or for anything we read */
		if (n < (int)sizeof(qk) - 1 || strncmp(arg, qk, sizeof(qk) - 1))
			continue;
		n -= (int)sizeof(qk) - 1;
		if (!rg_token_valid(arg + sizeof(qk) - 1, (size_t)n, cap - 1) ||
		    strlen(arg + sizeof(qk) - 1) != (size_t)n)
			return -1;
		memcpy(out, arg + sizeof(qk) - 1, (size_t)n + 1);
		return n;
	}
	return 0;
}

/* POST /rooms/{room}/messages, headers arrived: check them, then read the body. */
static int rg__publish_start(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss,
			     const struct rg_identity *id, const char *name, size_t nlen)
{
	struct rg_room *room;
	int rc = rg__body_start(srv, wsi, pss);
	if (rc || pss->refused)
		return rc;
	/* before the room is made: a refused publish leaves no pattern room behind */
	if (rg__may(srv, wsi, pss, id, RG_ACT_PUBLISH, name, nlen, 1, &rc))
		return rc;
	struct rg_peer *peer = rg_conn_peer(wsi);
	uint32_t retry = 0;
	if (!id->server && peer &&
	    !rg_bucket_take(&peer->publishes, srv->cfg->publish_rate_per_address, rg_mono_us(),
			    &retry)) {
		pss->reply.retry_after = (retry + 999) / 1000;
		return rg__refuse_limit(
			wsi, pss, RG_LIMIT_PUBLISH_RATE, "limits.publish_rate_per_address",
			RG_E_RATE_LIMITED,
			"publishing faster than limits.publish_rate_per_address allows", 1);
	}
	if (!id->server && peer && rg_registry_get(&srv->reg, name, nlen, 0, &room) == -ENOENT &&
	    !rg_bucket_take_per(&peer->rooms, srv->cfg->room_rate_per_address, RG_ROOMS_PERIOD_US,
				rg_mono_us(), &retry)) {
		pss->reply.retry_after = (retry + 999) / 1000;
		return rg__refuse_limit(
			wsi, pss, RG_LIMIT_ROOM_RATE, "limits.room_creation_rate_per_address",
			RG_E_RATE_LIMITED,
			"making rooms faster than limits.room_creation_rate_per_address "
			"allows",
			1);
	}
	rc = rg_registry_get(&srv->reg, name, nlen, 1, &room);
	if (rc)
		return rg__refuse_room(wsi, pss, rc, 1);
	if (rg__idempotency_key(wsi, pss->key, sizeof(pss->key)) < 0)
		return rg__refuse(wsi, pss, RG_E_BAD_REQUEST,
				  "Idempotency-Key: expected 1..64 bytes, no control characters",
				  NULL, 1);
	memcpy(pss->room, name, nlen);
	pss->room[nlen] = '\0';
	pss->room_len = nlen;
	return 0; /* the body follows in LWS_CALLBACK_HTTP_BODY */
}

/* POST /streams/{id}/rooms, headers arrived. */
static int rg__steer_start(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss,
			   const char *id, size_t len)
{
	int rc = rg__body_start(srv, wsi, pss);
	if (rc || pss->refused)
		return rc;
	if (len != 32 || strspn(id, "0123456789abcdef") < 32)
		return rg__refuse(wsi, pss, RG_E_NOT_FOUND, rg_why_no_stream, NULL, 1);
	memcpy(pss->stream, id, 32);
	pss->stream[32] = '\0';
	if (!rg_session_find(&srv->reg, pss->stream))
		return rg__refuse(wsi, pss, RG_E_NOT_FOUND, rg_why_no_stream, NULL, 1);
	pss->room_len = 0;
	return 0;
}

/* The request body read so far is counted in the budget (one per request, up to
 * limits.max_message_bytes): frees it. */
static void rg__body_free(struct rg_srv *srv, struct pss__rg_api *pss)
{
	rg_budget_free(srv ? &srv->reg.mem : NULL, RG_MEM_SESSIONS, pss->body);
	pss->body = NULL;
	pss->body_len = 0;
}

static int rg__body(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss, const void *in,
		    size_t len)
{
	if (pss->refused || (!pss->room_len && !pss->stream[0] && !pss->batch) || !len)
		return 0;
	if (pss->body_len + len > rg__body_max(srv, pss)) {
		rg__body_free(srv, pss);
		return rg__refuse_too_large(wsi, pss);
	}
	char *b = rg_budget_realloc(&srv->reg.mem, RG_MEM_SESSIONS, pss->body,
				    pss->body_len + len + 1);
	if (!b)
		return -1;
	memcpy(b + pss->body_len, in, len);
	pss->body = b;
	pss->body_len += len;
	return 0;
}

static int rg__steer_done(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss)
{
	struct rg_session *s = rg_session_find(&srv->reg, pss->stream);
	enum rg_err err;
	const char *why;
	char *answer;
	int rc;

	pss->stream[0] = '\0';
	if (!s) /* it closed while the body arrived */
		rc = rg__refuse(wsi, pss, RG_E_NOT_FOUND, rg_why_no_stream, NULL, 0);
	else if (rg_session_steer(s, pss->body ? pss->body : "", pss->body_len, &answer, &err,
				  &why))
		rc = rg__refuse(wsi, pss, err, why, NULL, 0);
	else {
		rc = rg_http_reply_json(wsi, &pss->reply, HTTP_STATUS_OK, answer, strlen(answer),
					NULL);
		free(answer);
	}
	rg__body_free(srv, pss);
	return rc;
}

static int rg__identify(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss,
			struct rg_identity *id, int body_unread, int *ret);

/* POST /messages, headers arrived: who asks is kept for the items' rooms. */
static int rg__batch_start(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss)
{
	int rc;

	if (rg__identify(srv, wsi, pss, &pss->caller, 1, &rc))
		return rc;
	pss->batch = 1;
	rc = rg__body_start(srv, wsi, pss);
	if (rc || pss->refused) {
		rg_identity_clear(&pss->caller);
		pss->batch = 0;
	}
	return rc;
}

/* A publish handed to the engine (cluster.redis) and not yet answered, one per item
 * of a batch: the request is answered from its writeable once none is left. */
struct rg__inflight {
	struct rg_pub pub; /* first: done gets it */
	struct rg__wait *w;
	size_t i; /* its result's place */
	char room[RG_ROOM_NAME_MAX + 1];
};

struct rg__wait {
	struct lws *wsi;
	int batch;
	size_t pending;
	json_t *results; /* a batch's, in order; a placeholder where one is pending */
	int rc;          /* a single publish's answer */
	uint64_t seq;
	size_t n;
	struct rg__inflight items[];
};

/* The result of a refused batch item: {"room", "error": {"code", "message"}}. */
static json_t *rg__batch_refused(struct rg_srv *srv, const char *room, enum rg_err err,
				 const char *why, uint32_t retry)
{
	srv->reg.metrics.errors[err]++;
	json_t *e = json_pack("{s:s,s:{s:s,s:s}}", "room", room, "error", "code", rg_err_code(err),
			      "message", why);
	if (e && err == RG_E_RATE_LIMITED)
		json_object_set_new(e, "retry_after_ms", json_integer(retry));
	return e;
}

/* A batch item's result once published: {"room", "seq"[, "duplicate"]}, or refused. */
static json_t *rg__batch_result(struct rg_srv *srv, const char *room, int rc, uint64_t seq)
{
	if (rc < 0) {
		const char *why;
		enum rg_err err = rg_err_publish(rc, &why);
		return rg__batch_refused(srv, room, err, why, 0);
	}
	if (rc == 0)
		srv->reg.metrics.publishes[RG_TR_HTTP]++;
	json_t *ok = json_pack("{s:s,s:I}", "room", room, "seq", (json_int_t)seq);
	if (ok && rc == 1)
		json_object_set_new(ok, "duplicate", json_true());
	return ok;
}

/* One item of a batch, judged as POST /rooms/{room}/messages would be: NULL with its
 * room in *room when it may be published, else the result refusing it. */
static json_t *rg__batch_judge(struct rg_srv *srv, struct lws *wsi, const struct rg_identity *id,
			       const struct rg_batch_item *it, struct rg_room **room)
{
	const struct rg_room_conf *conf = rg_registry_conf_for(&srv->reg, it->room, it->room_len);
	struct rg_peer *peer = id->server ? NULL : rg_conn_peer(wsi);
	struct rg_conn *c = rg_conn_of(wsi);
	uint32_t retry = 0;
	const char *why, *limit = NULL;
	int rc;

	if (!conf) {
		enum rg_err err = rg_err_room(-ENOENT, &why);
		return rg__batch_refused(srv, it->room, err, why, 0);
	}
	if (!rg_auth_room_allows(id, RG_ACT_PUBLISH, conf, it->room, &why))
		return rg__batch_refused(srv, it->room,
					 id->authenticated || !srv->cfg->auth ? RG_E_FORBIDDEN
									      : RG_E_UNAUTHORIZED,
					 why, 0);
	enum rg_limit k = RG_LIMIT_PUBLISH_RATE;
	if (peer && !rg_bucket_take(&peer->publishes, srv->cfg->publish_rate_per_address,
				    rg_mono_us(), &retry)) {
		why = "publishing faster than limits.publish_rate_per_address allows";
		limit = "limits.publish_rate_per_address";
	} else if (peer && rg_registry_get(&srv->reg, it->room, it->room_len, 0, room) == -ENOENT &&
		   !rg_bucket_take_per(&peer->rooms, srv->cfg->room_rate_per_address,
				       RG_ROOMS_PERIOD_US, rg_mono_us(), &retry)) {
		k = RG_LIMIT_ROOM_RATE;
		why = "making rooms faster than limits.room_creation_rate_per_address allows";
		limit = "limits.room_creation_rate_per_address";
	}
	if (limit) {
		rg_limit_log(srv->reg.metrics.refusals, c ? c->peer : NULL, NULL, k, c ? c->id : 0,
			     limit, rg_err_code(RG_E_RATE_LIMITED));
		return rg__batch_refused(srv, it->room, RG_E_RATE_LIMITED, why, retry);
	}
	rc = rg_registry_get(&srv->reg, it->room, it->room_len, 1, room);
	if (rc) {
		enum rg_err err = rg_err_room(rc, &why);
		return rg__batch_refused(srv, it->room, err, why, 0);
	}
	return NULL;
}

/* Cancels what w still waits for, and frees it. */
static void rg__wait_free(struct rg_srv *srv, struct rg__wait *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++)
		rg_registry_cancel(&srv->reg, &w->items[i].pub);
	json_decref(w->results);
	rg_budget_free(&srv->reg.mem, RG_MEM_SESSIONS, w);
}

static void rg__wait_done(struct rg_pub *p, int rc, uint64_t seq)
{
	struct rg__inflight *f = (struct rg__inflight *)p;
	struct rg__wait *w = f->w;
	struct rg_srv *srv = rg_srv_of(w->wsi);

	if (w->batch)
		json_array_set_new(w->results, f->i, rg__batch_result(srv, f->room, rc, seq));
	else {
		w->rc = rc;
		w->seq = seq;
	}
	if (!--w->pending)
		lws_callback_on_writable(w->wsi);
}

/* A wait for n publishes of the request on wsi: NULL when out of memory. */
static struct rg__wait *rg__wait_new(struct rg_srv *srv, struct lws *wsi, size_t n, int batch)
{
	struct rg__wait *w = rg_budget_calloc(&srv->reg.mem, RG_MEM_SESSIONS, 1,
					      sizeof(*w) + n * sizeof(w->items[0]));

	if (!w)
		return NULL;
	w->wsi = wsi;
	w->batch = batch;
	for (size_t i = 0; i < n; i++) {
		w->items[i].pub.done = rg__wait_done;
		w->items[i].w = w;
		w->items[i].i = i;
	}
	return w;
}

/* Hands a publish to the engine as w's next item: 0 (pending), or its refusal. */
static int rg__wait_submit(struct rg_srv *srv, struct rg__wait *w, struct rg_room *room,
			   const char *data, size_t len, const char *key)
{
	struct rg__inflight *f = &w->items[w->n];
	int rc = rg_registry_submit(&srv->reg, room, data, len, key, &f->pub);

	if (rc)
		return rc;
	memcpy(f->room, room->name, strlen(room->name) + 1);
	w->n++;
	w->pending++;
	return 0;
}

static int rg__batch_answer(struct lws *wsi, struct pss__rg_api *pss, json_t *results)
{
	json_t *answer = json_pack("{s:O}", "results", results);
	char *text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
	int rc = text ? rg_http_reply_json(wsi, &pss->reply, HTTP_STATUS_OK, text, strlen(text),
					   NULL)
		      : rg__refuse(wsi, pss, RG_E_INTERNAL, rg_why_nomem, NULL, 0);

	json_decref(answer);
	free(text);
	return rc;
}

/* POST /messages, its body complete: every item judged and published in order. With
 * an engine, the answer waits for every item's (pss->wait). */
static int rg__batch_done(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss)
{
	const struct rg_batch_limits lim = {.max_items = srv->cfg->max_batch_messages,
					    .max_data = srv->cfg->max_message_bytes,
					    .max_depth = srv->cfg->max_json_depth};
	struct rg_batch b;
	enum rg_err err;
	const char *why;
	struct rg__wait *w = NULL;
	int rc = rg_batch_parse(pss->body ? pss->body : "", pss->body_len, &lim, &b, &err, &why);

	rg__body_free(srv, pss);
	if (rc) {
		rc = rg__refuse(wsi, pss, err, why, NULL, 0);
		goto out;
	}
	json_t *results = json_array();
	if (srv->reg.engine && !(w = rg__wait_new(srv, wsi, b.n, 1))) {
		json_decref(results);
		results = NULL;
	}
	for (size_t i = 0; results && i < b.n; i++) {
		const struct rg_batch_item *it = &b.items[i];
		const char *key = it->key[0] ? it->key : NULL;
		struct rg_room *room;
		json_t *r = rg__batch_judge(srv, wsi, &pss->caller, it, &room);
		uint64_t seq = 0;
		if (!r && w) {
			size_t at = w->n;
			rc = rg__wait_submit(srv, w, room, it->data, it->data_len, key);
			if (!rc) {
				w->items[at].i = i;
				r = json_null();
			}
		} else if (!r)
			rc = rg_registry_publish(&srv->reg, room, it->data, it->data_len, key,
						 &seq);
		if (!r)
			r = rg__batch_result(srv, room->name, rc, seq);
		if (json_array_append_new(results, r)) {
			json_decref(results);
			results = NULL;
		}
	}
	if (!results) {
		rg__wait_free(srv, w);
		rc = rg__refuse(wsi, pss, RG_E_INTERNAL, rg_why_nomem, NULL, 0);
	} else if (w && w->pending) {
		w->results = results;
		pss->wait = w;
		rc = 0;
	} else {
		rg__wait_free(srv, w);
		rc = rg__batch_answer(wsi, pss, results);
		json_decref(results);
	}
out:
	rg_batch_clear(&b);
	rg_identity_clear(&pss->caller);
	pss->batch = 0;
	return rc;
}

/* The answer to POST /rooms/{room}/messages: 201 with the seq, 200 for a repeated key
 * (the original seq), or the refusal. */
static int rg__published(struct lws *wsi, struct pss__rg_api *pss, const char *room, int rc,
			 uint64_t seq)
{
	struct rg_srv *srv = rg_srv_of(wsi);
	char out[64 + RG_ROOM_NAME_MAX];
	const char *why;

	pss->room_len = 0;
	if (rc < 0) {
		enum rg_err err = rg_err_publish(rc, &why);
		if (err == RG_E_OVERLOADED)
			return rg__refuse_limit(wsi, pss, RG_LIMIT_MEMORY, "limits.memory_mb", err,
						why, 0);
		return rg__refuse(wsi, pss, err, why, NULL, 0);
	}
	if (rc == 0)
		srv->reg.metrics.publishes[RG_TR_HTTP]++;
	int n = snprintf(out, sizeof(out), "{\"room\":\"%s\",\"seq\":%llu%s}", room,
			 (unsigned long long)seq, rc == 1 ? ",\"duplicate\":true" : "");
	return rg_http_reply_json(wsi, &pss->reply, rc == 1 ? 200 : 201, out, (size_t)n, NULL);
}

/* From HTTP_WRITEABLE: the engine answered every publish the request waits for. 1 and
 * the callback's return value in *ret when it did, else 0. */
static int rg__wait_answer(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss, int *ret)
{
	struct rg__wait *w = pss->wait;

	if (!w || w->pending)
		return 0;
	pss->wait = NULL;
	*ret = w->batch ? rg__batch_answer(wsi, pss, w->results)
			: rg__published(wsi, pss, w->items[0].room, w->rc, w->seq);
	rg__wait_free(srv, w);
	if (*ret)
		*ret = -1;
	else if (!rg_http_reply_flush(wsi, &pss->reply, ret))
		*ret = 0; /* HTTP/2: the body follows on the next writeable */
	return 1;
}

static int rg__body_done(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss)
{
	struct rg_room *room;
	char *data;
	size_t dlen;
	enum rg_err err;
	const char *why;
	uint64_t seq = 0;

	if (pss->refused || (!pss->room_len && !pss->stream[0] && !pss->batch))
		return 0;
	if (pss->stream[0])
		return rg__steer_done(srv, wsi, pss);
	if (pss->batch)
		return rg__batch_done(srv, wsi, pss);
	int rc = rg_body_parse(pss->body ? pss->body : "", pss->body_len, &data, &dlen, &err, &why);
	rg__body_free(srv, pss);
	if (!rc && rg_json_depth(data, dlen) > srv->cfg->max_json_depth) {
		free(data);
		return rg__refuse_limit(wsi, pss, RG_LIMIT_JSON_DEPTH, "limits.max_json_depth",
					RG_E_BAD_REQUEST, rg_why_depth, 0);
	}
	if (rc)
		return rg__refuse(wsi, pss, err, why, NULL, 0);
	rc = rg_registry_get(&srv->reg, pss->room, pss->room_len, 1, &room);
	if (rc) {
		free(data);
		return rg__refuse_room(wsi, pss, rc, 0);
	}
	const char *key = pss->key[0] ? pss->key : NULL;
	if (!srv->reg.engine) {
		rc = rg_registry_publish(&srv->reg, room, data, dlen, key, &seq);
		free(data);
		return rg__published(wsi, pss, room->name, rc, seq);
	}
	struct rg__wait *w = rg__wait_new(srv, wsi, 1, 0);
	rc = w ? rg__wait_submit(srv, w, room, data, dlen, key) : -ENOMEM;
	free(data);
	if (rc) {
		rg__wait_free(srv, w);
		return rg__published(wsi, pss, room->name, rc, 0);
	}
	pss->room_len = 0;
	pss->wait = w;
	return 0;
}

/* GET /readyz: 200 while the gateway takes new work; 503 while it stops, while it
 * cannot reach the Redis it shares rooms through, or while it is over its memory
 * budget. */
static int rg__readyz(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss)
{
	const struct rg_budget *mem = &srv->reg.mem;
	const char *status = srv->stopping                             ? "stopping"
			     : !rg_registry_ready(&srv->reg)           ? "unavailable"
			     : rg_registry_overloaded(&srv->reg, NULL) ? "overloaded"
								       : "ready";
	char out[160];
	int n = snprintf(out, sizeof(out),
			 "{\"status\":\"%s\",\"memory_used\":%llu,\"memory_limit\":%llu}", status,
			 (unsigned long long)mem->used, (unsigned long long)mem->limit);

	return rg_http_reply_json(wsi, &pss->reply,
				  strcmp(status, "ready") ? HTTP_STATUS_SERVICE_UNAVAILABLE
							  : HTTP_STATUS_OK,
				  out, (size_t)n, NULL);
}

/* Who the request is (credentials.h): without credentials and without `auth`, a
 * backend when it comes from a loopback address. 0, or 1 with the refusal answered and
 * the callback's return value in *ret. */
static int rg__identify(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss,
			struct rg_identity *id, int body_unread, int *ret)
{
	const char *why;

	if (rg_credentials_caller(srv, wsi, id, &why)) {
		*ret = rg__refuse(wsi, pss, RG_E_UNAUTHORIZED, why, NULL, body_unread);
		return 1;
	}
	return 0;
}

/* GET /metrics, for backends (an API key, an admin token; without auth, loopback): the
 * counters and the state, in the Prometheus text format. */
static int rg__metrics(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss)
{
	struct rg_metrics_state st = {0};
	struct rg_identity id;
	int rc;

	if (rg__identify(srv, wsi, pss, &id, 0, &rc))
		return rc;
	int server = id.server;
	rg_identity_clear(&id);
	if (!server)
		return rg__refuse(wsi, pss, id.authenticated ? RG_E_FORBIDDEN : RG_E_UNAUTHORIZED,
				  "/metrics is for backends: an API key or an admin token", NULL,
				  0);
	rg_srv_state(srv, &st);
	char *text = rg_metrics_text(&srv->reg.metrics, &st);
	if (!text)
		return rg__refuse(wsi, pss, RG_E_INTERNAL, rg_why_nomem, NULL, 0);
	rc = rg_http_reply(wsi, &pss->reply, HTTP_STATUS_OK,
			   "text/plain; version=0.0.4; charset=utf-8", text, strlen(text), NULL);
	free(text);
	return rc;
}

static int rg__route_rooms(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss,
			   const char *uri, int meth);

/* Routes a request by its full path (the mount only says which prefix matched). */
static int rg__route(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss)
{
	char *uri;
	int ulen;
	int meth = lws_http_get_uri_and_method(wsi, &uri, &ulen);
	int get = meth == LWSHUMETH_GET, post = meth == LWSHUMETH_POST;
	int has_body = !get && meth != LWSHUMETH_HEAD;

	pss->room_len = 0;
	pss->stream[0] = '\0';
	pss->refused = 0;
	if (pss->batch) /* one refused while its body arrived */
		rg_identity_clear(&pss->caller);
	pss->batch = 0;
	srv->reg.metrics.opened[RG_TR_HTTP][pss->reply.meter.tls][pss->reply.meter.h2]++;
	if (meth < 0)
		return rg__refuse(wsi, pss, RG_E_NOT_FOUND, "no such path", NULL, 1);
	/* a page elsewhere reads nothing and, above all, publishes nothing */
	int origin = rg_http_origin(wsi, srv->cfg);
	if (origin < 0)
		return rg__refuse(wsi, pss, RG_E_FORBIDDEN, rg_why_origin, NULL, has_body);
	pss->reply.cors = origin > 0;
	if (rg_http_is_options(wsi))
		return rg_http_preflight(wsi, &pss->reply, "GET, POST");

	if (!strcmp(uri, "/healthz")) {
		if (!get)
			return rg__refuse(wsi, pss, RG_E_METHOD_NOT_ALLOWED, "/healthz takes GET",
					  "GET", has_body);
		static const char ok[] = "{\"status\":\"ok\"}";
		return rg_http_reply_json(wsi, &pss->reply, HTTP_STATUS_OK, ok, sizeof(ok) - 1,
					  NULL);
	}
	if (!strcmp(uri, "/readyz")) {
		if (!get)
			return rg__refuse(wsi, pss, RG_E_METHOD_NOT_ALLOWED, "/readyz takes GET",
					  "GET", has_body);
		return rg__readyz(srv, wsi, pss);
	}
	if (!strcmp(uri, "/metrics")) {
		if (!get)
			return rg__refuse(wsi, pss, RG_E_METHOD_NOT_ALLOWED, "/metrics takes GET",
					  "GET", has_body);
		return rg__metrics(srv, wsi, pss);
	}
	if (!strcmp(uri, "/messages")) {
		if (!post)
			return rg__refuse(wsi, pss, RG_E_METHOD_NOT_ALLOWED, "/messages takes POST",
					  "POST", has_body);
		return rg__batch_start(srv, wsi, pss);
	}
	if (!strncmp(uri, "/rooms", 6) && (!uri[6] || uri[6] == '/'))
		return rg__route_rooms(srv, wsi, pss, uri, meth);
	/* /streams/{id}/rooms */
	const char *slash;
	if (!strncmp(uri, "/streams/", 9) && (slash = strchr(uri + 9, '/')) &&
	    !strcmp(slash, "/rooms")) {
		if (post)
			return rg__steer_start(srv, wsi, pss, uri + 9, (size_t)(slash - uri - 9));
		return rg__refuse(wsi, pss, RG_E_METHOD_NOT_ALLOWED,
				  "/streams/{id}/rooms takes POST", "POST", has_body);
	}
	return rg__refuse(wsi, pss, RG_E_NOT_FOUND, "no such path", NULL, has_body);
}

/* /rooms, /rooms/{room}/messages and /rooms/{room}/presence: as the caller may. */
static int rg__route_rooms(struct rg_srv *srv, struct lws *wsi, struct pss__rg_api *pss,
			   const char *uri, int meth)
{
	int get = meth == LWSHUMETH_GET, post = meth == LWSHUMETH_POST;
	int has_body = !get && meth != LWSHUMETH_HEAD, rc;
	const char *name = uri + 7, *slash = uri[6] ? strchr(name, '/') : NULL;
	struct rg_identity id;

	if (!uri[6] || !uri[7]) {
		if (!get)
			return rg__refuse(wsi, pss, RG_E_METHOD_NOT_ALLOWED, "/rooms takes GET",
					  "GET", has_body);
		if (rg__identify(srv, wsi, pss, &id, 0, &rc))
			return rc;
		rc = rg__rooms(srv, wsi, pss, &id);
	} else if (slash && !strcmp(slash, "/messages")) {
		if (!post && !get)
			return rg__refuse(wsi, pss, RG_E_METHOD_NOT_ALLOWED,
					  "/rooms/{room}/messages takes GET and POST", "GET, POST",
					  has_body);
		if (rg__identify(srv, wsi, pss, &id, post, &rc))
			return rc;
		rc = post ? rg__publish_start(srv, wsi, pss, &id, name, (size_t)(slash - name))
			  : rg__history(srv, wsi, pss, &id, name, (size_t)(slash - name));
	} else if (slash && !strcmp(slash, "/presence")) {
		if (!get)
			return rg__refuse(wsi, pss, RG_E_METHOD_NOT_ALLOWED,
					  "/rooms/{room}/presence takes GET", "GET", has_body);
		if (rg__identify(srv, wsi, pss, &id, 0, &rc))
			return rc;
		rc = rg__presence(srv, wsi, pss, &id, name, (size_t)(slash - name));
	} else
		return rg__refuse(wsi, pss, RG_E_NOT_FOUND, "no such path", NULL, has_body);
	rg_identity_clear(&id);
	return rc;
}

/* 1 for GET /healthz and /readyz, which are answered while the gateway drains. */
static int rg__probe(struct lws *wsi)
{
	char path[16];

	return !rg_http_path(wsi, path, sizeof(path)) &&
	       (!strcmp(path, "/healthz") || !strcmp(path, "/readyz"));
}

static int rg__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len)
{
	struct pss__rg_api *pss = user;
	struct rg_srv *srv = rg_srv_of(wsi);
	int ret;

	if (rg_srv_lifecycle(wsi, reason, in, &ret))
		return ret;
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return 1; /* only the chat protocol upgrades to WebSocket, on its path */

	case LWS_CALLBACK_HTTP:
		/* draining: load balancers still ask whether to send more (no) */
		if (srv->stopping && !rg__probe(wsi))
			return -1;
		rg_http_reply_begin(wsi, &pss->reply, "http");
		return rg__route(srv, wsi, pss) ? -1 : 0;

	case LWS_CALLBACK_HTTP_BODY:
		pss->reply.meter.in += len;
		srv->reg.metrics.bytes_in[RG_TR_HTTP] += len;
		return rg__body(srv, wsi, pss, in, len) ? -1 : 0;

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (rg__body_done(srv, wsi, pss))
			return -1;
		return rg_http_reply_flush(wsi, &pss->reply, &ret) ? ret : 0;

	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (rg__wait_answer(srv, wsi, pss, &ret))
			return ret;
		if (rg_http_reply_writable(wsi, &pss->reply, &ret))
			return ret;
		return 0;

	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (pss) {
			rg_http_reply_clear(&pss->reply);
			rg__body_free(srv, pss);
			rg__wait_free(srv, pss->wait);
			pss->wait = NULL;
			pss->room_len = 0;
			pss->stream[0] = '\0';
			if (pss->batch)
				rg_identity_clear(&pss->caller);
			pss->batch = 0;
		}
		return 0;

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols rg_http_api_protocol = {
	.name = "rg-api",
	.callback = rg__callback,
	.per_session_data_size = sizeof(struct pss__rg_api),
};
