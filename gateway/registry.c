#include "registry.h"

#include "auth.h"
#include "log.h"
#include "session.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <utlist.h>

/* RG_EPOCH_LEN characters of 0-9 a-v, random: two starts of the gateway differ. */
void rg_registry_new_epoch(char *out)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuv";
	unsigned char r[RG_EPOCH_LEN];
	struct timespec ts;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		/* no entropy yet (early boot): the clock and the pid still differ */
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t x = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
			     ((uint64_t)getpid() << 40);
		for (size_t i = 0; i < sizeof(r); i++, x >>= 5)
			r[i] = (unsigned char)x;
	}
	for (size_t i = 0; i < RG_EPOCH_LEN; i++)
		out[i] = digits[r[i] & 31];
	out[RG_EPOCH_LEN] = '\0';
}

static int rg__add(struct rg_registry *reg, const char *name, const struct rg_room_conf *conf,
		   struct rg_room **out)
{
	struct rg_room *room = rg_room_new(name, conf, &reg->mem);
	if (!room)
		return -ENOMEM;
	room->keep_bytes = reg->cfg->max_pending_bytes;
	room->epoch = reg->epoch;
	HASH_ADD_KEYPTR(hh, reg->rooms, room->name, strlen(room->name), room);
	reg->nrooms++;
	if (conf->is_pattern) { /* idle until its first subscriber */
		room->idle_list = &reg->idle;
		DL_APPEND2(reg->idle, room, idle_prev, idle_next);
	}
	if (reg->engine)
		reg->engine->ops->room_open(reg->engine, room);
	*out = room;
	return 0;
}

/* Frees a room the hash no longer holds. */
static void rg__free(struct rg_registry *reg, struct rg_room *room)
{
	if (reg->engine)
		reg->engine->ops->room_close(reg->engine, room);
	rg_room_free(room);
}

int rg_registry_init(struct rg_registry *reg, const struct rg_config *cfg)
{
	struct rg_room *room;

	memset(reg, 0, sizeof(*reg));
	reg->cfg = cfg;
	reg->mem.limit = (uint64_t)cfg->memory_mb << 20;
	rg_registry_new_epoch(reg->epoch);
	for (size_t i = 0; i < cfg->nrooms; i++) {
		if (cfg->rooms[i].is_pattern)
			continue;
		if (rg__add(reg, cfg->rooms[i].name, &cfg->rooms[i], &room)) {
			rg_registry_cleanup(reg);
			return -ENOMEM;
		}
	}
	return 0;
}

void rg_registry_cleanup(struct rg_registry *reg)
{
	struct rg_room *room, *tmp;

	HASH_ITER(hh, reg->rooms, room, tmp) {
		HASH_DEL(reg->rooms, room);
		rg__free(reg, room);
	}
	reg->nrooms = 0;
	reg->idle = NULL;
}

/* Drops a pattern room without subscribers. */
static void rg__drop(struct rg_registry *reg, struct rg_room *room)
{
	DL_DELETE2(reg->idle, room, idle_prev, idle_next);
	HASH_DEL(reg->rooms, room);
	rg__free(reg, room);
	reg->nrooms--;
}

void rg_registry_release(struct rg_registry *reg, struct rg_room *room)
{
	if (room->idle_list && !room->nsubs && !room->last_seq && !room->closing)
		rg__drop(reg, room);
}

static const struct rg_room_conf *rg__pattern_for(const struct rg_config *cfg, const char *name,
						  size_t len)
{
	for (size_t i = 0; i < cfg->nrooms; i++) {
		const struct rg_room_conf *rc = &cfg->rooms[i];
		size_t plen = strlen(rc->name);
		if (rc->is_pattern && plen <= len && !memcmp(rc->name, name, plen))
			return rc;
	}
	return NULL;
}

/* The exact entry named name in cfg, else its first matching pattern, else NULL. */
static const struct rg_room_conf *rg__conf_in(const struct rg_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nrooms; i++)
		if (!cfg->rooms[i].is_pattern && !strcmp(cfg->rooms[i].name, name))
			return &cfg->rooms[i];
	return rg__pattern_for(cfg, name, strlen(name));
}

/* Tells every subscriber of room why it is closed (a static string) and detaches them:
 * how many there were. */
static unsigned rg__evict(struct rg_room *room, const char *why)
{
	unsigned n = 0;

	room->closing = 1;
	room->closing_why = why;
	for (; room->subs; n++) {
		struct rg_sub *sub = room->subs;
		if (sub->closed)
			sub->closed(sub);
		else
			rg_sub_detach(sub);
	}
	room->closing = 0;
	return n;
}

unsigned rg_registry_close_room(struct rg_registry *reg, struct rg_room *room)
{
	unsigned n = rg__evict(room, "the room was closed by an operator");

	rg_room_drop_history(room);
	rg_registry_release(reg, room);
	return n;
}

unsigned rg_registry_kick(struct rg_registry *reg, uint64_t conn, const char *user)
{
	unsigned n = 0;

	for (struct rg_session *s = reg->sessions; s; s = s->all_next) {
		const struct rg_identity *id = rg_session_identity(s);
		if ((conn && s->conn == conn) ||
		    (user && id->authenticated && id->sub[0] && !strcmp(id->sub, user))) {
			rg_session_kick(s);
			n++;
		}
	}
	return n;
}

/* Tells every subscriber that room is gone, then drops it. */
static void rg__close(struct rg_registry *reg, struct rg_room *room)
{
	rg__evict(room, "the room was removed from the gateway's configuration");
	if (room->idle_list)
		DL_DELETE2(reg->idle, room, idle_prev, idle_next);
	HASH_DEL(reg->rooms, room);
	rg__free(reg, room);
	reg->nrooms--;
}

int rg_registry_reconfigure(struct rg_registry *reg, const struct rg_config *cfg, unsigned *closed,
			    unsigned *added)
{
	struct rg_room *room, *tmp;

	*closed = *added = 0;
	HASH_ITER(hh, reg->rooms, room, tmp) {
		const struct rg_room_conf *rc = rg__conf_in(cfg, room->name);
		if (!rc) {
			rg__close(reg, room);
			++*closed;
			continue;
		}
		/* a room may change kind: a pattern room is dropped when idle, an exact one
		 * never */
		if (rc->is_pattern && !room->idle_list) {
			room->idle_list = &reg->idle;
			if (!room->nsubs)
				DL_APPEND2(reg->idle, room, idle_prev, idle_next);
		} else if (!rc->is_pattern && room->idle_list) {
			if (!room->nsubs)
				DL_DELETE2(reg->idle, room, idle_prev, idle_next);
			room->idle_list = NULL;
		}
		room->conf = rc;
		room->keep_bytes = cfg->max_pending_bytes;
	}
	reg->cfg = cfg;
	reg->mem.limit = (uint64_t)cfg->memory_mb << 20;
	for (size_t i = 0; i < cfg->nrooms; i++) {
		if (cfg->rooms[i].is_pattern)
			continue;
		HASH_FIND_STR(reg->rooms, cfg->rooms[i].name, room);
		if (room)
			continue;
		if (rg__add(reg, cfg->rooms[i].name, &cfg->rooms[i], &room))
			return -ENOMEM;
		++*added;
	}
	return 0;
}

const struct rg_room_conf *rg_registry_conf_for(const struct rg_registry *reg, const char *name,
						size_t len)
{
	struct rg_room *room;

	/* callers take a config entry as proof of a valid name (they copy it into
	 * RG_ROOM_NAME_MAX + 1 bytes): a long name under a pattern's prefix is none */
	if (!rg_room_name_valid(name, len))
		return NULL;
	HASH_FIND(hh, reg->rooms, name, len, room);
	return room ? room->conf : rg__pattern_for(reg->cfg, name, len);
}

int rg_registry_get(struct rg_registry *reg, const char *name, size_t len, int create,
		    struct rg_room **out)
{
	struct rg_room *room;
	char key[RG_ROOM_NAME_MAX + 1];

	if (!rg_room_name_valid(name, len))
		return -EINVAL;
	HASH_FIND(hh, reg->rooms, name, len, room);
	if (room) {
		*out = room;
		return 0;
	}
	const struct rg_room_conf *rc = rg__pattern_for(reg->cfg, name, len);
	if (!rc || !create)
		return -ENOENT;
	if (rg_registry_overloaded(reg, NULL))
		return -ENOBUFS;
	if (reg->nrooms >= reg->cfg->max_rooms) {
		if (!reg->idle)
			return -ENOSPC;
		rg__drop(reg, reg->idle);
		reg->evicted++;
	}
	memcpy(key, name, len);
	key[len] = '\0';
	return rg__add(reg, key, rc, out);
}

/* Where being over the budget ends: 1/16 below it, so a gateway at its budget does
 * not go in and out of it with every message. */
static uint64_t rg__low_water(const struct rg_registry *reg)
{
	return reg->mem.limit - reg->mem.limit / 16;
}

unsigned rg_registry_reclaim(struct rg_registry *reg, const struct rg_room *keep)
{
	struct rg_room *room, *tmp;
	unsigned n = 0;

	DL_FOREACH_SAFE2(reg->idle, room, tmp, idle_next)
	{
		if (reg->mem.used < rg__low_water(reg))
			break;
		if (room == keep)
			continue;
		rg__drop(reg, room);
		reg->reclaimed++;
		n++;
	}
	return n;
}

int rg_registry_overloaded(struct rg_registry *reg, const struct rg_room *keep)
{
	if (rg_budget_over(&reg->mem) || reg->overloaded)
		rg_registry_reclaim(reg, keep);
	int was = reg->overloaded;

	if (rg_budget_over(&reg->mem))
		reg->overloaded = 1;
	else if (!reg->mem.limit || reg->mem.used < rg__low_water(reg))
		reg->overloaded = 0;
	if (reg->overloaded != was)
		rg_notice(
			reg->overloaded
				? "memory: over the budget (%llu MiB) with every idle pattern room "
				  "dropped: refusing new rooms, new connections and publishes that "
				  "grow a room (overloaded)"
				: "memory: within the budget again (%llu MiB): taking new work",
			(unsigned long long)(reg->mem.limit >> 20));
	return reg->overloaded;
}

int rg_registry_publish(struct rg_registry *reg, struct rg_room *room, const char *data, size_t len,
			const char *key, uint64_t *seq)
{
	rg_registry_overloaded(reg, room);
	return rg_room_publish(room, data, len, key, seq);
}

void rg_registry_set_engine(struct rg_registry *reg, struct rg_engine *engine)
{
	struct rg_room *room, *tmp;

	reg->engine = engine;
	HASH_ITER(hh, reg->rooms, room, tmp)
		engine->ops->room_open(engine, room);
}

int rg_registry_ready(const struct rg_registry *reg)
{
	return !reg->engine || reg->engine->ops->ready(reg->engine);
}

int rg_registry_submit(struct rg_registry *reg, struct rg_room *room, const char *data, size_t len,
		       const char *key, struct rg_pub *p)
{
	/* the room grows where the message comes back: refused while that cannot be */
	if (rg_registry_overloaded(reg, room))
		return -ENOBUFS;
	return reg->engine->ops->publish(reg->engine, room, data, len, key, p);
}

void rg_registry_member(struct rg_registry *reg, const struct rg_room *room, const char *id,
			const char *user, const char *sub, int join)
{
	if (reg->engine)
		reg->engine->ops->member(reg->engine, room, id, user, sub, join);
}

int rg_registry_members(const struct rg_registry *reg, const char *room, size_t len,
			struct json_t *users)
{
	return reg->engine ? reg->engine->ops->members(reg->engine, room, len, users) : 0;
}

void rg_registry_cancel(struct rg_registry *reg, struct rg_pub *p)
{
	if (reg->engine && p->engine_ref)
		reg->engine->ops->cancel(reg->engine, p);
}

int rg_registry_deliver(struct rg_registry *reg, struct rg_room *room, uint64_t seq, int64_t ts_ms,
			const char *data, size_t len, const char *key)
{
	uint64_t skipped;

	rg_registry_overloaded(reg, room);
	int rc = rg_room_apply(room, seq, ts_ms, data, len, key, &skipped);
	if (skipped) {
		reg->metrics.cluster_gaps += skipped;
		rg_warn("room %s: %llu message(s) of the cluster's order never came here; its "
			"subscribers that were owed them lagged",
			room->name, (unsigned long long)skipped);
	}
	return rc;
}

int rg_registry_rebase(struct rg_registry *reg, const char *epoch)
{
	struct rg_room *room, *tmp;
	int had = 0;

	memcpy(reg->epoch, epoch, RG_EPOCH_LEN);
	HASH_ITER(hh, reg->rooms, room, tmp) {
		if (!room->last_seq)
			continue;
		had = 1;
		rg_room_drop_history(room);
		room->last_seq = 0;
		/* owed nothing that is left: lagged, so that each client resumes and is
		 * told the reset (a cursor of the old epoch) */
		for (struct rg_sub *sub = room->subs; sub; sub = sub->next) {
			sub->next_seq = 0;
			if (sub->lagged)
				sub->lagged(sub->owner);
			sub->armed = 1;
			sub->wake(sub->owner);
		}
	}
	return had;
}

unsigned rg_registry_sweep(struct rg_registry *reg, int64_t now_ms)
{
	struct rg_room *room, *tmp;
	unsigned n = 0;

	DL_FOREACH_SAFE2(reg->idle, room, tmp, idle_next)
	{
		if (now_ms - room->idle_since_ms < (int64_t)room->conf->idle_seconds * 1000)
			continue;
		rg__drop(reg, room);
		n++;
	}
	return n;
}

char *rg_registry_describe(const struct rg_registry *reg, const struct rg_identity *id)
{
	json_t *rooms = json_array(), *patterns = json_array();
	json_t *doc = json_pack("{s:o, s:o}", "rooms", rooms, "patterns", patterns);
	const struct rg_room *room;
	const char *why;
	char *text = NULL;
	int bad = !doc;

	for (room = reg->rooms; room && !bad; room = room->hh.next) {
		const struct rg_room_conf *rc = room->conf;
		if (!rg_auth_room_allows(id, RG_ACT_SUBSCRIBE, rc, room->name, &why))
			continue;
		bad = json_array_append_new(
			rooms, json_pack("{s:s, s:s, s:s, s:i, s:i, s:I}", "name", room->name,
					 "subscribe", rg_policy_name(rc->subscribe), "publish",
					 rg_policy_name(rc->publish), "history", (int)rc->history,
					 "subscribers", (int)room->nsubs, "last_seq",
					 (json_int_t)room->last_seq));
	}
	for (size_t i = 0; i < reg->cfg->nrooms && !bad; i++) {
		const struct rg_room_conf *rc = &reg->cfg->rooms[i];
		char pat[RG_ROOM_NAME_MAX + 2];
		int live = 0;

		if (!rc->is_pattern)
			continue;
		for (room = reg->rooms; room; room = room->hh.next)
			live += room->conf == rc &&
				rg_auth_room_allows(id, RG_ACT_SUBSCRIBE, rc, room->name, &why);
		snprintf(pat, sizeof(pat), "%s*", rc->name);
		bad = json_array_append_new(
			patterns,
			json_pack("{s:s, s:s, s:s, s:s, s:i, s:i}", "pattern", pat, "subscribe",
				  rg_policy_name(rc->subscribe), "publish",
				  rg_policy_name(rc->publish), "bind", rg_bind_name(rc->bind),
				  "history", (int)rc->history, "rooms", live));
	}
	if (!bad)
		text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(doc);
	return text;
}

int rg_registry_cursor_unknown(const struct rg_registry *reg, const struct rg_room *room,
			       int64_t since, const char *epoch)
{
	if (!reg->engine || since < 0 || rg_registry_ready(reg))
		return 0;
	return (epoch && epoch[0] && strcmp(epoch, reg->epoch)) ||
	       since > (int64_t)(room ? room->last_seq : 0);
}

int rg_registry_cursor_stale(const struct rg_registry *reg, const struct rg_room *room,
			     int64_t since, const char *epoch)
{
	return since >= 0 && ((epoch && epoch[0] && strcmp(epoch, reg->epoch)) ||
			      since > (int64_t)room->last_seq);
}
