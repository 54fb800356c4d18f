/*
 * SIGHUP: the config file is read again and, when it is valid and nothing in it needs
 * a restart, put in force without dropping a connection: rooms (a room gone from it is
 * closed, its members told room_closed), limits, the memory budget, auth keys and API
 * keys, allowed origins, and each TLS listener's certificates and keys (its own and its
 * SNI ones: the same or new files). Otherwise the
 * running config stays, and the log says why in the same path-named lines as at start.
 *
 * What needs a restart: the listeners (ports, addresses, TLS on or off),
 * http.web_root, and limits that would need a larger write buffer than the one made
 * at start (limits.max_message_bytes, limits.max_rooms_per_connection).
 *
 * Ownership: the boot config is the caller's (lws points into it: vhost names,
 * mounts) and must outlive the server; the configs reloads load are the reload
 * state's, each kept until the next one is in force (rg_reload_cleanup frees the last).
 */
#ifndef RG_RELOAD_H
#define RG_RELOAD_H

#include "sni.h"
#include "srv.h"

#include <openssl/ssl.h>

struct rg_reload {
	const struct rg_config *boot;
	struct rg_config *current;         /* NULL until a reload is in force */
	SSL_CTX *tls[RG_LISTEN_MAX];       /* each TLS listener's, as lws made it; NULL: plain */
	struct rg_sni *sni[RG_LISTEN_MAX]; /* each TLS listener's SNI certificates, or NULL */
	lws_retry_bo_t *retry;             /* the listeners' ping policy (ws.ping_*) */
};

/* Once the listeners are made: each TLS listener chooses among its SNI certificates
 * from now on. 0, or -1 (logged). */
int rg_reload_start(struct rg_reload *r);

/* Reads srv's config file again and puts it in force. 0, or -1 (logged; nothing
 * changed). */
int rg_reload(struct rg_reload *r, struct rg_srv *srv);

/* Sets the ping policy the listeners share from cfg. */
void rg_reload_retry(lws_retry_bo_t *retry, const struct rg_config *cfg);

void rg_reload_cleanup(struct rg_reload *r);

#endif
