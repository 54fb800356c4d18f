#include "session.h"

#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rg_answer {
	struct rg_answer *next;
	size_t len;
	unsigned char bytes[]; /* the complete WS frame */
};

void rg_session_init(struct rg_session *s, struct rg_registry *reg, enum rg_format fmt,
		     rg_wake_fn wake, void *owner)
{
	memset(s, 0, sizeof(*s));
	s->reg = reg;
	s->fmt = fmt;
	s->wake = wake;
	s->owner = owner;
}

void rg_session_cleanup(struct rg_session *s)
{
	while (s->subs) {
		struct rg_session_sub *ss = s->subs;
		s->subs = ss->next;
		rg_sub_detach(&ss->sub);
		free(ss);
	}
	while (s->ans_head) {
		struct rg_answer *a = s->ans_head;
		s->ans_head = a->next;
		free(a);
	}
	s->ans_tail = NULL;
	s->nsubs = s->nans = 0;
}

/* Queues obj (consumed) as an answer frame. */
static int rg__answer(struct rg_session *s, json_t *obj, const char *id)
{
	if (!obj)
		return -ENOMEM;
	if (id && *id && json_object_set_new(obj, "id", json_string(id))) {
		json_decref(obj);
		return -ENOMEM;
	}
	char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (!text)
		return -ENOMEM;
	size_t tl = strlen(text);
	struct rg_answer *a = malloc(sizeof(*a) + RG_WS_HEADER_MAX + tl);
	if (!a) {
		free(text);
		return -ENOMEM;
	}
	a->len = rg_ws_text_header(a->bytes, tl);
	memcpy(a->bytes + a->len, text, tl);
	a->len += tl;
	free(text);
	a->next = NULL;
	if (s->ans_tail)
		s->ans_tail->next = a;
	else
		s->ans_head = a;
	s->ans_tail = a;
	s->nans++;
	s->wake(s->owner);
	return 0;
}

static int rg__error(struct rg_session *s, enum rg_err err, const char *why, const char *id)
{
	return rg__answer(s,
			  json_pack("{s:s, s:s, s:s}", "type", "error", "code", rg_err_code(err),
				    "message", why),
			  id);
}

int rg_session_refuse(struct rg_session *s, enum rg_err err, const char *why)
{
	if (s->nans >= RG_SESSION_MAX_ANSWERS)
		return -ENOBUFS;
	return rg__error(s, err, why, NULL);
}

static struct rg_session_sub *rg__find(struct rg_session *s, const char *room, size_t len)
{
	for (struct rg_session_sub *ss = s->subs; ss; ss = ss->next)
		if (strlen(ss->sub.room->name) == len && !memcmp(ss->sub.room->name, room, len))
			return ss;
	return NULL;
}

static enum rg_err rg__room_err(int rc, const char **why)
{
	switch (rc) {
	case -EINVAL:
		*why = "room: expected 1..128 characters of A-Z a-z 0-9 _ . : @ ~ -";
		return RG_E_BAD_REQUEST;
	case -ENOENT:
		*why = "no such room";
		return RG_E_UNKNOWN_ROOM;
	case -ENOSPC:
		*why = "the gateway holds limits.max_rooms rooms";
		return RG_E_LIMIT_EXCEEDED;
	default:
		*why = "out of memory";
		return RG_E_INTERNAL;
	}
}

int rg_session_join(struct rg_session *s, const char *room, size_t len, enum rg_err *err,
		    const char **why)
{
	struct rg_room *r;
	int rc;

	if (rg__find(s, room, len))
		return 0;
	if (s->nsubs >= s->reg->cfg->max_rooms_per_connection) {
		*err = RG_E_LIMIT_EXCEEDED;
		*why = "this connection has joined limits.max_rooms_per_connection rooms";
		return -1;
	}
	if ((rc = rg_registry_get(s->reg, room, len, 1, &r))) {
		*err = rg__room_err(rc, why);
		return -1;
	}
	struct rg_session_sub *ss = calloc(1, sizeof(*ss)), **tail = &s->subs;
	if (!ss) {
		*err = rg__room_err(-ENOMEM, why);
		return -1;
	}
	rg_sub_attach(&ss->sub, r, s->wake, s->owner);
	while (*tail)
		tail = &(*tail)->next;
	*tail = ss;
	s->nsubs++;
	return 0;
}

static int rg__join(struct rg_session *s, const struct rg_request *req)
{
	enum rg_err err;
	const char *why;

	if (rg_session_join(s, req->room, req->room_len, &err, &why))
		return rg__error(s, err, why, req->id);
	struct rg_session_sub *ss = rg__find(s, req->room, req->room_len);
	return rg__answer(s,
			  json_pack("{s:s, s:s, s:I}", "type", "joined", "room", req->room, "seq",
				    (json_int_t)ss->sub.room->last_seq),
			  req->id);
}

static int rg__leave(struct rg_session *s, const struct rg_request *req)
{
	struct rg_session_sub *target = rg__find(s, req->room, req->room_len), **pp = &s->subs;

	while (*pp && *pp != target)
		pp = &(*pp)->next;
	if (!target)
		return rg__error(s, RG_E_NOT_JOINED, "this connection has not joined the room",
				 req->id);
	struct rg_session_sub *ss = *pp;
	*pp = ss->next;
	rg_sub_detach(&ss->sub);
	free(ss);
	s->nsubs--;
	s->rr = 0;
	return rg__answer(s, json_pack("{s:s, s:s}", "type", "left", "room", req->room), req->id);
}

static int rg__publish(struct rg_session *s, const struct rg_request *req)
{
	struct rg_session_sub *ss = rg__find(s, req->room, req->room_len);
	const struct rg_room_conf *rc =
		ss ? ss->sub.room->conf : rg_registry_conf_for(s->reg, req->room, req->room_len);
	uint64_t seq;

	if (!rc)
		return rg__error(s, RG_E_UNKNOWN_ROOM, "no such room", req->id);
	if (rc->publish == RG_PUBLISH_SERVER)
		return rg__error(s, RG_E_FORBIDDEN, "only the HTTP API publishes to this room",
				 req->id);
	if (!ss)
		return rg__error(s, RG_E_NOT_JOINED, "join the room before publishing to it",
				 req->id);
	if (rg_room_publish(ss->sub.room, req->data, req->data_len, &seq))
		return rg__error(s, RG_E_INTERNAL, "out of memory", req->id);
	return rg__answer(s,
			  json_pack("{s:s, s:s, s:I}", "type", "ack", "room", req->room, "seq",
				    (json_int_t)seq),
			  req->id);
}

int rg_session_handle(struct rg_session *s, const char *text, size_t len)
{
	struct rg_request req;
	int rc;

	if (s->nans >= RG_SESSION_MAX_ANSWERS)
		return -ENOBUFS;
	if (rg_request_parse(text, len, &req))
		rc = rg__error(s, req.err, req.why, req.id);
	else if (req.type == RG_REQ_JOIN)
		rc = rg__join(s, &req);
	else if (req.type == RG_REQ_LEAVE)
		rc = rg__leave(s, &req);
	else if (req.type == RG_REQ_PUBLISH)
		rc = rg__publish(s, &req);
	else
		rc = rg__answer(s, json_pack("{s:s}", "type", "pong"), req.id);
	rg_request_clear(&req);
	return rc;
}

size_t rg_session_max_item(const struct rg_config *cfg)
{
	/* envelope + data for a message, plus a multi-room SSE id line of up to 21
	 * bytes per room; answers are far smaller. */
	return (size_t)cfg->max_message_bytes + 512 + 24 * (size_t)cfg->max_rooms_per_connection;
}

/* Bytes the SSE form of m takes for this session, written to out when out != NULL. */
static size_t rg__sse_item(const struct rg_session *s, const struct rg_session_sub *cur,
			   const struct rg_msg *m, char *out)
{
	if (s->nsubs == 1) {
		if (out)
			memcpy(out, m->sse, m->sse_len);
		return m->sse_len;
	}
	/* Several rooms: the id is every room's cursor after this event. */
	char id[32 + 24 * 1024];
	size_t n = 4;
	memcpy(id, "id: ", 4);
	for (const struct rg_session_sub *ss = s->subs; ss; ss = ss->next) {
		uint64_t c = ss == cur ? m->seq : ss->sub.next_seq - 1;
		n += (size_t)snprintf(id + n, sizeof(id) - n, "%s%" PRIu64,
				      ss == s->subs ? "" : ",", c);
	}
	id[n++] = '\n';
	size_t body = m->sse_len - m->sse_id_len;
	if (out) {
		memcpy(out, id, n);
		memcpy(out + n, m->sse + m->sse_id_len, body);
	}
	return n + body;
}

static size_t rg__lagged_event(const struct rg_room *room, char *out, size_t cap)
{
	int n = snprintf(out, cap, "event: lagged\ndata: {\"room\":\"%s\"}\n\n", room->name);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

int rg_session_fill(struct rg_session *s, unsigned char *buf, size_t cap, unsigned max_items,
		    size_t *len)
{
	unsigned items = 0, limit = max_items ? max_items : ~0u;
	size_t n = 0;

	*len = 0;
	if (s->ans_head && s->ans_head->len > cap)
		return -E2BIG;
	while (s->ans_head && n + s->ans_head->len <= cap && items < limit) {
		struct rg_answer *a = s->ans_head;
		memcpy(buf + n, a->bytes, a->len);
		n += a->len;
		s->ans_head = a->next;
		s->nans--;
		items++;
		free(a);
	}
	if (!s->ans_head)
		s->ans_tail = NULL;
	if (s->ans_head || !s->nsubs || items == limit) {
		*len = n;
		return s->ans_head || (items == limit && s->nsubs) ? RG_FILL_MORE : 0;
	}

	/* Round robin over the rooms, a different first room on each fill, so one busy
	 * room cannot starve the others of the write budget. */
	struct rg_session_sub *start = s->subs;
	for (unsigned i = 0; i < s->rr % s->nsubs; i++)
		start = start->next;
	s->rr = (s->rr + 1) % s->nsubs;

	struct rg_session_sub *ss = start;
	int flags = 0;
	do {
		const struct rg_msg *m;
		enum rg_sub_state st;

		while ((st = rg_sub_peek(&ss->sub, &m)) == RG_SUB_READY) {
			size_t need =
				s->fmt == RG_FMT_WS ? m->ws_len : rg__sse_item(s, ss, m, NULL);
			if (items == limit) {
				flags = RG_FILL_MORE;
				goto out;
			}
			if (n + need > cap) {
				if (!n)
					return -E2BIG; /* cap below rg_session_max_item() */
				flags = RG_FILL_MORE;
				goto out;
			}
			if (s->fmt == RG_FMT_WS)
				memcpy(buf + n, m->ws, m->ws_len);
			else
				rg__sse_item(s, ss, m, (char *)buf + n);
			n += need;
			items++;
			rg_sub_advance(&ss->sub);
		}
		if (st == RG_SUB_LAGGED) {
			s->lagged = ss->sub.room;
			if (n) /* deliver what was good first; the next fill reports the lag */
				flags = RG_FILL_MORE;
			else {
				flags = RG_FILL_LAGGED;
				if (s->fmt == RG_FMT_SSE)
					n = rg__lagged_event(ss->sub.room, (char *)buf, cap);
			}
			goto out;
		}
		ss = ss->next ? ss->next : s->subs;
	} while (ss != start);
out:
	*len = n;
	return flags;
}
