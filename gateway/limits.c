#include "limits.h"

#include <stdlib.h>
#include <string.h>

void rg_conn_limits_init(struct rg_conn_limits *l, unsigned max_total, unsigned max_per_peer)
{
	memset(l, 0, sizeof(*l));
	l->max_total = max_total;
	l->max_per_peer = max_per_peer;
}

int rg_conn_limits_admit(struct rg_conn_limits *l, const unsigned char addr[16],
			 struct rg_peer **peer, const char **why)
{
	struct rg_peer *p;

	if (l->max_total && l->total >= l->max_total) {
		*why = "limits.max_connections reached";
		return -1;
	}
	HASH_FIND(hh, l->peers, addr, 16, p);
	if (p && l->max_per_peer && p->conns >= l->max_per_peer) {
		*why = "limits.max_connections_per_address reached for this address";
		return -1;
	}
	if (!p) {
		if (!(p = calloc(1, sizeof(*p)))) {
			*why = "out of memory";
			return -1;
		}
		memcpy(p->addr, addr, 16);
		HASH_ADD(hh, l->peers, addr, 16, p);
	}
	p->conns++;
	l->total++;
	*peer = p;
	return 0;
}

void rg_conn_limits_release(struct rg_conn_limits *l, struct rg_peer *peer)
{
	l->total--;
	if (--peer->conns)
		return;
	HASH_DEL(l->peers, peer);
	free(peer);
}

void rg_conn_limits_cleanup(struct rg_conn_limits *l)
{
	struct rg_peer *p, *tmp;

	HASH_ITER(hh, l->peers, p, tmp) {
		HASH_DEL(l->peers, p);
		free(p);
	}
	l->total = 0;
}
