#include "room.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

struct rg_room *rg_room_new(const char *name, const struct rg_room_conf *conf)
{
	struct rg_room *room = calloc(1, sizeof(*room));
	if (!room || !(room->name = strdup(name))) {
		free(room);
		return NULL;
	}
	room->conf = conf;
	room->idle_since_ms = rg_now_ms();
	return room;
}

void rg_room_free(struct rg_room *room)
{
	if (!room)
		return;
	HASH_CLEAR(hh, room->keys);
	for (uint32_t i = 0; i < room->ring_cap; i++)
		rg_msg_unref(room->ring[i]);
	free(room->ring);
	free(room->name);
	free(room);
}

uint64_t rg_room_oldest_seq(const struct rg_room *room)
{
	return room->last_seq - room->count + 1;
}

/* Grows the ring (only while nothing has been evicted, so every slot is in use). */
static int rg__ring_grow(struct rg_room *room)
{
	uint32_t cap = room->ring_cap ? room->ring_cap * 2 : 16;
	if (cap > room->conf->history)
		cap = room->conf->history;
	struct rg_msg **ring = calloc(cap, sizeof(*ring));
	if (!ring)
		return -ENOMEM;
	for (uint64_t s = rg_room_oldest_seq(room); s <= room->last_seq; s++)
		ring[(s - 1) % cap] = room->ring[(s - 1) % room->ring_cap];
	free(room->ring);
	room->ring = ring;
	room->ring_cap = cap;
	return 0;
}

const struct rg_msg *rg_room_get(const struct rg_room *room, uint64_t seq)
{
	if (!seq || seq > room->last_seq || seq < rg_room_oldest_seq(room))
		return NULL;
	return room->ring[(seq - 1) % room->ring_cap];
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
	if (room->count == room->ring_cap && room->ring_cap < room->conf->history &&
	    rg__ring_grow(room))
		return -ENOMEM;

	uint64_t s = room->last_seq + 1;
	struct rg_msg *m = rg_msg_new(room->name, s, rg_now_ms(), data, len, key);
	if (!m)
		return -ENOMEM;

	struct rg_msg **slot = &room->ring[(s - 1) % room->ring_cap];
	if (room->count == room->ring_cap) {
		if ((*slot)->key)
			HASH_DEL(room->keys, *slot);
		rg_msg_unref(*slot);
	} else {
		room->count++;
	}
	*slot = m;
	if (m->key)
		HASH_ADD_KEYPTR(hh, room->keys, m->key, strlen(m->key), m);
	room->last_seq = s;
	if (!room->nsubs)
		room->idle_since_ms = m->ts_ms;

	for (struct rg_sub *sub = room->subs; sub; sub = sub->next) {
		if (!sub->armed) {
			sub->armed = 1;
			sub->wake(sub->owner);
		}
	}
	*seq = s;
	return 0;
}

void rg_sub_attach(struct rg_sub *sub, struct rg_room *room, rg_wake_fn wake, void *owner)
{
	sub->room = room;
	sub->next_seq = room->last_seq + 1;
	sub->wake = wake;
	sub->owner = owner;
	sub->armed = 0;
	DL_PREPEND(room->subs, sub);
	room->nsubs++;
}

void rg_sub_detach(struct rg_sub *sub)
{
	struct rg_room *room = sub->room;
	if (!room)
		return;
	DL_DELETE(room->subs, sub);
	if (!--room->nsubs)
		room->idle_since_ms = rg_now_ms();
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
	if (sub->next_seq < rg_room_oldest_seq(room))
		return RG_SUB_LAGGED;
	*m = rg_room_get(room, sub->next_seq);
	return RG_SUB_READY;
}
