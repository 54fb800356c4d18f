#include "access.h"

#include "srv.h"

#include "../gateway/limits.h"
#include "../gateway/log.h"

#include <stdio.h>
#include <string.h>

/* Room names, comma-separated, as many as fit in out, then "+N" for the rest. */
static void rg__rooms(const struct rg_session *s, char *out, size_t cap)
{
	size_t len = 0;
	unsigned left = s->nsubs;

	out[0] = '\0';
	for (const struct rg_session_sub *e = s->subs; e; e = e->next, left--) {
		const char *name = e->sub.room ? e->sub.room->name : "?";
		size_t n = strlen(name);
		if (len + n + 2 + 12 > cap) { /* keep room for ",+N" */
			snprintf(out + len, cap - len, "%s+%u", len ? "," : "", left);
			return;
		}
		len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "", name);
	}
}

void rg_access_start(struct rg_access_meter *m, struct lws *wsi)
{
	struct rg_conn *c = rg_conn_of(wsi);

	if (c)
		c->served = 1;
	*m = (struct rg_access_meter){
		.start_us = rg_mono_us(),
		.h2 = lws_get_network_wsi(wsi) != wsi,
		.tls = lws_is_ssl(lws_get_network_wsi(wsi)) != 0,
	};
}

void rg_access_log(struct lws *wsi, const struct rg_access_meter *m, const char *transport,
		   const char *method, const char *path, unsigned status, unsigned close,
		   const struct rg_session *s)
{
	char peer[64] = "?", rooms[512];
	const struct rg_identity *id = s ? rg_session_identity(s) : NULL;
	const struct rg_conn *c = s ? NULL : rg_conn_of(wsi);
	const struct rg_peer *from = s ? s->peer : c ? c->peer : NULL;
	struct rg_access a = {
		.conn = s   ? s->conn
			: c ? c->id
			    : 0,
		.peer = peer,
		.transport = transport,
		.version = m->h2 ? "2" : "1.1",
		.tls = m->tls,
		.method = method,
		.path = path,
		.status = status,
		.close = close,
		.rooms = s && s->nsubs ? rooms : NULL,
		.user = id && id->sub[0] ? id->sub : NULL,
		.bytes_in = m->in,
		.bytes_out = m->out,
		.duration_us = m->start_us ? rg_mono_us() - m->start_us : 0,
	};

	if (from)
		rg_peer_addr_text(from->addr, peer, sizeof(peer));
	if (a.rooms)
		rg__rooms(s, rooms, sizeof(rooms));
	rg_log_access(&a);
}
