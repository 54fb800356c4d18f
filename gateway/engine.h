/*
 * The engine: where a room's messages are ordered when several gateway processes share
 * the rooms (cluster.redis; engine/redis.c). Without one, the default, the registry
 * publishes in-process and at once (rg_registry_publish). With one, a publish is handed
 * to the engine (rg_registry_submit), which answers it later, and every message of a
 * room this node holds, published here or on another node, comes back through
 * rg_registry_deliver in the room's one order, with the seq the engine gave it.
 *
 * An engine is made by the composition root (gateway/main.c) on the server's event
 * loop and runs on it only: no other thread touches rooms.
 *
 * Ownership: a struct rg_pub is the caller's (it is usually embedded in the caller's
 * own request state); the engine keeps a pointer to it until it calls done, once, or
 * until the caller cancels it (rg_pub_cancel), after which the caller may free it.
 */
#ifndef RG_ENGINE_H
#define RG_ENGINE_H

#include <stddef.h>
#include <stdint.h>

struct rg_room;
struct rg_engine;
struct json_t;

/* A publish in flight. rc: 0 (stored as seq), 1 (a duplicate of the message stored as
 * seq under the same idempotency key), -EEXIST (the key holds other data),
 * -EAGAIN (the engine is unavailable: not stored as far as this node knows; a retry
 * with the same key is safe), -ENOMEM. */
struct rg_pub {
	void (*done)(struct rg_pub *p, int rc, uint64_t seq);
	void *engine_ref; /* the engine's, while in flight */
};

struct rg_engine_ops {
	/* 1 while publishes are taken (the engine reaches its store), else 0. */
	int (*ready)(const struct rg_engine *e);
	/* Hands a publish over: 0 (p->done follows, once), or -EAGAIN (unavailable),
	 * -ENOMEM, and done is never called. data: compact JSON text; key: an idempotency
	 * key or NULL. The engine copies what it keeps. */
	int (*publish)(struct rg_engine *e, const struct rg_room *room, const char *data,
		       size_t len, const char *key, struct rg_pub *p);
	/* p->done will not be called. */
	void (*cancel)(struct rg_engine *e, struct rg_pub *p);
	/* Presence rooms: a member on this node was announced to the room's other members
	 * (join 1), or left (join 0). id is the member's on this node (unique among the
	 * room's members here while it is one); user its presence name; sub its token's
	 * sub, or NULL. The engine tells the other nodes, which tell their members
	 * (rg_session_presence_tell), and forgets a node that stops answering. */
	void (*member)(struct rg_engine *e, const struct rg_room *room, const char *id,
		       const char *user, const char *sub, int join);
	/* Appends to users (a JSON array) the names of room's members on other nodes:
	 * 0, or -ENOMEM. */
	int (*members)(const struct rg_engine *e, const char *room, size_t len,
		       struct json_t *users);
	/* A room came alive on this node (its messages are wanted from now on), or is
	 * about to be freed (no longer). */
	void (*room_open)(struct rg_engine *e, struct rg_room *room);
	void (*room_close)(struct rg_engine *e, struct rg_room *room);
	void (*free)(struct rg_engine *e);
};

struct rg_engine {
	const struct rg_engine_ops *ops;
};

struct ev_loop;
struct rg_registry;
struct rg_config;

/* Makes the engine cfg asks for on loop, for reg (engine/redis.h's
 * rg_redis_engine_new): NULL with the reason logged. */
typedef struct rg_engine *(*rg_engine_new_fn)(struct ev_loop *loop, struct rg_registry *reg,
					      const struct rg_config *cfg);

#endif
