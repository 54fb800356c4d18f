/*
 * A session is one client connection as the dispatcher sees it, whatever the
 * transport: its subscriptions (cursors into rooms), the answers it is owed, and the
 * composition of its next write.
 *
 * The transport creates one per connection, feeds it complete client messages
 * (rg_session_handle), and when the session's wake callback fires, asks it for the
 * bytes of its next write (rg_session_fill): pending answers first, then every
 * pending message of every room that fits, already encoded for its format. Answers
 * include what the gateway tells a client unasked: gap notices and presence events.
 * The session owns its subscriptions and queued answers; rg_session_cleanup() frees
 * them (and tells presence rooms the member left).
 *
 * What a session is owed is bounded in bytes, cfg->max_pending_bytes (DESIGN
 * invariant 4): room messages by the room (room.h), unsolicited answers here. A client
 * that sends requests faster than it reads their answers is not judged, it is paused:
 * the transport stops reading it while rg_session_paused() says so. A session that
 * falls behind the budget is judged slow once (its doom callback), and its next fill
 * says RG_FILL_LAGGED.
 */
#ifndef RG_SESSION_H
#define RG_SESSION_H

#include "auth.h"
#include "limits.h"
#include "registry.h"
#include "request.h"

enum rg_format { RG_FMT_WS, RG_FMT_SSE };

/* Bytes of queued answers past which the transport stops reading the client. */
#define RG_SESSION_PAUSE_BYTES (64 * 1024)

/* Subscriptions a session finds by walking its list; past them, it indexes them. */
#define RG_SESSION_LINEAR 8

struct rg_answer;
struct rg_session;

struct rg_session_sub {
	struct rg_sub sub; /* sub.owner is the session */
	struct rg_session_sub *next;
	char *name;    /* who this member is in presence: malloc'd, or NULL: the connection's */
	int announced; /* presence members were told it joined */
	int authed;    /* joined with a token: presence tells its sub */
};

struct rg_session {
	struct rg_registry *reg;
	enum rg_format fmt;
	rg_wake_fn wake; /* the transport's: "this connection has something to write" */
	rg_wake_fn doom; /* or NULL: "this connection is judged slow", once, at once */
	void *owner;
	char user[24];               /* the connection's own presence name: conn-N */
	struct rg_session_sub *subs; /* in join order */
	/* Past RG_SESSION_LINEAR subscriptions, an index of them by room name (open
	 * addressing, idx_cap slots, a power of 2); NULL before, or when it could not be
	 * allocated: most connections join a room or two, and walking the list costs them
	 * no memory. */
	struct rg_session_sub **idx;
	unsigned idx_cap;
	unsigned nsubs;
	unsigned rr; /* index of the subscription the next fill starts with */
	struct rg_answer *ans_head, *ans_tail;
	unsigned nans;
	size_t ans_bytes;           /* what the queued answers weigh */
	int overflow;               /* unsolicited answers went past the budget: close as lagged */
	int doomed;                 /* the doom callback ran */
	struct rg_stream *stream;   /* NULL, or its stream id (rg_session_publish_token) */
	struct rg_identity *id;     /* NULL: anonymous; owned */
	struct rg_bucket publishes; /* limits.publish_rate_per_connection */
	struct rg_bucket rooms;     /* limits.room_creation_rate_per_connection */
	struct rg_peer *peer;       /* the client's address, set by the transport; or NULL */
	uint64_t conn;              /* its connection's id in log lines, set by the transport */
	/* the registry's sessions (utlist DL_*: all_prev is never NULL while listed, from
	 * init to cleanup) */
	struct rg_session *all_prev, *all_next;
	enum rg_err end_err;    /* why it ends, for the transport's close (rg_session_end) */
	unsigned limits_logged; /* the limits whose refusals it was logged for (rg_limit) */
	int lag_counted;        /* counted in the registry's metrics as lagged */
	int ending;             /* end once the queued answers are written (RG_FILL_END) */
	/* why the last fill said RG_FILL_LAGGED: the name of the room it fell behind in
	 * (valid while the session is subscribed to it), or "" when its answers went past
	 * the budget; NULL before */
	const char *lagged;
	/* publishes the engine has not answered yet, oldest first (utlist DL_*): each is
	 * answered when it is, in order; cancelled at cleanup */
	struct rg_session_pub *pubs;
	unsigned npubs;
};

/* Publishes one connection may have waiting for the engine's answer: past it, the
 * connection is paused (rg_session_paused) until one is answered. */
#define RG_SESSION_PUBS_MAX 64

/* Fill flags. */
#define RG_FILL_MORE   1 /* more is pending: ask for another write */
#define RG_FILL_LAGGED 2 /* write what was filled, then close: the client lagged */
#define RG_FILL_END    4 /* write what was filled, then end (rg_session_end) */

void rg_session_init(struct rg_session *s, struct rg_registry *reg, enum rg_format fmt,
		     rg_wake_fn wake, void *owner);
void rg_session_cleanup(struct rg_session *s);

/* Handles one complete client message (WS); queues exactly one answer. 0 or -ENOMEM. */
int rg_session_handle(struct rg_session *s, const char *text, size_t len);

/* Who the client is: the identity it authenticated with while that is valid (until
 * rg_session_deadline), else anonymous (rg_identity_anonymous). */
const struct rg_identity *rg_session_identity(const struct rg_session *s);

/* Makes id the session's identity, for a token or key the transport found on the
 * connection's request (the WebSocket `auth` message goes through rg_session_handle).
 * id is moved: it is left anonymous. 0, or -ENOMEM. */
int rg_session_authenticate(struct rg_session *s, struct rg_identity *id);

/* When the session's token runs out, in seconds since the Unix epoch (its exp plus
 * auth.leeway_seconds); 0 when it has none. A transport that authenticated the session,
 * or sees this change across rg_session_handle (an `auth` refresh), sets a timer. */
int64_t rg_session_deadline(const struct rg_session *s);

/* The deadline passed: tells the client (WebSocket: error token_expired; SSE: an
 * `expired` event). 0 or -ENOMEM. */
int rg_session_expire(struct rg_session *s);

/* From now on the session's fills write only its queued answers, then say RG_FILL_END:
 * the transport ends the connection once the client has been told why. */
void rg_session_end(struct rg_session *s);

/* An operator closes the session (the admin API): the client is told `closed`, then
 * the transport ends it (end_err RG_E_CLOSED). 0, or -ENOMEM (it ends all the same). */
int rg_session_kick(struct rg_session *s);

/* Logs that the transport refused the session's input by limit k (config key key,
 * answered err): once per connection, at most once a minute per address (limits.h). */
void rg_session_log_limit(struct rg_session *s, enum rg_limit k, const char *key, enum rg_err err);

/* Queues an error answer for input the transport refused itself. Same returns. */
int rg_session_refuse(struct rg_session *s, enum rg_err err, const char *why);

/* 1 while the answers queued for the client weigh RG_SESSION_PAUSE_BYTES or more: the
 * transport reads nothing more from it until a fill brings them below. */
int rg_session_paused(const struct rg_session *s);

/* A join: what to join, and what came of it. */
struct rg_join {
	const char *room;
	size_t len;
	int64_t since;     /* -1: live only; else the last seq the client has */
	const char *name;  /* presence name, or NULL for the connection's */
	int quiet;         /* tell presence members later (rg_session_announce) */
	int over_limit;    /* the caller checked max_rooms_per_connection itself */
	const char *epoch; /* the epoch since belongs to; NULL or "": the current one */
	/* out */
	int reset; /* since was from another epoch, or past the room's last seq: the
		    * client is told (rg_session_reset) and gets the room from its start */
	struct rg_session_sub *ss;
	uint64_t gap_from, gap_to; /* messages no longer stored (gap_from 0: none) */
	enum rg_err err;
	const char *why;
	uint32_t retry_ms; /* err RG_E_RATE_LIMITED: when to try again */
};

/* Subscribes to a room (creating a pattern room). With since, the stored messages
 * after it are delivered first; the part that is no longer stored is reported in
 * gap_from..gap_to for the caller to announce (rg_session_gap) before them. Joining a
 * joined room moves its cursor when since is given, and changes nothing else.
 * 0, or -1 with j->err and j->why set. */
int rg_session_join(struct rg_session *s, struct rg_join *j);

/* Tells presence members about quiet joins: once a multi-room subscription is whole. */
void rg_session_announce(struct rg_session *s);

/* The session's subscription to room (len bytes), or NULL. */
struct rg_session_sub *rg_session_joined(struct rg_session *s, const char *room, size_t len);

/* Leaves a room: 0, or -ENOENT when the session had not joined it. */
int rg_session_leave(struct rg_session *s, const char *room, size_t len);

/* Gives the session a random stream id, findable with rg_session_find, and queues
 * {"type":"stream","stream":ID,"epoch":E,"rooms":{ROOM:SEQ,...}} before every answer
 * queued so far: the id, and the cursor each room starts after (its last delivered
 * seq), so a client can resume rooms that have not had a message yet. Call it once the
 * rooms are joined. 0, -EIO (no randomness), -ENOMEM. */
int rg_session_publish_token(struct rg_session *s);
/* The stream id, or NULL before rg_session_publish_token. */
const char *rg_session_token(const struct rg_session *s);
/* (gateway/steer.c) Changes a stream's rooms as a JSON body {"join":[ROOM...],"leave":[ROOM...]}
 * asks (both optional): all or nothing (presence members see nothing of a refused change), joined
 * rooms start live; linear in the names. 0 and *answer (malloc'd
 * {"stream":ID,"rooms":{ROOM:CURSOR,...}}: every room's last delivered seq), or -1
 * with *err and *why set. */
int rg_session_steer(struct rg_session *s, const char *body, size_t len, char **answer,
		     enum rg_err *err, const char **why);

/* The session with this stream id, or NULL. */
struct rg_session *rg_session_find(struct rg_registry *reg, const char *token);

/* Queues the gap notice {"type":"gap",room,from,to}. Same returns as handle. */
int rg_session_gap(struct rg_session *s, const struct rg_room *room, uint64_t from, uint64_t to);
/* Tells the client its cursor for room meant nothing here (rg_join.reset): a `reset`
 * event naming the gateway's epoch, before the room's messages from its start. */
int rg_session_reset(struct rg_session *s, const struct rg_room *room);

/* The largest single item a fill can produce for this config: a write buffer of this
 * size always makes progress. */
size_t rg_session_max_item(const struct rg_config *cfg);

/* Composes the next write into buf (cap bytes, at most max_items answers and messages
 * unless 0): RG_FILL_* flags and *len, or -E2BIG when cap is below
 * rg_session_max_item(). */
int rg_session_fill(struct rg_session *s, unsigned char *buf, size_t cap, unsigned max_items,
		    size_t *len);

/* The members of presence room name, on this node and (with an engine) the others,
 * as a JSON array of names: malloc'd, or NULL when out of memory. */
char *rg_presence_json(struct rg_registry *reg, const char *name, size_t len);
/* A member of room on another node joined or left (event "join" or "leave"): its
 * members here are told (engine.h, member). */
void rg_session_presence_tell(const struct rg_room *room, const char *event, const char *user,
			      const char *sub);

#endif
