#include "session.h"

#include "history.h"
#include "json_text.h"
#include "log.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <utlist.h>

/* A stream id: only SSE sessions have one, so it lives apart from the session. */
struct rg_stream {
	char token[33];
	struct rg_session *session;
	UT_hash_handle hh; /* in reg->streams */
};

#define RG_HISTORY_LIMIT_DEFAULT 100

/* Encoded bytes, shared by every session that was told the same (presence events). */
struct rg_blob {
	unsigned refs;
	struct rg_budget *mem; /* the budget it counts in */
	size_t len;
	unsigned char bytes[];
};

struct rg_answer {
	struct rg_answer *next;
	struct rg_blob *blob;
};

/* A WebSocket frame of text, or an SSE event named type with text as its data. */
static struct rg_blob *rg__blob(struct rg_budget *mem, enum rg_format fmt, const char *type,
				const char *text, size_t tl)
{
	size_t cap = tl + (fmt == RG_FMT_WS ? RG_WS_HEADER_MAX : strlen(type) + 20);
	struct rg_blob *b = rg_budget_malloc(mem, RG_MEM_ANSWERS, sizeof(*b) + cap);

	if (!b)
		return NULL;
	b->refs = 1;
	b->mem = mem;
	if (fmt == RG_FMT_WS) {
		b->len = rg_ws_text_header(b->bytes, tl);
		memcpy(b->bytes + b->len, text, tl);
		b->len += tl;
	} else {
		int n = snprintf((char *)b->bytes, cap, "event: %s\ndata: ", type);
		memcpy(b->bytes + n, text, tl);
		memcpy(b->bytes + n + tl, "\n\n", 2);
		b->len = (size_t)n + tl + 2;
	}
	return b;
}

static void rg__blob_unref(struct rg_blob *b)
{
	if (b && !--b->refs)
		rg_budget_free(b->mem, RG_MEM_ANSWERS, b);
}

/* Judges the session slow, once: its transport closes it as lagged. */
static void rg__doom(struct rg_session *s)
{
	if (s->doomed)
		return;
	s->doomed = 1;
	/* counted now: a peer that reads nothing more never gets to the fill that says so */
	if (!s->lag_counted) {
		s->lag_counted = 1;
		s->reg->metrics.lagged++;
	}
	if (s->doom)
		s->doom(s->owner);
	s->wake(s->owner);
}

/* Queues b. An unsolicited answer that would take the session past its budget is
 * dropped and the session judged slow: -ENOBUFS. Answers to the client's own requests
 * stop at twice the budget, which a transport that pauses the client never reaches
 * (RG_SESSION_PAUSE_BYTES and one answer are well below it); one that cannot pause
 * (lws does not flow-control HTTP/2 streams) is bounded all the same. */
enum { RG__UNSOLICITED = 1, RG__FIRST = 2 };

static int rg__push(struct rg_session *s, struct rg_blob *b, int how)
{
	int unsolicited = how & RG__UNSOLICITED;
	size_t cap = (unsolicited ? 1 : 2) * (size_t)s->reg->cfg->max_pending_bytes;
	struct rg_answer *a;

	if (s->overflow || s->ans_bytes + b->len > cap) {
		s->overflow = 1;
		rg__doom(s);
		return -ENOBUFS;
	}
	if (!(a = rg_budget_malloc(&s->reg->mem, RG_MEM_ANSWERS, sizeof(*a))))
		return -ENOMEM;
	b->refs++;
	a->blob = b;
	a->next = NULL;
	if ((how & RG__FIRST) && s->ans_head) {
		a->next = s->ans_head;
		s->ans_head = a;
	} else if (s->ans_tail) {
		s->ans_tail->next = a;
	} else {
		s->ans_head = a;
	}
	if (!a->next)
		s->ans_tail = a;
	s->nans++;
	s->ans_bytes += b->len;
	s->wake(s->owner);
	return 0;
}

/* Queues text, encoded for the session, as an answer to the client's own request
 * (how: 0, or RG__FIRST to put it before the answers already queued). */
static int rg__enqueue_how(struct rg_session *s, const char *type, const char *text, size_t tl,
			   int how)
{
	struct rg_blob *b = rg__blob(&s->reg->mem, s->fmt, type, text, tl);
	int rc = b ? rg__push(s, b, how) : -ENOMEM;

	rg__blob_unref(b);
	return rc;
}

static int rg__enqueue(struct rg_session *s, const char *type, const char *text, size_t tl)
{
	return rg__enqueue_how(s, type, text, tl, 0);
}

/* Rooms wake a subscription; the session wakes its transport. */
static void rg__sub_wake(void *owner)
{
	struct rg_session *s = owner;
	s->wake(s->owner);
}

static void rg__drop(struct rg_session *s, struct rg_session_sub *ss);

/* The room is gone from the config (rg_registry_reconfigure): the client is told, and
 * the subscription goes. */
static void rg__sub_closed(struct rg_sub *sub)
{
	struct rg_session_sub *ss = (struct rg_session_sub *)sub; /* its first member */
	struct rg_session *s = sub->owner;
	json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "type", "error", "code",
			      rg_err_code(RG_E_ROOM_CLOSED), "room", sub->room->name, "message",
			      sub->room->closing_why);
	char *text = e ? json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	struct rg_blob *b =
		text ? rg__blob(&s->reg->mem, s->fmt, "error", text, strlen(text)) : NULL;

	s->reg->metrics.errors[RG_E_ROOM_CLOSED]++;
	/* without memory to tell it, the client still loses the room: its next request
	 * about it is answered unknown_room */
	if (b)
		rg__push(s, b, RG__UNSOLICITED);
	rg__blob_unref(b);
	free(text);
	json_decref(e);
	rg__drop(s, ss);
}

/* A room dropped a message one of the session's subscriptions still needed. */
static void rg__sub_lagged(void *owner)
{
	struct rg_session *s = owner;

	for (const struct rg_session_sub *ss = s->subs; ss; ss = ss->next)
		if (ss->sub.room->conf->on_lag == RG_LAG_DISCONNECT &&
		    ss->sub.next_seq < rg_room_first_seq(ss->sub.room)) {
			rg__doom(s);
			return;
		}
}

/* A publish the engine has not answered: the answer goes to the client when it
 * does. The room and id are copies: the room may be swept meanwhile. */
struct rg_session_pub {
	struct rg_pub pub; /* first: done gets it */
	struct rg_session *s;
	struct rg_session_pub *prev, *next;
	char room[RG_ROOM_NAME_MAX + 1];
	char id[RG_ID_MAX + 1];
};

void rg_session_init(struct rg_session *s, struct rg_registry *reg, enum rg_format fmt,
		     rg_wake_fn wake, void *owner)
{
	static unsigned long conns;

	memset(s, 0, sizeof(*s));
	s->reg = reg;
	s->fmt = fmt;
	s->wake = wake;
	s->owner = owner;
	snprintf(s->user, sizeof(s->user), "conn-%lu", ++conns);
	s->end_err = RG_E_UNAUTHORIZED;
	DL_PREPEND2(reg->sessions, s, all_prev, all_next);
}

int rg_session_paused(const struct rg_session *s)
{
	return s->ans_bytes >= RG_SESSION_PAUSE_BYTES || s->npubs >= RG_SESSION_PUBS_MAX;
}

/* Queues obj (consumed) as an answer, with the client's id when it gave one. */
static int rg__answer(struct rg_session *s, json_t *obj, const char *id)
{
	int rc = -ENOMEM;

	if (!obj)
		return -ENOMEM;
	if (id && *id && json_object_set_new(obj, "id", json_string(id)))
		goto out;
	char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text) {
		rc = rg__enqueue(s, json_string_value(json_object_get(obj, "type")), text,
				 strlen(text));
		free(text);
	}
out:
	json_decref(obj);
	return rc;
}

static int rg__error(struct rg_session *s, enum rg_err err, const char *why, const char *id)
{
	s->reg->metrics.errors[err]++;
	return rg__answer(s,
			  json_pack("{s:s, s:s, s:s}", "type", "error", "code", rg_err_code(err),
				    "message", why),
			  id);
}

int rg_session_refuse(struct rg_session *s, enum rg_err err, const char *why)
{
	return rg__error(s, err, why, NULL);
}

int rg_session_gap(struct rg_session *s, const struct rg_room *room, uint64_t from, uint64_t to)
{
	char text[256];
	size_t n = rg_gap_json(room, from, to, text, sizeof(text));

	s->reg->metrics.gaps++;
	return n ? rg__enqueue(s, "gap", text, n) : -ENOMEM;
}

const struct rg_identity *rg_session_identity(const struct rg_session *s)
{
	int64_t deadline = rg_session_deadline(s);

	if (!s->id || (deadline && rg_unix_s() >= deadline))
		return &rg_identity_anonymous;
	return s->id;
}

int rg_session_authenticate(struct rg_session *s, struct rg_identity *id)
{
	if (s->id)
		rg_identity_clear(s->id);
	else if (!(s->id = rg_budget_malloc(&s->reg->mem, RG_MEM_SESSIONS, sizeof(*s->id))))
		return -ENOMEM;
	*s->id = *id;
	memset(id, 0, sizeof(*id));
	return 0;
}

int64_t rg_session_deadline(const struct rg_session *s)
{
	if (!s->id || !s->id->exp)
		return 0;
	return s->id->exp + (int64_t)s->reg->cfg->auth_leeway_seconds;
}

int rg_session_expire(struct rg_session *s)
{
	static const char text[] =
		"{\"type\":\"error\",\"code\":\"token_expired\",\"message\":\"the token "
		"expired: send a new one (auth) or be closed\"}";
	static const char sse[] = "{\"code\":\"token_expired\",\"message\":\"the token "
				  "expired: reconnect with a new one\"}";
	return s->fmt == RG_FMT_WS ? rg__enqueue(s, "error", text, sizeof(text) - 1)
				   : rg__enqueue(s, "expired", sse, sizeof(sse) - 1);
}

void rg_session_end(struct rg_session *s)
{
	s->ending = 1;
	s->wake(s->owner);
}

int rg_session_kick(struct rg_session *s)
{
	int rc = s->ending ? 0 : rg__error(s, RG_E_CLOSED, "closed by an operator", NULL);

	s->end_err = RG_E_CLOSED;
	rg_session_end(s);
	return rc;
}

/* May the session do act in room (NUL-terminated), of the config entry rc? 0, or -1
 * with *err and *why: unauthorized without a token (where the gateway takes tokens),
 * token_expired with an expired one, forbidden with one that does not allow it. */
static int rg__may(const struct rg_session *s, enum rg_action act, const struct rg_room_conf *rc,
		   const char *room, enum rg_err *err, const char **why)
{
	const struct rg_identity *id = rg_session_identity(s);

	if (rg_auth_room_allows(id, act, rc, room, why))
		return 0;
	*err = id->authenticated   ? RG_E_FORBIDDEN
	       : s->id             ? RG_E_TOKEN_EXPIRED
	       : s->reg->cfg->auth ? RG_E_UNAUTHORIZED
				   : RG_E_FORBIDDEN;
	return -1;
}

static const char *rg__user(const struct rg_session_sub *ss)
{
	return ss->name ? ss->name : ((const struct rg_session *)ss->sub.owner)->user;
}

/* Tells the members of a presence room but skip that user (sub: its token's, or NULL)
 * joined or left: encoded once per format and shared. A member this would take past
 * its budget is judged slow, not waited for. */
static void rg__presence_tell(const struct rg_room *room, const struct rg_sub *skip,
			      const char *event, const char *user, const char *sub)
{
	struct rg_blob *blob[2] = {NULL, NULL};
	json_t *obj;
	char *text;

	obj = json_pack("{s:s, s:s, s:s, s:s}", "type", "presence", "room", room->name, "event",
			event, "user", user);
	if (obj && sub && json_object_set_new(obj, "sub", json_string(sub)))
		obj = (json_decref(obj), NULL);
	text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(obj);
	if (!text)
		return;
	for (const struct rg_sub *s = room->subs; s; s = s->next) {
		struct rg_session *other = s->owner;
		if (s == skip || s->wake != rg__sub_wake ||
		    !((const struct rg_session_sub *)s)->announced)
			continue;
		if (!blob[other->fmt])
			blob[other->fmt] = rg__blob(&other->reg->mem, other->fmt, "presence", text,
						    strlen(text));
		if (blob[other->fmt])
			rg__push(other, blob[other->fmt], RG__UNSOLICITED);
	}
	rg__blob_unref(blob[0]);
	rg__blob_unref(blob[1]);
	free(text);
}

/* ss joined or left a presence room: its other members here are told, and through
 * the engine (when there is one) those on other nodes. */
static void rg__presence_event(const struct rg_session_sub *ss, const char *event)
{
	const struct rg_room *room = ss->sub.room;
	const struct rg_session *s = ss->sub.owner;
	const char *sub = ss->authed ? s->id->sub : NULL;

	if (!room->conf->presence)
		return;
	rg__presence_tell(room, &ss->sub, event, rg__user(ss), sub);
	rg_registry_member(s->reg, room, s->user, rg__user(ss), sub, event[0] == 'j');
}

void rg_session_presence_tell(const struct rg_room *room, const char *event, const char *user,
			      const char *sub)
{
	if (room->conf->presence)
		rg__presence_tell(room, NULL, event, user, sub);
}

/* The member names rg_presence_json writes: a new array, or NULL. */
static json_t *rg__presence_users(struct rg_registry *reg, const char *name, size_t len)
{
	json_t *users = json_array();
	struct rg_room *room;

	if (users && !rg_registry_get(reg, name, len, 0, &room)) {
		for (const struct rg_sub *sub = room->subs; sub && users; sub = sub->next) {
			const struct rg_session_sub *ss = (const struct rg_session_sub *)sub;
			if (sub->wake == rg__sub_wake && ss->announced &&
			    json_array_append_new(users, json_string(rg__user(ss))))
				users = (json_decref(users), NULL);
		}
	}
	if (users && rg_registry_members(reg, name, len, users))
		users = (json_decref(users), NULL);
	return users;
}

char *rg_presence_json(struct rg_registry *reg, const char *name, size_t len)
{
	json_t *users = rg__presence_users(reg, name, len);
	char *text = users ? json_dumps(users, JSON_COMPACT) : NULL;

	json_decref(users);
	return text;
}

/* ---- the index of a session's subscriptions by room name ---------------------- */

static size_t rg__hash(const char *name, size_t len)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 1099511628211ULL;
	return (size_t)h;
}

static int rg__is(const struct rg_session_sub *ss, const char *room, size_t len)
{
	const char *name = ss->sub.room->name;
	return !strncmp(name, room, len) && name[len] == '\0';
}

/* The slot holding room's subscription, or the empty one where it would go. */
static size_t rg__slot(const struct rg_session *s, const char *room, size_t len)
{
	size_t mask = s->idx_cap - 1, i = rg__hash(room, len) & mask;

	while (s->idx[i] && !rg__is(s->idx[i], room, len))
		i = (i + 1) & mask;
	return i;
}

static void rg__index_put(struct rg_session *s, struct rg_session_sub *ss)
{
	const char *name = ss->sub.room->name;
	s->idx[rg__slot(s, name, strlen(name))] = ss;
}

/* Indexes ss, just added to the list: builds or grows the index past
 * RG_SESSION_LINEAR subscriptions, kept under half full. Without memory for it the
 * session walks its list: slower, never wrong. */
static void rg__index_add(struct rg_session *s, struct rg_session_sub *ss)
{
	if (s->nsubs <= RG_SESSION_LINEAR)
		return;
	if (s->idx && 2 * s->nsubs <= s->idx_cap) {
		rg__index_put(s, ss);
		return;
	}
	unsigned cap = s->idx ? 2 * s->idx_cap : 4 * RG_SESSION_LINEAR;
	rg_budget_free(&s->reg->mem, RG_MEM_SESSIONS, s->idx);
	if (!(s->idx = rg_budget_calloc(&s->reg->mem, RG_MEM_SESSIONS, cap, sizeof(*s->idx)))) {
		s->idx_cap = 0;
		return;
	}
	s->idx_cap = cap;
	for (struct rg_session_sub *it = s->subs; it; it = it->next)
		rg__index_put(s, it);
}

/* Takes ss out of the index (linear probing: the entries after it that would be
 * unreachable move back, so no slot needs a tombstone). */
static void rg__index_del(struct rg_session *s, const struct rg_session_sub *ss)
{
	const char *name = ss->sub.room->name;
	size_t mask = s->idx_cap - 1, i = rg__slot(s, name, strlen(name));

	s->idx[i] = NULL;
	for (size_t j = (i + 1) & mask; s->idx[j]; j = (j + 1) & mask) {
		const char *n = s->idx[j]->sub.room->name;
		size_t home = rg__hash(n, strlen(n)) & mask;
		/* it stays when its home lies cyclically in (i, j] */
		if (i < j ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		s->idx[i] = s->idx[j];
		s->idx[j] = NULL;
		i = j;
	}
}

struct rg_session_sub *rg_session_joined(struct rg_session *s, const char *room, size_t len)
{
	if (s->idx)
		return s->idx[rg__slot(s, room, len)];
	for (struct rg_session_sub *ss = s->subs; ss; ss = ss->next)
		if (rg__is(ss, room, len))
			return ss;
	return NULL;
}

/* Unlinks ss from the session's lists, leaves its room and frees it. */
static void rg__drop(struct rg_session *s, struct rg_session_sub *ss)
{
	struct rg_session_sub **pp = &s->subs;
	struct rg_room *room = ss->sub.room;

	while (*pp != ss)
		pp = &(*pp)->next;
	*pp = ss->next;
	if (s->idx)
		rg__index_del(s, ss);
	s->nsubs--;
	s->rr = 0;
	if (ss->announced)
		rg__presence_event(ss, "leave");
	rg_sub_detach(&ss->sub);
	rg_registry_release(s->reg, room);
	rg_budget_free(&s->reg->mem, RG_MEM_SESSIONS, ss->name);
	rg_budget_free(&s->reg->mem, RG_MEM_SESSIONS, ss);
	if (!s->nsubs) {
		rg_budget_free(&s->reg->mem, RG_MEM_SESSIONS, s->idx);
		s->idx = NULL;
		s->idx_cap = 0;
	}
}

void rg_session_announce(struct rg_session *s)
{
	for (struct rg_session_sub *ss = s->subs; ss; ss = ss->next) {
		if (!ss->announced) {
			ss->announced = 1;
			rg__presence_event(ss, "join");
		}
	}
}

int rg_session_publish_token(struct rg_session *s)
{
	unsigned char raw[16];
	size_t cap = 128 + (size_t)s->nsubs * (RG_ROOM_NAME_MAX + 26), n;
	struct rg_stream *st;
	char *text;
	int rc;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -EIO;
	if (!(st = rg_budget_calloc(&s->reg->mem, RG_MEM_SESSIONS, 1, sizeof(*st))) ||
	    !(text = malloc(cap))) {
		rg_budget_free(&s->reg->mem, RG_MEM_SESSIONS, st);
		return -ENOMEM;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(st->token + 2 * i, 3, "%02x", raw[i]);
	n = (size_t)snprintf(text, cap,
			     "{\"type\":\"stream\",\"stream\":\"%s\",\"epoch\":\"%s\",\"rooms\":{",
			     st->token, s->reg->epoch);
	for (const struct rg_session_sub *ss = s->subs; ss; ss = ss->next)
		n += (size_t)snprintf(text + n, cap - n, "%s\"%s\":%" PRIu64,
				      ss == s->subs ? "" : ",", ss->sub.room->name,
				      ss->sub.next_seq - 1);
	n += (size_t)snprintf(text + n, cap - n, "}}");
	rc = rg__enqueue_how(s, "stream", text, n, RG__FIRST);
	free(text);
	if (rc) {
		rg_budget_free(&s->reg->mem, RG_MEM_SESSIONS, st);
		return rc;
	}
	st->session = s;
	s->stream = st;
	HASH_ADD_STR(s->reg->streams, token, st);
	return 0;
}

const char *rg_session_token(const struct rg_session *s)
{
	return s->stream ? s->stream->token : NULL;
}

struct rg_session *rg_session_find(struct rg_registry *reg, const char *token)
{
	struct rg_stream *st;
	HASH_FIND_STR(reg->streams, token, st);
	return st ? st->session : NULL;
}

void rg_session_cleanup(struct rg_session *s)
{
	if (s->all_prev) {
		DL_DELETE2(s->reg->sessions, s, all_prev, all_next);
		s->all_prev = NULL;
	}
	if (s->stream) {
		HASH_DEL(s->reg->streams, s->stream);
		rg_budget_free(&s->reg->mem, RG_MEM_SESSIONS, s->stream);
		s->stream = NULL;
	}
	while (s->pubs) {
		struct rg_session_pub *sp = s->pubs;
		rg_registry_cancel(s->reg, &sp->pub);
		DL_DELETE(s->pubs, sp);
		rg_budget_free(&s->reg->mem, RG_MEM_SESSIONS, sp);
	}
	s->npubs = 0;
	while (s->subs)
		rg__drop(s, s->subs);
	while (s->ans_head) {
		struct rg_answer *a = s->ans_head;
		s->ans_head = a->next;
		rg__blob_unref(a->blob);
		rg_budget_free(&s->reg->mem, RG_MEM_ANSWERS, a);
	}
	s->ans_tail = NULL;
	s->nans = 0;
	s->ans_bytes = 0;
	if (s->id) {
		rg_identity_clear(s->id);
		rg_budget_free(&s->reg->mem, RG_MEM_SESSIONS, s->id);
		s->id = NULL;
	}
}

/* Points the cursor just after since, or at the oldest stored message with a gap. */
static void rg__seek(struct rg_join *j)
{
	struct rg_sub *sub = &j->ss->sub;
	uint64_t from = (uint64_t)j->since + 1, oldest = rg_room_oldest_seq(sub->room);

	j->gap_from = j->gap_to = 0;
	if (from < oldest) {
		j->gap_from = from;
		j->gap_to = oldest - 1;
		from = oldest;
	}
	sub->next_seq = from;
	if (from <= sub->room->last_seq && !sub->armed) {
		sub->armed = 1;
		sub->wake(sub->owner);
	}
}

/* (session.h) */
void rg_session_log_limit(struct rg_session *s, enum rg_limit k, const char *key, enum rg_err err)
{
	rg_limit_log(s->reg->metrics.refusals, s->peer, &s->limits_logged, k, s->conn, key,
		     rg_err_code(err));
}

/* A new pattern room is about to be made for the session: 0, or -1 and *retry_ms when
 * the connection or its address made its limits.room_creation_rate_* already (so no
 * one client sweeps limits.max_rooms). Backends are not limited. */
static int rg__may_create(struct rg_session *s, uint32_t *retry_ms)
{
	const struct rg_config *cfg = s->reg->cfg;
	int64_t now = rg_mono_us();

	if (rg_session_identity(s)->server)
		return 0;
	if (!rg_bucket_take_per(&s->rooms, cfg->room_rate_per_connection, RG_ROOMS_PERIOD_US, now,
				retry_ms)) {
		rg_session_log_limit(s, RG_LIMIT_ROOM_RATE,
				     "limits.room_creation_rate_per_connection", RG_E_RATE_LIMITED);
		return -1;
	}
	if (s->peer && !rg_bucket_take_per(&s->peer->rooms, cfg->room_rate_per_address,
					   RG_ROOMS_PERIOD_US, now, retry_ms)) {
		rg_session_log_limit(s, RG_LIMIT_ROOM_RATE, "limits.room_creation_rate_per_address",
				     RG_E_RATE_LIMITED);
		return -1;
	}
	return 0;
}

/* The error answer to a request refused by a rate limit, with its retry hint. */
static int rg__rate_limited(struct rg_session *s, const char *why, uint32_t retry_ms,
			    const char *id)
{
	s->reg->metrics.errors[RG_E_RATE_LIMITED]++;
	return rg__answer(s,
			  json_pack("{s:s, s:s, s:s, s:i}", "type", "error", "code",
				    rg_err_code(RG_E_RATE_LIMITED), "message", why,
				    "retry_after_ms", (int)retry_ms),
			  id);
}

int rg_session_join(struct rg_session *s, struct rg_join *j)
{
	struct rg_room *r;
	int rc;

	j->gap_from = j->gap_to = 0;
	j->ss = rg_session_joined(s, j->room, j->len);
	const struct rg_room_conf *conf = rg_registry_conf_for(s->reg, j->room, j->len);
	if (conf) {
		char name[RG_ROOM_NAME_MAX + 1];
		memcpy(name, j->room, j->len); /* conf_for found it: a valid name */
		name[j->len] = '\0';
		if (rg__may(s, RG_ACT_SUBSCRIBE, conf, name, &j->err, &j->why))
			return -1;
	}
	if (!j->ss && !j->over_limit && s->nsubs >= s->reg->cfg->max_rooms_per_connection) {
		j->err = RG_E_LIMIT_EXCEEDED;
		j->why = "this connection has joined limits.max_rooms_per_connection rooms";
		rg_session_log_limit(s, RG_LIMIT_ROOMS, "limits.max_rooms_per_connection", j->err);
		return -1;
	}
	/* a refused join leaves nothing behind: not even a pattern room */
	rc = rg_registry_get(s->reg, j->room, j->len, 0, &r);
	if (rg_registry_cursor_unknown(s->reg, rc ? NULL : r, j->since, j->epoch)) {
		j->err = RG_E_UNAVAILABLE;
		j->why = rg_why_catching_up;
		return -1;
	}
	if (rc == -ENOENT && conf && rg__may_create(s, &j->retry_ms)) {
		j->err = RG_E_RATE_LIMITED;
		j->why = "making rooms faster than limits.room_creation_rate_per_connection or "
			 "_per_address allows";
		return -1;
	}
	if (rc == -ENOENT)
		rc = rg_registry_get(s->reg, j->room, j->len, 1, &r);
	if (rc) {
		j->err = rg_err_room(rc, &j->why);
		if (rc == -ENOBUFS)
			rg_session_log_limit(s, RG_LIMIT_MEMORY, "limits.memory_mb", j->err);
		else if (rc == -ENOSPC)
			rg_session_log_limit(s, RG_LIMIT_ROOMS, "limits.max_rooms", j->err);
		return -1;
	}
	if (!j->ss) {
		struct rg_session_sub *ss = rg_budget_calloc(&s->reg->mem, RG_MEM_SESSIONS, 1,
							     sizeof(*ss)),
				      **tail = &s->subs;
		if (!ss) {
			j->err = rg_err_room(-ENOMEM, &j->why);
			return -1;
		}
		const struct rg_identity *id = rg_session_identity(s);
		/* a token names its bearer: no other name is taken in its place */
		if (id->authenticated && id->name[0])
			j->name = id->name;
		ss->authed = id->authenticated && id->sub[0];
		if (j->name &&
		    !(ss->name = rg_budget_strdup(&s->reg->mem, RG_MEM_SESSIONS, j->name))) {
			rg_budget_free(&s->reg->mem, RG_MEM_SESSIONS, ss);
			j->err = rg_err_room(-ENOMEM, &j->why);
			return -1;
		}
		rg_sub_attach(&ss->sub, r, rg__sub_wake, s);
		ss->sub.lagged = rg__sub_lagged;
		ss->sub.closed = rg__sub_closed;
		while (*tail)
			tail = &(*tail)->next;
		*tail = ss;
		s->nsubs++;
		rg__index_add(s, ss);
		j->ss = ss;
		if (!j->quiet) {
			ss->announced = 1;
			rg__presence_event(ss, "join");
		}
	}
	/* A cursor of another start of the gateway, or one it never reached (a restart
	 * before epochs, or a cursor made up): its seqs mean nothing here. Everything
	 * this epoch stored is new to the client. */
	j->reset = rg_registry_cursor_stale(s->reg, r, j->since, j->epoch);
	if (j->reset)
		j->since = 0;
	if (j->since >= 0)
		rg__seek(j);
	return 0;
}

int rg_session_reset(struct rg_session *s, const struct rg_room *room)
{
	char text[256];
	int n = snprintf(text, sizeof(text),
			 "{\"type\":\"reset\",\"room\":\"%s\",\"epoch\":\"%s\"}", room->name,
			 s->reg->epoch);

	s->reg->metrics.resets++;
	return n > 0 && (size_t)n < sizeof(text) ? rg__enqueue(s, "reset", text, (size_t)n)
						 : -ENOMEM;
}

static int rg__join(struct rg_session *s, const struct rg_request *req)
{
	struct rg_join j = {.room = req->room,
			    .len = req->room_len,
			    .since = req->since,
			    .name = req->name[0] ? req->name : NULL,
			    .epoch = req->epoch};

	if (rg_session_join(s, &j))
		return j.err == RG_E_RATE_LIMITED ? rg__rate_limited(s, j.why, j.retry_ms, req->id)
						  : rg__error(s, j.err, j.why, req->id);
	int rc = rg__answer(s,
			    json_pack("{s:s, s:s, s:I, s:s}", "type", "joined", "room", req->room,
				      "seq", (json_int_t)j.ss->sub.room->last_seq, "epoch",
				      s->reg->epoch),
			    req->id);
	if (!rc && j.reset)
		rc = rg_session_reset(s, j.ss->sub.room);
	if (!rc && j.gap_from)
		rc = rg_session_gap(s, j.ss->sub.room, j.gap_from, j.gap_to);
	return rc;
}

int rg_session_leave(struct rg_session *s, const char *room, size_t len)
{
	struct rg_session_sub *target = rg_session_joined(s, room, len);

	if (!target)
		return -ENOENT;
	rg__drop(s, target);
	return 0;
}

static int rg__leave(struct rg_session *s, const struct rg_request *req)
{
	if (rg_session_leave(s, req->room, req->room_len))
		return rg__error(s, RG_E_NOT_JOINED, "this connection has not joined the room",
				 req->id);
	return rg__answer(s, json_pack("{s:s, s:s}", "type", "left", "room", req->room), req->id);
}

/* The answer to a publish of room (rg_registry_publish's or the engine's rc): its
 * ack, or why it was refused. */
static int rg__published(struct rg_session *s, const char *room, int r, uint64_t seq,
			 const char *id)
{
	if (r < 0) {
		const char *why;
		enum rg_err err = rg_err_publish(r, &why);
		if (err == RG_E_OVERLOADED)
			rg_session_log_limit(s, RG_LIMIT_MEMORY, "limits.memory_mb", err);
		return rg__error(s, err, why, id);
	}
	if (r == 0)
		s->reg->metrics.publishes[RG_TR_WS]++;
	json_t *ack =
		json_pack("{s:s, s:s, s:I}", "type", "ack", "room", room, "seq", (json_int_t)seq);
	if (ack && r == 1 && json_object_set_new(ack, "duplicate", json_true()))
		ack = (json_decref(ack), NULL);
	return rg__answer(s, ack, id);
}

static void rg__pub_done(struct rg_pub *p, int rc, uint64_t seq)
{
	struct rg_session_pub *sp = (struct rg_session_pub *)p;
	struct rg_session *s = sp->s;

	DL_DELETE(s->pubs, sp);
	s->npubs--;
	/* an answer that cannot be queued leaves the client waiting: it is closed
	 * instead, and retries with the same id */
	if (rg__published(s, sp->room, rc, seq, sp->id))
		rg__doom(s);
	rg_budget_free(&s->reg->mem, RG_MEM_SESSIONS, sp);
	s->wake(s->owner);
}

static int rg__publish(struct rg_session *s, const struct rg_request *req)
{
	struct rg_session_sub *ss = rg_session_joined(s, req->room, req->room_len);
	const struct rg_room_conf *rc =
		ss ? ss->sub.room->conf : rg_registry_conf_for(s->reg, req->room, req->room_len);
	uint64_t seq;
	const char *why;

	if (!rc) {
		enum rg_err err = rg_err_room(-ENOENT, &why);
		return rg__error(s, err, why, req->id);
	}
	enum rg_err err;
	if (rg__may(s, RG_ACT_PUBLISH, rc, req->room, &err, &why))
		return rg__error(s, err, why, req->id);
	if (!ss)
		return rg__error(s, RG_E_NOT_JOINED, "join the room before publishing to it",
				 req->id);
	if (!rg_session_identity(s)->server) {
		const struct rg_config *cfg = s->reg->cfg;
		int64_t now = rg_mono_us();
		uint32_t retry = 0;
		/* the connection's own bucket first: a flood from one connection must not
		 * drain its neighbours' shared one */
		const char *key = NULL;
		if (!rg_bucket_take(&s->publishes, cfg->publish_rate_per_connection, now, &retry))
			key = "limits.publish_rate_per_connection";
		else if (s->peer && !rg_bucket_take(&s->peer->publishes,
						    cfg->publish_rate_per_address, now, &retry))
			key = "limits.publish_rate_per_address";
		if (key) {
			rg_session_log_limit(s, RG_LIMIT_PUBLISH_RATE, key, RG_E_RATE_LIMITED);
			return rg__rate_limited(s, "publishing faster than the limits allow", retry,
						req->id);
		}
	}
	struct rg_room *room = ss->sub.room;
	const char *id = req->id[0] ? req->id : NULL;
	if (!s->reg->engine) {
		int r = rg_registry_publish(s->reg, room, req->data, req->data_len, id, &seq);
		return rg__published(s, room->name, r, seq, req->id);
	}
	struct rg_session_pub *sp = rg_budget_calloc(&s->reg->mem, RG_MEM_SESSIONS, 1, sizeof(*sp));
	if (!sp)
		return rg__error(s, RG_E_INTERNAL, rg_why_nomem, req->id);
	sp->pub.done = rg__pub_done;
	sp->s = s;
	memcpy(sp->room, room->name, strlen(room->name) + 1);
	memcpy(sp->id, req->id, sizeof(sp->id));
	int r = rg_registry_submit(s->reg, room, req->data, req->data_len, id, &sp->pub);
	if (r) {
		rg_budget_free(&s->reg->mem, RG_MEM_SESSIONS, sp);
		return rg__published(s, room->name, r, 0, req->id);
	}
	DL_APPEND(s->pubs, sp);
	s->npubs++;
	return 0;
}

static int rg__history(struct rg_session *s, const struct rg_request *req)
{
	static const struct rg_room_conf none = {.history = 1};
	struct rg_room *room, empty = {.conf = &none};
	char prefix[128], *text;
	size_t len;
	int rc = rg_registry_get(s->reg, req->room, req->room_len, 0, &room);
	const char *why;

	/* a pattern room that is not alive holds nothing: answered as an empty room,
	 * without making one (its name is the request's, NUL-terminated, only read) */
	const struct rg_room_conf *conf = rg_registry_conf_for(s->reg, req->room, req->room_len);
	enum rg_err err;

	if (rc == -ENOENT && conf) {
		empty.name = (char *)req->room;
		room = &empty;
		rc = 0;
	}
	if (rc) {
		err = rg_err_room(rc, &why);
		return rg__error(s, err, why, req->id);
	}
	if (rg__may(s, RG_ACT_HISTORY, conf, req->room, &err, &why))
		return rg__error(s, err, why, req->id);
	if (rg_registry_cursor_unknown(s->reg, room, req->since, req->epoch))
		return rg__error(s, RG_E_UNAVAILABLE, rg_why_catching_up, req->id);
	/* a cursor of another epoch, or past the end: the room from its start, said so */
	int reset = rg_registry_cursor_stale(s->reg, room, req->since, req->epoch);
	/* the id goes first so that text can be enqueued as it is */
	char *idt = NULL;
	if (req->id[0]) {
		json_t *id = json_string(req->id);
		idt = id ? json_dumps(id, JSON_ENCODE_ANY) : NULL;
		json_decref(id);
		if (!idt)
			return -ENOMEM;
	}
	snprintf(prefix, sizeof(prefix), "\"type\":\"history\",%s%s%s\"epoch\":\"%s\",%s",
		 idt ? "\"id\":" : "", idt ? idt : "", idt ? "," : "", s->reg->epoch,
		 reset ? "\"reset\":true," : "");
	free(idt);
	text = rg_history_json(room, reset ? 0 : req->since,
			       req->limit ? req->limit : RG_HISTORY_LIMIT_DEFAULT,
			       s->reg->cfg->max_message_bytes, prefix, &len);
	if (!text)
		return rg__error(s, RG_E_INTERNAL, rg_why_nomem, req->id);
	rc = rg__enqueue(s, "history", text, len);
	free(text);
	return rc;
}

static int rg__presence(struct rg_session *s, const struct rg_request *req)
{
	const struct rg_room_conf *rc = rg_registry_conf_for(s->reg, req->room, req->room_len);
	const char *why;

	if (!rc) {
		enum rg_err err = rg_err_room(-ENOENT, &why);
		return rg__error(s, err, why, req->id);
	}
	if (!rc->presence)
		return rg__error(s, RG_E_NO_PRESENCE, rg_why_no_presence, req->id);
	enum rg_err err;
	if (rg__may(s, RG_ACT_PRESENCE, rc, req->room, &err, &why))
		return rg__error(s, err, why, req->id);
	json_t *users = rg__presence_users(s->reg, req->room, req->room_len);
	return rg__answer(
		s,
		json_pack("{s:s, s:s, s:o}", "type", "presence", "room", req->room, "users", users),
		req->id);
}

/* {"type":"auth","token":T}: the first token, or a refresh before it runs out. */
static int rg__auth(struct rg_session *s, const struct rg_request *req)
{
	const struct rg_auth *auth = s->reg->cfg->auth;
	struct rg_identity id;
	const char *why;

	if (!auth)
		return rg__error(s, RG_E_UNAUTHORIZED,
				 "this gateway takes no credentials (no auth section)", req->id);
	/* an API key is taken here as in an Authorization header: a backend */
	if (!(auth->napi_keys && rg_auth_api_key(auth, req->data, req->data_len, &id)) &&
	    rg_auth_token(auth, req->data, req->data_len, rg_unix_s(), &id, &why)) {
		why = auth->keys.n ? why : "not an API key of this gateway";
		rg_log_conn(RG_LOG_NOTICE, s->conn, "auth: refused a token in an auth message: %s",
			    why);
		s->reg->metrics.auth_failures[rg_auth_fail_of(why)]++;
		return rg__error(s, RG_E_UNAUTHORIZED, why, req->id);
	}
	/* the rooms joined were allowed to this user: another one opens its own connection */
	if (s->id && strcmp(s->id->sub, id.sub)) {
		rg_identity_clear(&id);
		return rg__error(s, RG_E_FORBIDDEN,
				 "token: for another user than this connection's (sub)", req->id);
	}
	/* rights are judged at join: a token that would not have let this connection into
	 * a room it is in is refused, not applied halfway */
	for (const struct rg_session_sub *ss = s->subs; ss; ss = ss->next) {
		const struct rg_room *r = ss->sub.room;
		char msg[64 + RG_ROOM_NAME_MAX];
		if (rg_auth_room_allows(&id, RG_ACT_SUBSCRIBE, r->conf, r->name, &why))
			continue;
		rg_identity_clear(&id);
		snprintf(msg, sizeof(msg), "token: does not allow the room %s: leave it first",
			 r->name);
		return rg__error(s, RG_E_FORBIDDEN, msg, req->id);
	}
	if (rg_session_authenticate(s, &id)) {
		rg_identity_clear(&id);
		return -ENOMEM;
	}
	json_t *ans = json_pack("{s:s}", "type", "authenticated");
	if (ans && s->id->sub[0] && json_object_set_new(ans, "sub", json_string(s->id->sub)))
		ans = (json_decref(ans), NULL);
	if (ans && s->id->exp &&
	    json_object_set_new(ans, "exp", json_integer((json_int_t)s->id->exp)))
		ans = (json_decref(ans), NULL);
	return rg__answer(s, ans, req->id);
}

int rg_session_handle(struct rg_session *s, const char *text, size_t len)
{
	struct rg_request req;
	int rc;

	if (rg_request_parse(text, len, &req))
		rc = rg__error(s, req.err, req.why, req.id);
	/* jansson bounds the depth it parses (2048); the config bounds what is passed on
	 * (the message object around data is one level) */
	else if (rg_json_depth(text, len) > (size_t)s->reg->cfg->max_json_depth + 1) {
		rg_session_log_limit(s, RG_LIMIT_JSON_DEPTH, "limits.max_json_depth",
				     RG_E_BAD_REQUEST);
		rc = rg__error(s, RG_E_BAD_REQUEST, rg_why_depth, req.id);
	} else if (req.type == RG_REQ_JOIN)
		rc = rg__join(s, &req);
	else if (req.type == RG_REQ_LEAVE)
		rc = rg__leave(s, &req);
	else if (req.type == RG_REQ_PUBLISH)
		rc = rg__publish(s, &req);
	else if (req.type == RG_REQ_HISTORY)
		rc = rg__history(s, &req);
	else if (req.type == RG_REQ_PRESENCE)
		rc = rg__presence(s, &req);
	else if (req.type == RG_REQ_AUTH)
		rc = rg__auth(s, &req);
	else
		rc = rg__answer(s, json_pack("{s:s}", "type", "pong"), req.id);
	rg_request_clear(&req);
	return rc;
}

size_t rg_session_max_item(const struct rg_config *cfg)
{
	/* a message or a history answer (bounded to max_message_bytes of messages plus
	 * its first one), plus a multi-room SSE id line of up to 150 bytes per room */
	return 2 * (size_t)cfg->max_message_bytes + 2048 +
	       150 * (size_t)cfg->max_rooms_per_connection;
}

/* Encodes m for this session into out when it fits in cap. Returns the bytes it takes;
 * more than cap means nothing usable was written. One pass: a multi-room SSE id is
 * formatted straight into out. */
static size_t rg__item(const struct rg_session *s, const struct rg_session_sub *cur,
		       const struct rg_msg *m, unsigned char *out, size_t cap)
{
	const char *tail;
	size_t tl, n = 0;

	if (s->fmt == RG_FMT_WS) {
		tail = (const char *)m->ws;
		tl = m->ws_len;
	} else if (s->nsubs == 1) {
		tail = m->sse;
		tl = m->sse_len;
	} else {
		/* Several rooms: the id is every room's cursor after this event. */
		n = (size_t)snprintf((char *)out, cap, "id: %s/", s->reg->epoch);
		for (const struct rg_session_sub *ss = s->subs; ss; ss = ss->next) {
			uint64_t c = ss == cur ? m->seq : ss->sub.next_seq - 1;
			n += (size_t)snprintf(n < cap ? (char *)out + n : NULL,
					      n < cap ? cap - n : 0, "%s%s=%" PRIu64,
					      ss == s->subs ? "" : ",", ss->sub.room->name, c);
		}
		if (n < cap)
			out[n] = '\n';
		n++;
		tail = m->sse + m->sse_id_len;
		tl = m->sse_len - m->sse_id_len;
	}
	if (n + tl <= cap)
		memcpy(out + n, tail, tl);
	return n + tl;
}

/* A gap notice or the lagged event (room NULL: for unread answers), encoded in place.
 * 0 when it does not fit. */
static size_t rg__notice(const struct rg_session *s, const struct rg_room *room, uint64_t from,
			 uint64_t to, unsigned char *out, size_t cap)
{
	char text[256];
	size_t tl;
	int n;

	if (!room)
		n = snprintf((char *)out, cap, "event: lagged\ndata: {}\n\n");
	else if (!from)
		n = snprintf((char *)out, cap, "event: lagged\ndata: {\"room\":\"%s\"}\n\n",
			     room->name);
	else if (!(tl = rg_gap_json(room, from, to, text, sizeof(text))))
		return 0;
	else if (s->fmt == RG_FMT_SSE)
		n = snprintf((char *)out, cap, "event: gap\ndata: %s\n\n", text);
	else if (cap < tl + RG_WS_HEADER_MAX)
		return 0;
	else {
		size_t hl = rg_ws_text_header(out, tl);
		memcpy(out + hl, text, tl);
		return hl + tl;
	}
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

int rg_session_fill(struct rg_session *s, unsigned char *buf, size_t cap, unsigned max_items,
		    size_t *len)
{
	unsigned items = 0, limit = max_items ? max_items : ~0u;
	size_t n = 0;

	*len = 0;
	if (s->overflow) {
		s->lagged = "";
		if (s->fmt == RG_FMT_SSE)
			*len = rg__notice(s, NULL, 0, 0, buf, cap);
		if (!s->lag_counted) {
			s->lag_counted = 1;
			s->reg->metrics.lagged++;
		}
		return RG_FILL_LAGGED;
	}
	if (s->ans_head && s->ans_head->blob->len > cap)
		return -E2BIG;
	while (s->ans_head && n + s->ans_head->blob->len <= cap && items < limit) {
		struct rg_answer *a = s->ans_head;
		memcpy(buf + n, a->blob->bytes, a->blob->len);
		n += a->blob->len;
		s->ans_head = a->next;
		s->nans--;
		s->ans_bytes -= a->blob->len;
		items++;
		rg__blob_unref(a->blob);
		rg_budget_free(&s->reg->mem, RG_MEM_ANSWERS, a);
	}
	if (!s->ans_head)
		s->ans_tail = NULL;
	if (s->ending) {
		*len = n;
		return s->ans_head ? RG_FILL_MORE : RG_FILL_END;
	}
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
	unsigned delivered = 0;
	int flags = 0;
	do {
		const struct rg_msg *m;
		enum rg_sub_state st;

		while ((st = rg_sub_peek(&ss->sub, &m)) != RG_SUB_IDLE) {
			if (items == limit) {
				flags = RG_FILL_MORE;
				goto out;
			}
			if (st == RG_SUB_LAGGED) {
				struct rg_room *room = ss->sub.room;
				if (room->conf->on_lag == RG_LAG_SKIP) {
					/* tell, then carry on from the oldest stored message */
					uint64_t oldest = rg_room_first_seq(room);
					size_t k = rg__notice(s, room, ss->sub.next_seq, oldest - 1,
							      buf + n, cap - n);
					if (!k) {
						if (!n)
							return -E2BIG;
						flags = RG_FILL_MORE;
						goto out;
					}
					n += k;
					items++;
					s->reg->metrics.gaps++;
					ss->sub.next_seq = oldest;
					continue;
				}
				s->lagged = room->name;
				if (n) { /* deliver what was good first; the next fill reports it */
					flags = RG_FILL_MORE;
				} else {
					flags = RG_FILL_LAGGED;
					if (s->fmt == RG_FMT_SSE)
						n = rg__notice(s, room, 0, 0, buf, cap);
				}
				goto out;
			}
			size_t need = rg__item(s, ss, m, buf + n, cap - n);
			if (need > cap - n) {
				if (!n)
					return -E2BIG; /* cap below rg_session_max_item() */
				flags = RG_FILL_MORE;
				goto out;
			}
			n += need;
			items++;
			delivered++;
			rg_sub_advance(&ss->sub);
		}
		ss = ss->next ? ss->next : s->subs;
	} while (ss != start);
out:
	*len = n;
	s->reg->metrics.deliveries[s->fmt] += delivered;
	if ((flags & RG_FILL_LAGGED) && !s->lag_counted) {
		s->lag_counted = 1;
		s->reg->metrics.lagged++;
	}
	return flags;
}
