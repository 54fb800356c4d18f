/*
 * A room: a ring of its last `history` messages and the list of its subscribers. The
 * ring is the delivery queue (DESIGN invariant 4): a subscriber is a cursor, the seq it
 * reads next; publishing appends once and wakes subscribers that were idle, it never
 * copies per subscriber.
 *
 * Lag is judged by what a subscriber is owed, not by ring position: a message older
 * than the last `history` (or `history_bytes`) stays stored while a subscriber still needs it and
 * it lies within the last keep_bytes published (the per-connection budget), so a burst inside one
 * loop pass never looks like lag. A message is dropped only when no subscriber needs it or it is
 * beyond that budget; a subscriber it was still owed to has lagged: its lag callback runs once, and
 * rg_sub_peek() says RG_SUB_LAGGED. A stalled reader thus never costs the room more than
 * keep_bytes, nor itself more than its cursor.
 *
 * Memory: a room with a budget (budget.h) counts itself, its ring and its messages in
 * it. While the budget is over, a publish is stored only when it makes way for itself
 * (the messages it pushes out of the history free as much as it takes): rooms whose
 * history is full go on, none grows.
 *
 * Ownership: the room owns its ring references and its name. Subscriptions are owned
 * by their session and only linked into the room; rg_room_free() requires none left.
 */
#ifndef RG_ROOM_H
#define RG_ROOM_H

#include "config.h"
#include "message.h"

#include <uthash.h>

struct rg_room;

typedef void (*rg_wake_fn)(void *owner);

struct rg_sub {
	struct rg_room *room;
	uint64_t next_seq;
	struct rg_sub *prev, *next; /* the room's subscriber list (utlist DL_*) */
	rg_wake_fn wake;
	rg_wake_fn lagged; /* or NULL: called once when a message it needed was dropped */
	/* or NULL: the room is being closed (gone from the config): the owner must detach
	 * the subscription before it returns */
	void (*closed)(struct rg_sub *sub);
	void *owner;
	int armed; /* woken and not yet drained: no need to wake again */
};

struct rg_budget;

struct rg_room {
	char *name;
	struct rg_budget *mem; /* or NULL: not counted */
	const char *epoch;     /* the registry's (SSE ids carry it); NULL: none */
	const struct rg_room_conf *conf;
	uint64_t last_seq;
	struct rg_msg **ring;
	uint32_t ring_cap;   /* grows as messages arrive and as subscribers need them kept */
	uint32_t count;      /* stored: the last `history`, and older ones still owed */
	uint64_t bytes;      /* weight of every message published so far (rg_msg end_bytes) */
	uint64_t keep_bytes; /* how far back past `history` an owed message is kept */
	struct rg_msg *keys; /* uthash: stored messages that carry an idempotency key */
	struct rg_sub *subs;
	uint32_t nsubs;
	int64_t idle_since_ms;   /* last time it lost its last subscriber or got a message */
	int closing;             /* its subscribers are being told it is gone: keep it */
	const char *closing_why; /* what they are told (a static string) */
	UT_hash_handle hh;
	/* Pattern rooms without a subscriber, least recently used first (utlist DL_*):
	 * the registry's, set by it; NULL for rooms that are never dropped. */
	struct rg_room **idle_list;
	struct rg_room *idle_prev, *idle_next;
};

enum rg_sub_state { RG_SUB_IDLE, RG_SUB_READY, RG_SUB_LAGGED };

/* mem: the budget it counts in, or NULL. NULL when out of memory. */
struct rg_room *rg_room_new(const char *name, const struct rg_room_conf *conf,
			    struct rg_budget *mem);
void rg_room_free(struct rg_room *room);

/* Stamps data (compact JSON text) with the next seq and the time, stores it and wakes
 * idle subscribers. key (or NULL) makes it idempotent: a key still in the ring is not
 * stored again. 0 and *seq (stored); 1 and *seq of the original (the same key with
 * the same data); -EEXIST (the same key with other data); -ENOBUFS (the budget is
 * over and this would grow the room); -ENOMEM. */
int rg_room_publish(struct rg_room *room, const char *data, size_t len, const char *key,
		    uint64_t *seq);

/* Stores a message the engine ordered (engine.h) with its seq and time: the room's
 * next one, or past a gap (*skipped: how many seqs it never had; their subscribers
 * lagged), stored even while the budget is over. 0 (stored), 1 (seq is not past the
 * last: had already), -ENOMEM. */
int rg_room_apply(struct rg_room *room, uint64_t seq, int64_t ts_ms, const char *data, size_t len,
		  const char *key, uint64_t *skipped);

/* The oldest seq of the room's history, its last `history` messages within its last
 * `history_bytes` (the newest always is): what history queries and resuming reach back
 * to (last_seq + 1 when empty). */
uint64_t rg_room_oldest_seq(const struct rg_room *room);
/* The oldest seq stored, history or still owed to a subscriber (<= the above). */
uint64_t rg_room_first_seq(const struct rg_room *room);

/* Drops every stored message (an operator's order): the seqs go on from last_seq, and a
 * subscriber that still needed one finds it lagged (its room's on_lag applies). How
 * many were dropped. */
uint32_t rg_room_drop_history(struct rg_room *room);

/* The stored message seq, or NULL when it is not stored. */
const struct rg_msg *rg_room_get(const struct rg_room *room, uint64_t seq);

/* Subscribes at the live end: the first message delivered is last_seq + 1. */
void rg_sub_attach(struct rg_sub *sub, struct rg_room *room, rg_wake_fn wake, void *owner);
void rg_sub_detach(struct rg_sub *sub);

/* The subscriber's next message, without consuming it. IDLE also disarms, so the next
 * publish wakes the owner again. LAGGED: its next message is no longer stored. */
enum rg_sub_state rg_sub_peek(struct rg_sub *sub, const struct rg_msg **m);
static inline void rg_sub_advance(struct rg_sub *sub)
{
	sub->next_seq++;
}

#endif
