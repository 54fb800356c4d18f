/* The admin API as the registry and sessions see it: rooms' documents, a room closed and
 * its members told, a history dropped and a member behind it lagged, sessions closed by
 * connection and by user (gateway/admin.c, rg_registry_close_room, rg_registry_kick,
 * rg_room_drop_history). */
#include "../check.h"
#include "drain.h"
#include "fixtures.h"

#include "../../../gateway/admin.h"
#include "../../../gateway/session.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

static void wake(void *owner)
{
	(void)owner;
}

static int handle(struct rg_session *s, const char *text)
{
	return rg_session_handle(s, text, strlen(text));
}

/* The document's member key of the room called name in {"rooms": [...]}. */
static json_int_t room_field(const char *doc, const char *name, const char *key)
{
	json_t *d = json_loads(doc, 0, NULL), *r;
	size_t i;
	json_int_t v = -1;

	json_array_foreach(json_object_get(d, "rooms"), i, r)
		if (!strcmp(json_string_value(json_object_get(r, "name")), name))
			v = json_integer_value(json_object_get(r, key));
	json_decref(d);
	return v;
}

static void authenticate(struct rg_session *s, const char *sub)
{
	struct rg_identity id = {.authenticated = 1};

	snprintf(id.sub, sizeof(id.sub), "%s", sub);
	CHECK(rg_session_authenticate(s, &id) == 0);
}

int main(void)
{
	struct rg_registry reg;
	struct rg_session a, b, c;
	struct rg_room *r;
	char *t;
	int flags;

	CHECK(rg_registry_init(&reg, &fx_cfg) == 0);
	rg_session_init(&a, &reg, RG_FMT_WS, wake, NULL);
	rg_session_init(&b, &reg, RG_FMT_WS, wake, NULL);
	rg_session_init(&c, &reg, RG_FMT_SSE, wake, NULL);
	a.conn = 7, b.conn = 8, c.conn = 8; /* b and c: one HTTP/2 connection */
	authenticate(&b, "mallory");
	authenticate(&c, "mallory");
	authenticate(&a, "alice");
	CHECK(handle(&a, "{\"type\":\"join\",\"room\":\"big\"}") == 0);
	CHECK(handle(&b, "{\"type\":\"join\",\"room\":\"big\"}") == 0);
	struct rg_join j = {.room = "p:x", .len = 3, .since = -1};
	CHECK(rg_session_join(&c, &j) == 0);
	for (int i = 0; i < 3; i++)
		CHECK(handle(&a, "{\"type\":\"publish\",\"room\":\"big\",\"data\":\"xyz\"}") == 0);
	drain(&a, NULL);
	drain(&c, NULL);

	/* the rooms' counters */
	t = rg_admin_rooms(&reg);
	CHECK(t != NULL);
	CHECK(room_field(t, "big", "subscribers") == 2 && room_field(t, "big", "last_seq") == 3);
	CHECK(room_field(t, "big", "stored") == 3 && room_field(t, "big", "first_seq") == 1);
	CHECK(room_field(t, "big", "stored_bytes") > 3 * 5);
	CHECK(room_field(t, "a", "idle_seconds") >= 0 && room_field(t, "p:x", "subscribers") == 1);
	CHECK(t && strstr(t, "\"name\":\"p:x\",") && strstr(t, "\"pattern\":\"p:*\""));
	free(t);

	/* one room's state: its config and members (b behind: it has read nothing) */
	CHECK(rg_registry_get(&reg, "big", 3, 0, &r) == 0);
	t = rg_admin_room(r);
	CHECK(t && strstr(t, "\"config\":{\"history\":100,"));
	CHECK(t &&
	      strstr(t, "{\"conn\":7,\"transport\":\"ws\",\"next_seq\":4,\"user\":\"alice\"}"));
	CHECK(t &&
	      strstr(t, "{\"conn\":8,\"transport\":\"ws\",\"next_seq\":1,\"user\":\"mallory\"}"));
	CHECK(t && !strstr(t, "members_more"));
	free(t);

	/* its history dropped: seqs go on; b, which still needed it, is lagged */
	CHECK(rg_room_drop_history(r) == 3);
	CHECK(r->count == 0 && rg_room_oldest_seq(r) == 4 && r->last_seq == 3);
	drain(&b, &flags);
	CHECK(flags & RG_FILL_LAGGED);
	CHECK(handle(&a, "{\"type\":\"publish\",\"room\":\"big\",\"data\":1}") == 0);
	CHECK(strstr(drain(&a, NULL), "\"seq\":4") != NULL);

	/* closed: its members told and left, its messages dropped, its seqs kept */
	CHECK(rg_registry_close_room(&reg, r) == 2);
	CHECK(a.nsubs == 0 && r->count == 0 && r->last_seq == 4);
	CHECK(strstr(drain(&a, NULL), "\"code\":\"room_closed\",\"room\":\"big\",\"message\":\"the "
				      "room was closed by an operator\"") != NULL);
	CHECK(handle(&a, "{\"type\":\"join\",\"room\":\"big\"}") == 0);
	CHECK(strstr(drain(&a, NULL), "\"type\":\"joined\",\"room\":\"big\",\"seq\":4") != NULL);

	/* a pattern room that never held a message goes with its members */
	CHECK(rg_registry_get(&reg, "p:x", 3, 0, &r) == 0);
	CHECK(rg_registry_close_room(&reg, r) == 1);
	CHECK(rg_registry_get(&reg, "p:x", 3, 0, &r) == -ENOENT);
	drain(&c, NULL);

	/* sessions closed: by connection (b and c share 8), by user */
	CHECK(rg_registry_kick(&reg, 9, NULL) == 0);
	CHECK(rg_registry_kick(&reg, 0, "nobody") == 0);
	CHECK(rg_registry_kick(&reg, 0, "mallory") == 2);
	CHECK(strstr(drain(&b, &flags), "\"code\":\"closed\"") != NULL && (flags & RG_FILL_END));
	CHECK(b.end_err == RG_E_CLOSED && c.ending);
	CHECK(rg_registry_kick(&reg, 7, NULL) == 1);
	CHECK(strstr(drain(&a, &flags),
		     "\"code\":\"closed\",\"message\":\"closed by an operator\"") &&
	      (flags & RG_FILL_END));
	/* a session ending already is not told twice */
	CHECK(rg_registry_kick(&reg, 7, NULL) == 1);
	CHECK(strcmp(drain(&a, NULL), "") == 0);

	rg_session_cleanup(&a);
	rg_session_cleanup(&b);
	rg_session_cleanup(&c);
	CHECK(reg.sessions == NULL);
	rg_registry_cleanup(&reg);
	CHECK(reg.mem.used == 0);
	return check_done("admin");
}
