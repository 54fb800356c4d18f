#include "admin.h"

#include "session.h"

#include <jansson.h>

/* What the stored messages weigh (rg_msg_weight): the room's bytes from its first. */
static uint64_t rg__stored_bytes(const struct rg_room *room)
{
	const struct rg_msg *m = room->count ? rg_room_get(room, rg_room_first_seq(room)) : NULL;

	return m ? room->bytes - (m->end_bytes - rg_msg_weight(m)) : 0;
}

/* A room's counters: name, its pattern, subscribers, seqs, what it stores, how long it
 * has had no subscriber. */
static json_t *rg__room(const struct rg_room *room, int64_t now_ms)
{
	const struct rg_room_conf *rc = room->conf;
	json_t *o =
		json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "name", room->name, "subscribers",
			  (json_int_t)room->nsubs, "last_seq", (json_int_t)room->last_seq,
			  "first_seq", (json_int_t)rg_room_first_seq(room), "oldest_seq",
			  (json_int_t)rg_room_oldest_seq(room), "stored", (json_int_t)room->count,
			  "stored_bytes", (json_int_t)rg__stored_bytes(room));

	if (o && rc->is_pattern)
		json_object_set_new(o, "pattern", json_sprintf("%s*", rc->name));
	if (o && !room->nsubs)
		json_object_set_new(o, "idle_seconds",
				    json_integer((now_ms - room->idle_since_ms) / 1000));
	return o;
}

char *rg_admin_rooms(const struct rg_registry *reg)
{
	json_t *rooms = json_array(), *doc = json_pack("{s:o}", "rooms", rooms);
	int64_t now = rg_now_ms();
	char *text = NULL;
	int bad = !doc;

	for (const struct rg_room *r = reg->rooms; r && !bad; r = r->hh.next)
		bad = json_array_append_new(rooms, rg__room(r, now));
	if (!bad)
		text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(doc);
	return text;
}

/* A member: the session of a subscription (session.c attaches them, owner: it). */
static json_t *rg__member(const struct rg_sub *sub)
{
	const struct rg_session *s = sub->owner;
	const struct rg_identity *id = rg_session_identity(s);
	json_t *o = json_pack("{s:I, s:s, s:I}", "conn", (json_int_t)s->conn, "transport",
			      s->fmt == RG_FMT_WS ? "ws" : "sse", "next_seq",
			      (json_int_t)sub->next_seq);

	if (o && id->authenticated && id->sub[0])
		json_object_set_new(o, "user", json_string(id->sub));
	return o;
}

/* The config entry's keys an operator asks about. */
static json_t *rg__conf(const struct rg_room_conf *rc)
{
	return json_pack("{s:I, s:I, s:s, s:b, s:s, s:s}", "history", (json_int_t)rc->history,
			 "history_bytes", (json_int_t)rc->history_bytes, "on_lag",
			 rc->on_lag == RG_LAG_SKIP ? "skip" : "disconnect", "presence",
			 rc->presence, "subscribe", rg_policy_name(rc->subscribe), "publish",
			 rg_policy_name(rc->publish));
}

char *rg_admin_room(const struct rg_room *room)
{
	json_t *doc = rg__room(room, rg_now_ms()), *members = json_array();
	unsigned listed = 0;
	char *text = NULL;

	if (!doc) {
		json_decref(members);
		return NULL;
	}
	/* json_object_set_new takes its value, even when it fails */
	if (json_object_set_new(doc, "config", rg__conf(room->conf))) {
		json_decref(members);
		goto out;
	}
	if (json_object_set_new(doc, "members", members))
		goto out;
	for (const struct rg_sub *sub = room->subs; sub && listed < RG_ADMIN_MEMBERS_MAX;
	     sub = sub->next, listed++)
		if (json_array_append_new(members, rg__member(sub)))
			goto out;
	if (room->nsubs > listed &&
	    json_object_set_new(doc, "members_more",
				json_integer((json_int_t)(room->nsubs - listed))))
		goto out;
	text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(doc);
	return text;
}
