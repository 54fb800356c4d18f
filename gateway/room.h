/*
 * A room: a bounded ring of its last `history` messages and the list of its
 * subscribers. The ring is the delivery queue (DESIGN invariant 4): a subscriber is
 * a cursor, the seq it reads next; publishing appends once and wakes subscribers that
 * were idle, it never copies per subscriber. A subscriber whose next message has been
 * overwritten has lagged; rg_sub_peek() says so and the transport disconnects it, so
 * a stalled reader never costs more than its cursor.
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
	void *owner;
	int armed; /* woken and not yet drained: no need to wake again */
};

struct rg_room {
	char *name;
	const struct rg_room_conf *conf;
	uint64_t last_seq;
	struct rg_msg **ring;
	uint32_t ring_cap; /* grows up to conf->history as messages arrive */
	uint32_t count;
	struct rg_msg *keys; /* uthash: stored messages that carry an idempotency key */
	struct rg_sub *subs;
	uint32_t nsubs;
	int64_t idle_since_ms; /* last time it lost its last subscriber or got a message */
	UT_hash_handle hh;
};

enum rg_sub_state { RG_SUB_IDLE, RG_SUB_READY, RG_SUB_LAGGED };

/* NULL when out of memory. */
struct rg_room *rg_room_new(const char *name, const struct rg_room_conf *conf);
void rg_room_free(struct rg_room *room);

/* Stamps data (compact JSON text) with the next seq and the time, stores it and wakes
 * idle subscribers. key (or NULL) makes it idempotent: a key still in the ring is not
 * stored again. 0 and *seq (stored); 1 and *seq of the original (the same key with
 * the same data); -EEXIST (the same key with other data); -ENOMEM. */
int rg_room_publish(struct rg_room *room, const char *data, size_t len, const char *key,
		    uint64_t *seq);

/* The oldest seq still in the ring (last_seq + 1 when empty). */
uint64_t rg_room_oldest_seq(const struct rg_room *room);

/* The stored message seq, or NULL when it is not in the ring. */
const struct rg_msg *rg_room_get(const struct rg_room *room, uint64_t seq);

/* Subscribes at the live end: the first message delivered is last_seq + 1. */
void rg_sub_attach(struct rg_sub *sub, struct rg_room *room, rg_wake_fn wake, void *owner);
void rg_sub_detach(struct rg_sub *sub);

/* The subscriber's next message, without consuming it. IDLE also disarms, so the next
 * publish wakes the owner again. */
enum rg_sub_state rg_sub_peek(struct rg_sub *sub, const struct rg_msg **m);
static inline void rg_sub_advance(struct rg_sub *sub)
{
	sub->next_seq++;
}

#endif
