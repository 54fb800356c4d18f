/*
 * The set of live rooms: the rooms the config names, which live as long as the
 * registry, and pattern rooms, created on first use and dropped by
 * rg_registry_sweep() once they have had no subscriber for their idle_seconds.
 * At most cfg->max_rooms rooms are alive at once: at the limit, the pattern room
 * without a subscriber that was used least recently makes way for a new one, and a
 * pattern room that never held a message goes as soon as its last subscriber leaves
 * (rg_registry_release), so joining and leaving rooms holds no room slots. A room with
 * a subscriber is never dropped.
 *
 * Memory: the registry keeps the budget (budget.h) its rooms and the sessions on it
 * count in. Past it, pattern rooms without a subscriber are dropped, least recently
 * used first, until it is met with 1/16 to spare (rg_registry_reclaim). When that is not
 * enough, rooms in use hold the memory, and the gateway is overloaded until it is back
 * under that mark: no new pattern room, no new connection (rg_registry_overloaded), no
 * publish that grows a room while the budget is past (room.h).
 *
 * The registry owns its rooms; the config must outlive the registry.
 */
#ifndef RG_REGISTRY_H
#define RG_REGISTRY_H

#include "budget.h"
#include "engine.h"
#include "metrics.h"
#include "room.h"

struct rg_session;
struct rg_stream;

/* The length of the epochs this gateway makes (cursor.h: RG_EPOCH_MAX). */
#define RG_EPOCH_LEN 8

struct rg_registry {
	const struct rg_config *cfg;
	/* This start of the gateway, random: seqs restart with it, so a cursor from another
	 * epoch means nothing here (docs/PROTOCOL.md, "Epochs"). */
	char epoch[RG_EPOCH_LEN + 1];
	struct rg_room *rooms; /* uthash, by name */
	uint32_t nrooms;
	struct rg_room *idle;        /* pattern rooms without subscribers, LRU first */
	uint64_t evicted;            /* rooms dropped early to make way for new ones */
	uint64_t reclaimed;          /* rooms dropped early to meet the memory budget */
	struct rg_budget mem;        /* limits.memory_mb */
	int overloaded;              /* rg_registry_overloaded */
	struct rg_metrics metrics;   /* counted by the sessions and transports on it */
	struct rg_stream *streams;   /* uthash, by token: sessions others may steer (session.c) */
	struct rg_session *sessions; /* every session on it (session.c; utlist DL_*) */
	struct rg_engine *engine;    /* or NULL: publishes are in-process (engine.h) */
};

/* A new epoch, RG_EPOCH_LEN random characters of 0-9 a-v, into out (RG_EPOCH_LEN + 1). */
void rg_registry_new_epoch(char *out);

/* 0, or -ENOMEM. */
int rg_registry_init(struct rg_registry *reg, const struct rg_config *cfg);
void rg_registry_cleanup(struct rg_registry *reg);

/* The room called name (len bytes, not NUL-terminated), creating a pattern room when
 * create is set. 0 and *out; -EINVAL (not a valid name), -ENOENT (no room or pattern),
 * -ENOSPC (max_rooms reached and every pattern room has subscribers), -ENOBUFS (a new
 * room, and the budget is over), -ENOMEM. */
int rg_registry_get(struct rg_registry *reg, const char *name, size_t len, int create,
		    struct rg_room **out);

/* The config entry a room of this name has or would have (exact name first, then the
 * first matching pattern), or NULL: none, or not a valid room name. */
const struct rg_room_conf *rg_registry_conf_for(const struct rg_registry *reg, const char *name,
						size_t len);

/* Whether a cursor (since, in epoch; NULL or "" for the current one) means nothing in
 * room: it is of another start of the gateway, or past the room's last seq (from
 * before epochs, or made up). Such a cursor is answered with a reset and the room from
 * its first stored message (docs/PROTOCOL.md, "Epochs"), never refused. since < 0: no
 * cursor, 0. */
/* With an engine that is not ready (catching up, or Redis lost): 1 when the cursor
 * would be stale here (of another epoch, or past room's last seq; room NULL: a room not
 * alive here) but may be one the other nodes reached, which this one has not read yet.
 * Answered `unavailable` (retry), not with a reset. Else 0. */
int rg_registry_cursor_unknown(const struct rg_registry *reg, const struct rg_room *room,
			       int64_t since, const char *epoch);
int rg_registry_cursor_stale(const struct rg_registry *reg, const struct rg_room *room,
			     int64_t since, const char *epoch);

/* Puts cfg in force (a reload: the caller keeps the old config until this returns, and
 * cfg for as long as the registry). Rooms take their entry in cfg (exact name first,
 * then the first matching pattern), with its history, policies and limits from their
 * next message on; a room cfg no longer has is closed: each subscriber is told
 * (rg_sub.closed) and detached, and the room with its history dropped. Rooms cfg names
 * that are not alive are made. 0 with the rooms closed and made, or -ENOMEM (some rooms
 * cfg names were not made; the rest is in force). */
int rg_registry_reconfigure(struct rg_registry *reg, const struct rg_config *cfg, unsigned *closed,
			    unsigned *added);

/* After a subscriber left room: drops it when it is a pattern room left with no
 * subscriber and no message (nothing to keep). */
void rg_registry_release(struct rg_registry *reg, struct rg_room *room);

/* An operator closes room (the admin API): its members are told room_closed and left,
 * its history is dropped; its seqs go on from where they were (a cursor from before
 * stays meaningful). The members it had; a pattern room that never held a message is
 * gone when it returns. */
unsigned rg_registry_close_room(struct rg_registry *reg, struct rg_room *room);

/* An operator closes sessions (the admin API): those of connection conn (not 0), or
 * those whose token's sub is user (not NULL). How many (rg_session_kick). */
unsigned rg_registry_kick(struct rg_registry *reg, uint64_t conn, const char *user);

/* Drops pattern rooms without subscribers, least recently used first, until the budget
 * is met with 1/16 to spare; never keep (or NULL). How many it dropped. */
unsigned rg_registry_reclaim(struct rg_registry *reg, const struct rg_room *keep);

/* Whether the gateway is overloaded: the budget was past even after
 * rg_registry_reclaim(reg, keep), and it has not come back 1/16 under it since. New
 * work is refused while it is. */
int rg_registry_overloaded(struct rg_registry *reg, const struct rg_room *keep);

/* rg_room_publish, after making way in the budget: the same returns. */
int rg_registry_publish(struct rg_registry *reg, struct rg_room *room, const char *data, size_t len,
			const char *key, uint64_t *seq);

/* Puts engine in charge of publishing (engine.h): every room alive now and from now on
 * is opened in it, and closed in it before it is freed. Once, before any publish; the
 * caller frees the engine after rg_registry_cleanup. */
void rg_registry_set_engine(struct rg_registry *reg, struct rg_engine *engine);

/* 1 while publishes are taken: always without an engine, else while it is ready. */
int rg_registry_ready(const struct rg_registry *reg);

/* With an engine: hands a publish to it (engine.h: 0, and p->done follows; -EAGAIN
 * unavailable, -ENOMEM), or -ENOBUFS while the gateway is overloaded (the message
 * would grow the room where it comes back). */
int rg_registry_submit(struct rg_registry *reg, struct rg_room *room, const char *data, size_t len,
		       const char *key, struct rg_pub *p);
/* p->done will not be called (its owner is going). */
void rg_registry_cancel(struct rg_registry *reg, struct rg_pub *p);

/* A message of room in the engine's order, from this node or another: stored with
 * its seq and time and delivered (rg_room_apply; the same returns). A gap in the
 * order is counted in the metrics. */
int rg_registry_deliver(struct rg_registry *reg, struct rg_room *room, uint64_t seq, int64_t ts_ms,
			const char *data, size_t len, const char *key);

/* Presence with an engine (engine.h, member and members); nothing without one. */
void rg_registry_member(struct rg_registry *reg, const struct rg_room *room, const char *id,
			const char *user, const char *sub, int join);
int rg_registry_members(const struct rg_registry *reg, const char *room, size_t len,
			struct json_t *users);

/* The engine's epoch (RG_EPOCH_LEN characters) becomes the registry's. A room that
 * held messages of the old one starts over empty, its subscribers lagged. 1 when a
 * room did, else 0. */
int rg_registry_rebase(struct rg_registry *reg, const char *epoch);

/* Drops pattern rooms idle since before now_ms - idle_seconds; returns how many. */
unsigned rg_registry_sweep(struct rg_registry *reg, int64_t now_ms);

struct rg_identity;
/* The GET /rooms document (docs/PROTOCOL.md) as id sees it: the rooms it may subscribe
 * to, and every pattern with how many of those are its rooms. malloc'd JSON text, or NULL. */
char *rg_registry_describe(const struct rg_registry *reg, const struct rg_identity *id);

#endif
