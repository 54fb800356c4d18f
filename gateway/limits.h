/*
 * How many connections the gateway holds, in all and per client address
 * (limits.max_connections, limits.max_connections_per_address): a connection is
 * admitted when it is accepted and released when it ends. Pure bookkeeping, no I/O: the
 * transport asks, and keeps the peer it is given until the connection ends.
 *
 * Ownership: the table owns its peers; a peer lives while it has connections.
 */
#ifndef RG_LIMITS_H
#define RG_LIMITS_H

#include <uthash.h>

struct rg_peer {
	unsigned char addr[16]; /* IPv6, or IPv4 as ::ffff:a.b.c.d */
	unsigned conns;
	UT_hash_handle hh;
};

struct rg_conn_limits {
	struct rg_peer *peers; /* uthash, by addr */
	unsigned total;
	unsigned max_total;    /* 0: no limit */
	unsigned max_per_peer; /* 0: no limit */
};

void rg_conn_limits_init(struct rg_conn_limits *l, unsigned max_total, unsigned max_per_peer);

/* Admits a connection from addr: 0 and *peer (for rg_conn_limits_release), or -1 with
 * *why: a limit is reached, or no memory for a new peer. */
int rg_conn_limits_admit(struct rg_conn_limits *l, const unsigned char addr[16],
			 struct rg_peer **peer, const char **why);

/* The connection admitted with peer ended. */
void rg_conn_limits_release(struct rg_conn_limits *l, struct rg_peer *peer);

void rg_conn_limits_cleanup(struct rg_conn_limits *l);

#endif
