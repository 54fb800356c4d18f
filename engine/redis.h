/*
 * The Redis engine (gateway/engine.h): several gateway processes share their rooms
 * through one Redis 7. A room's messages are ordered by a Lua script that adds them to
 * the room's stream (its history and its seq numbers, the stream IDs 0-<seq>) and
 * publishes them on the room's channel; every node hears every room's channel on one
 * pub/sub connection and stores every room's messages, in that order. Each time that
 * connection is (re)made, the node reads the streams back from where it is before it
 * publishes again (at start: every room's history). Idempotency keys and the epoch
 * live in Redis too, so every node answers alike.
 *
 * hiredis runs on the server's libev loop: no thread of its own. Two connections
 * (commands, pub/sub), reconnected with a backoff from 100 ms to 5 s; a publish in
 * flight when a connection is lost, or left without a reply for 3 s, is answered
 * -EAGAIN (`unavailable`).
 *
 * Ownership: rg_redis_engine_new's engine is the caller's; it frees it with its
 * ops->free after the last publish is cancelled or answered, and before the loop.
 */
#ifndef RG_ENGINE_REDIS_H
#define RG_ENGINE_REDIS_H

#include "../gateway/config.h"
#include "../gateway/engine.h"

struct ev_loop;
struct rg_registry;

/* An engine for cfg->redis_* on loop, connecting now (in the background); NULL with
 * the reason logged (a password file that cannot be read, out of memory). */
struct rg_engine *rg_redis_engine_new(struct ev_loop *loop, struct rg_registry *reg,
				      const struct rg_config *cfg);

#endif
