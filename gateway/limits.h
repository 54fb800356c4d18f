/*
 * How many connections the gateway holds, in all and per client address
 * (limits.max_connections, limits.max_connections_per_address): a connection is
 * admitted when it is accepted and released when it ends. Pure bookkeeping, no I/O: the
 * transport asks, and keeps the peer it is given until the connection ends.
 *
 * Ownership: the table owns its peers; a peer lives while it has connections, and
 * after them until its publish bucket is full again (rg_conn_limits_sweep).
 */
#ifndef RG_LIMITS_H
#define RG_LIMITS_H

#include <stdint.h>
#include <uthash.h>

/* A token bucket: rate tokens a second, as many at most (a second's burst). */
struct rg_bucket {
	double tokens;
	int64_t last_us; /* when tokens was last brought up to date; 0: never (full) */
};

/* Now, in microseconds of a monotonic clock. */
int64_t rg_mono_us(void);

/* Takes one token at now_us (microseconds, monotonic): 1, or 0 with *retry_ms, how long
 * until one is there. rate 0: no limit. */
int rg_bucket_take(struct rg_bucket *b, uint32_t rate, int64_t now_us, uint32_t *retry_ms);
/* The same for rate tokens a period_us (as many at most). */
int rg_bucket_take_per(struct rg_bucket *b, uint32_t rate, int64_t period_us, int64_t now_us,
		       uint32_t *retry_ms);

/* The period of the room creation buckets (limits.room_creation_rate_*): a minute. */
#define RG_ROOMS_PERIOD_US (60 * 1000000LL)

/* The limits whose refusals are logged (rg_limit_log). */
enum rg_limit {
	RG_LIMIT_PUBLISH_RATE,
	RG_LIMIT_ROOM_RATE,
	RG_LIMIT_JSON_DEPTH,
	RG_LIMIT_MESSAGE_SIZE,
	RG_LIMIT_MEMORY,
	RG_LIMIT_ROOMS, /* limits.max_rooms_per_connection, limits.max_rooms */
	RG_LIMIT_KINDS
};

struct rg_peer {
	unsigned char addr[16]; /* IPv6, or IPv4 as ::ffff:a.b.c.d */
	unsigned conns;
	struct rg_bucket publishes;        /* limits.publish_rate_per_address */
	struct rg_bucket rooms;            /* limits.room_creation_rate_per_address */
	int64_t logged_us[RG_LIMIT_KINDS]; /* when a refusal by each was last logged */
	UT_hash_handle hh;
};

/* The address as text into out: IPv4 as a.b.c.d, "?" when it cannot be written. */
void rg_peer_addr_text(const unsigned char addr[16], char *out, size_t cap);

/* Counts in refusals[k] (an array of RG_LIMIT_KINDS, or NULL) and logs at notice level
 * that a client was refused by a limit (key, the config key; code, what it was
 * answered): conn is its connection's id (log.h; 0: unknown), peer its address (or
 * NULL). The log is bounded, since a flood is refused many times: once per
 * connection and limit (*once holds the connection's bits; NULL: none), and at most
 * once a minute per address and limit. */
void rg_limit_log(uint64_t *refusals, struct rg_peer *peer, unsigned *once, enum rg_limit k,
		  uint64_t conn, const char *key, const char *code);

struct rg_conn_limits {
	struct rg_peer *peers; /* uthash, by addr */
	unsigned total;
	unsigned max_total;    /* 0: no limit */
	unsigned max_per_peer; /* 0: no limit */
};

void rg_conn_limits_init(struct rg_conn_limits *l, unsigned max_total, unsigned max_per_peer);

/* Would a connection from addr be admitted? 0, or -1 with *why (a limit is reached). */
int rg_conn_limits_check(const struct rg_conn_limits *l, const unsigned char addr[16],
			 const char **why);

/* Admits a connection from addr: 0 and *peer (for rg_conn_limits_release), or -1 with
 * *why: a limit is reached, or no memory for a new peer. */
int rg_conn_limits_admit(struct rg_conn_limits *l, const unsigned char addr[16],
			 struct rg_peer **peer, const char **why);

/* The connection admitted with peer ended. */
void rg_conn_limits_release(struct rg_conn_limits *l, struct rg_peer *peer);

/* Forgets the addresses without connections whose buckets are full again (a second
 * after their last publish, a minute after the last room they made): call it every
 * second or so. How many it forgot. */
unsigned rg_conn_limits_sweep(struct rg_conn_limits *l, int64_t now_us);

void rg_conn_limits_cleanup(struct rg_conn_limits *l);

#endif
