#include "room.h"

#include "budget.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

struct rg_room *rg_room_new(const char *name, const struct rg_room_conf *conf,
			    struct rg_budget *mem)
{
	struct rg_room *room = rg_budget_calloc(mem, RG_MEM_ROOMS, 1, sizeof(*room));
	if (!room || !(room->name = rg_budget_strdup(mem, RG_MEM_ROOMS, name))) {
		rg_budget_free(mem, RG_MEM_ROOMS, room);
		return NULL;
	}
	room->mem = mem;
	room->conf = conf;
	room->idle_since_ms = rg_now_ms();
	return room;
}

/* The ring holds the only reference to a stored message: dropping it frees it. */
static void rg__msg_drop(struct rg_room *room, struct rg_msg *m)
{
	rg_budget_release(room->mem, RG_MEM_MESSAGES, m);
	rg_msg_unref(m);
}

void rg_room_free(struct rg_room *room)
{
	if (!room)
		return;
	HASH_CLEAR(hh, room->keys);
	for (uint32_t i = 0; i < room->ring_cap; i++)
		rg__msg_drop(room, room->ring[i]);
	rg_budget_free(room->mem, RG_MEM_ROOMS, room->ring);
	rg_budget_free(room->mem, RG_MEM_ROOMS, room->name);
	rg_budget_free(room->mem, RG_MEM_ROOMS, room);
}

uint64_t rg_room_first_seq(const struct rg_room *room)
{
	return room->last_seq - room->count + 1;
}

/* The bytes from m to the last message stored, with w more to come. */
static uint64_t rg__bytes_from(const struct rg_room *room, const struct rg_msg *m, size_t w)
{
	return room->bytes + w - (m->end_bytes - rg_msg_weight(m));
}

uint64_t rg_room_oldest_seq(const struct rg_room *room)
{
	uint64_t first = rg_room_first_seq(room), h = room->conf->history;
	uint64_t lo = room->last_seq >= h && room->last_seq - h + 1 > first ? room->last_seq - h + 1
									    : first;
	uint64_t hi = room->last_seq, cap = room->conf->history_bytes;

	if (!cap || lo >= hi || rg__bytes_from(room, rg_room_get(room, lo), 0) <= cap)
		return lo;
	/* the oldest within history_bytes of the end (the newest always is): the bytes
	 * from a message on shrink as its seq grows, so this is a search */
	while (lo + 1 < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (rg__bytes_from(room, rg_room_get(room, mid), 0) <= cap)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

/* Doubles the ring when every slot is in use. */
static int rg__ring_grow(struct rg_room *room)
{
	uint32_t cap = room->ring_cap ? room->ring_cap * 2 : 16;
	if (room->ring_cap < room->conf->history && cap > room->conf->history)
		cap = room->conf->history;
	if (cap <= room->ring_cap)
		return -ENOMEM; /* 2^32 stored messages */
	struct rg_msg **ring = rg_budget_calloc(room->mem, RG_MEM_ROOMS, cap, sizeof(*ring));
	if (!ring)
		return -ENOMEM;
	for (uint64_t s = rg_room_first_seq(room); s <= room->last_seq; s++)
		ring[(s - 1) % cap] = room->ring[(s - 1) % room->ring_cap];
	rg_budget_free(room->mem, RG_MEM_ROOMS, room->ring);
	room->ring = ring;
	room->ring_cap = cap;
	return 0;
}

const struct rg_msg *rg_room_get(const struct rg_room *room, uint64_t seq)
{
	if (!seq || seq > room->last_seq || seq < rg_room_first_seq(room))
		return NULL;
	return room->ring[(seq - 1) % room->ring_cap];
}

static void rg__evict_oldest(struct rg_room *room)
{
	struct rg_msg **slot = &room->ring[(rg_room_first_seq(room) - 1) % room->ring_cap];
	if ((*slot)->key)
		HASH_DEL(room->keys, *slot);
	rg__msg_drop(room, *slot);
	*slot = NULL;
	room->count--;
}

uint32_t rg_room_drop_history(struct rg_room *room)
{
	uint32_t n = room->count;

	while (room->count)
		rg__evict_oldest(room);
	return n;
}

/* How many of the oldest messages make way for a message of weight w: those past
 * `history` or `history_bytes` that no subscriber needs, or that lie beyond keep_bytes
 * from the end. With *freed (or NULL): what dropping them frees. */
static uint32_t rg__trim_plan(const struct rg_room *room, size_t w, size_t *freed)
{
	const struct rg_room_conf *rc = room->conf;
	uint64_t first = rg_room_first_seq(room), need = UINT64_MAX;
	uint32_t n = 0;
	int needs_scanned = 0;

	if (freed)
		*freed = 0;
	for (; n < room->count; n++) {
		const struct rg_msg *m = rg_room_get(room, first + n);
		uint64_t from = rg__bytes_from(room, m, w);
		if (room->count - n < rc->history &&
		    (!rc->history_bytes || from <= rc->history_bytes))
			break;
		if (!needs_scanned) {
			/* the oldest cursor still stored; cursors below it lagged already */
			for (const struct rg_sub *sub = room->subs; sub; sub = sub->next)
				if (sub->next_seq >= first && sub->next_seq < need)
					need = sub->next_seq;
			needs_scanned = 1;
		}
		if (m->seq >= need && from <= room->keep_bytes)
			break;
		if (freed)
			*freed += rg_budget_size(m);
	}
	return n;
}

/* Stores m (the caller's reference) as the room's next message and wakes the
 * subscribers. force: stored even while the budget is over (a message the engine
 * already ordered: refusing it here would make a gap). 0, -ENOBUFS, -ENOMEM (m is
 * dropped then). */
static int rg__store(struct rg_room *room, struct rg_msg *m, int force)
{
	uint64_t s = m->seq, first = rg_room_first_seq(room);
	size_t freed = 0;
	uint32_t drop = rg__trim_plan(room, rg_msg_weight(m), room->mem ? &freed : NULL);
	if (!force && rg_budget_over(room->mem) && freed < rg_budget_size(m)) {
		rg_msg_unref(m);
		return -ENOBUFS;
	}
	while (drop--)
		rg__evict_oldest(room);
	if (room->count == room->ring_cap && rg__ring_grow(room)) {
		rg_msg_unref(m);
		return -ENOMEM;
	}
	rg_budget_charge(room->mem, RG_MEM_MESSAGES, m);
	room->bytes += rg_msg_weight(m);
	m->end_bytes = room->bytes;
	room->ring[(s - 1) % room->ring_cap] = m;
	room->count++;
	if (m->key)
		HASH_ADD_KEYPTR(hh, room->keys, m->key, strlen(m->key), m);
	room->last_seq = s;
	if (!room->nsubs) {
		room->idle_since_ms = m->ts_ms;
		if (room->idle_list) { /* used again: to the tail */
			DL_DELETE2(*room->idle_list, room, idle_prev, idle_next);
			DL_APPEND2(*room->idle_list, room, idle_prev, idle_next);
		}
	}

	/* Subscribers whose next message was just dropped lagged now: they hear it once,
	 * whether or not they were woken already. */
	uint64_t now_first = rg_room_first_seq(room);
	for (struct rg_sub *sub = room->subs; sub; sub = sub->next) {
		int lagged = sub->next_seq >= first && sub->next_seq < now_first;
		if (lagged && sub->lagged)
			sub->lagged(sub->owner);
		if (!sub->armed || lagged) {
			sub->armed = 1;
			sub->wake(sub->owner);
		}
	}
	return 0;
}

int rg_room_publish(struct rg_room *room, const char *data, size_t len, const char *key,
		    uint64_t *seq)
{
	if (key) {
		struct rg_msg *seen;
		HASH_FIND_STR(room->keys, key, seen);
		if (seen) {
			if (seen->data_len != len || memcmp(seen->data, data, len))
				return -EEXIST;
			*seq = seen->seq;
			return 1;
		}
	}
	uint64_t s = room->last_seq + 1;
	struct rg_msg *m = rg_msg_new(room->name, room->epoch, s, rg_now_ms(), data, len, key);
	if (!m)
		return -ENOMEM;
	int rc = rg__store(room, m, 0);
	if (!rc)
		*seq = s;
	return rc;
}

int rg_room_apply(struct rg_room *room, uint64_t seq, int64_t ts_ms, const char *data, size_t len,
		  const char *key, uint64_t *skipped)
{
	*skipped = 0;
	if (seq <= room->last_seq)
		return 1;
	if (seq > room->last_seq + 1) {
		/* Stored seqs are contiguous: what this room holds goes, and a subscriber
		 * that was owed a message in between finds it lagged. A room that has
		 * received nothing yet only learns where the order is: its subscribers
		 * joined at the live end, which is here. */
		if (room->last_seq)
			*skipped = seq - room->last_seq - 1;
		else
			for (struct rg_sub *sub = room->subs; sub; sub = sub->next)
				if (sub->next_seq < seq)
					sub->next_seq = seq;
		rg_room_drop_history(room);
		room->last_seq = seq - 1;
	}
	struct rg_msg *m = rg_msg_new(room->name, room->epoch, seq, ts_ms, data, len, key);
	if (!m)
		return -ENOMEM;
	return rg__store(room, m, 1);
}

void rg_sub_attach(struct rg_sub *sub, struct rg_room *room, rg_wake_fn wake, void *owner)
{
	sub->room = room;
	sub->next_seq = room->last_seq + 1;
	sub->wake = wake;
	sub->lagged = NULL;
	sub->closed = NULL;
	sub->owner = owner;
	sub->armed = 0;
	DL_PREPEND(room->subs, sub);
	if (!room->nsubs++ && room->idle_list)
		DL_DELETE2(*room->idle_list, room, idle_prev, idle_next);
}

void rg_sub_detach(struct rg_sub *sub)
{
	struct rg_room *room = sub->room;
	if (!room)
		return;
	DL_DELETE(room->subs, sub);
	if (!--room->nsubs) {
		room->idle_since_ms = rg_now_ms();
		if (room->idle_list)
			DL_APPEND2(*room->idle_list, room, idle_prev, idle_next);
	}
	sub->room = NULL;
	sub->prev = sub->next = NULL;
}

enum rg_sub_state rg_sub_peek(struct rg_sub *sub, const struct rg_msg **m)
{
	const struct rg_room *room = sub->room;

	if (sub->next_seq > room->last_seq) {
		sub->armed = 0;
		return RG_SUB_IDLE;
	}
	if (sub->next_seq < rg_room_first_seq(room))
		return RG_SUB_LAGGED;
	*m = rg_room_get(room, sub->next_seq);
	return RG_SUB_READY;
}
