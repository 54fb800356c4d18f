/*
 * Stream steering (POST /streams/{id}/rooms): a JSON body changes an open session's
 * rooms, all or nothing, through the session's public API alone (session.h).
 */
#include "session.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A name of a steering body, in a set that finds repeats in one pass. */
struct rg__name {
	const char *name;
	size_t len;
	UT_hash_handle hh;
};

/* Checks one of the body's name lists: an array of valid, known names, none of which
 * is in the set already (the other list's, or its own earlier ones); adds them. */
static int rg__names(struct rg_session *s, json_t *list, struct rg__name **set,
		     struct rg__name *slots, size_t *used, enum rg_err *err, const char **why)
{
	size_t i;
	json_t *v;

	if (!list)
		return 0;
	if (!json_is_array(list)) {
		*err = RG_E_BAD_REQUEST;
		*why = "join, leave: expected arrays of room names";
		return -1;
	}
	json_array_foreach(list, i, v) {
		const char *name = json_string_value(v);
		size_t len = name ? json_string_length(v) : 0;
		struct rg__name *seen;
		if (!name || strlen(name) != len || !rg_room_name_valid(name, len)) {
			*err = RG_E_BAD_REQUEST;
			*why = rg_why_room_name;
			return -1;
		}
		if (!rg_registry_conf_for(s->reg, name, len)) {
			*err = rg_err_room(-ENOENT, why);
			return -1;
		}
		HASH_FIND(hh, *set, name, len, seen);
		if (seen) {
			*err = RG_E_BAD_REQUEST;
			*why = "a room named twice in join and leave";
			return -1;
		}
		slots[*used].name = name;
		slots[*used].len = len;
		HASH_ADD_KEYPTR(hh, *set, name, len, &slots[*used]);
		(*used)++;
	}
	return 0;
}

int rg_session_steer(struct rg_session *s, const char *body, size_t len, char **answer,
		     enum rg_err *err, const char **why)
{
	json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL), *join, *leave, *v;
	struct rg__name *set = NULL, *slots = NULL;
	size_t i, used = 0, n;
	long final;
	int rc = -1;

	*answer = NULL;
	if (!doc) {
		*err = RG_E_BAD_JSON;
		*why = rg_why_body_json;
		return -1;
	}
	join = json_object_get(doc, "join");
	leave = json_object_get(doc, "leave");
	if (!json_is_object(doc) || (!join && !leave)) {
		*err = RG_E_BAD_REQUEST;
		*why = "expected {\"join\":[...],\"leave\":[...]}";
		goto out;
	}
	n = json_array_size(join) + json_array_size(leave);
	if (n && !(slots = calloc(n, sizeof(*slots)))) {
		*err = RG_E_INTERNAL;
		*why = rg_why_nomem;
		goto out;
	}
	if (rg__names(s, join, &set, slots, &used, err, why) ||
	    rg__names(s, leave, &set, slots, &used, err, why))
		goto out;
	final = (long)s->nsubs;
	json_array_foreach(join, i, v)
		final += !rg_session_joined(s, json_string_value(v), json_string_length(v));
	json_array_foreach(leave, i, v)
		final -= !!rg_session_joined(s, json_string_value(v), json_string_length(v));
	if (final > (long)s->reg->cfg->max_rooms_per_connection) {
		*err = RG_E_LIMIT_EXCEEDED;
		*why = rg_why_too_many_rooms;
		rg_session_log_limit(s, RG_LIMIT_ROOMS, "limits.max_rooms_per_connection", *err);
		goto out;
	}
	/* The stream's presence name (its rooms share it) goes with it to new rooms. */
	char name[RG_NAME_MAX + 1] = "";
	if (s->subs && s->subs->name)
		snprintf(name, sizeof(name), "%s", s->subs->name);
	/* Joins first, quietly, so that a refused one is undone without a trace; the
	 * leaves, which cannot fail, once every join holds. */
	json_array_foreach(join, i, v) {
		struct rg_join j = {.room = json_string_value(v),
				    .len = json_string_length(v),
				    .since = -1,
				    .quiet = 1,
				    .over_limit = 1,
				    .name = name[0] ? name : NULL};
		if (rg_session_join(s, &j)) {
			*err = j.err;
			*why = j.why;
			for (struct rg_session_sub *ss = s->subs, *next; ss; ss = next) {
				next = ss->next;
				if (!ss->announced) /* unannounced: leaves without a trace */
					rg_session_leave(s, ss->sub.room->name,
							 strlen(ss->sub.room->name));
			}
			goto out;
		}
	}
	json_array_foreach(leave, i, v)
		rg_session_leave(s, json_string_value(v), json_string_length(v));
	rg_session_announce(s);
	json_t *rooms = json_object(),
	       *ans = json_pack("{s:s, s:o}", "stream", rg_session_token(s), "rooms", rooms);
	for (struct rg_session_sub *ss = s->subs; ans && ss; ss = ss->next)
		json_object_set_new(rooms, ss->sub.room->name,
				    json_integer((json_int_t)ss->sub.next_seq - 1));
	*answer = ans ? json_dumps(ans, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(ans);
	if (!*answer) {
		*err = RG_E_INTERNAL;
		*why = rg_why_nomem;
		goto out;
	}
	rc = 0;
out:
	HASH_CLEAR(hh, set);
	free(slots);
	json_decref(doc);
	return rc;
}
