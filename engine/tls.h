/*
 * TLS to Redis (cluster.redis.tls) for Debian bookworm's hiredis 0.14, which speaks plain
 * TCP or a UNIX socket only: the relay listens on a UNIX socket in a private directory
 * (mode 0700) and carries each connection made to it to Redis over TLS (OpenSSL: TLS
 * 1.2 or later, the server's certificate verified against the configured CA and name,
 * an optional client certificate), on the gateway's own libev loop. The engine's
 * hiredis links connect to rg_tls_relay_path() instead of Redis.
 *
 * A connection that cannot be carried (Redis unreachable, a failed handshake) is
 * closed on both sides: hiredis sees its link closed, and the engine reconnects as
 * for any loss. Each new reason is logged once.
 *
 * Ownership: the engine makes and frees its relay; freeing closes every connection
 * and removes the socket and its directory.
 */
#ifndef RG_ENGINE_TLS_H
#define RG_ENGINE_TLS_H

#include <stddef.h>

struct ev_loop;
struct rg_config;
struct rg_tls_relay;

/* A relay to host:port as cfg's cluster.redis.tls says; NULL with the reason in why
 * (a certificate or key that does not load, no socket). */
struct rg_tls_relay *rg_tls_relay_new(struct ev_loop *loop, const char *host, int port,
				      const struct rg_config *cfg, char *why, size_t cap);
const char *rg_tls_relay_path(const struct rg_tls_relay *t);
void rg_tls_relay_free(struct rg_tls_relay *t);

#endif
