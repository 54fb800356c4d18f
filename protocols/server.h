/*
 * The lws face of the gateway: builds the lws context from the config (one vhost per
 * listener, the WebSocket, SSE and HTTP API protocols, the static mount), runs the
 * event loop until SIGINT/SIGTERM, and tears everything down.
 */
#ifndef RG_SERVER_H
#define RG_SERVER_H

#include "../gateway/config.h"
#include "../gateway/engine.h"

/* 0 after a clean shutdown, -1 when the server could not start (reason logged).
 * engine_new makes the engine when cfg shares rooms with other gateways
 * (cluster.redis), on the server's loop; the server frees it. */
int rg_server_run(const struct rg_config *cfg, rg_engine_new_fn engine_new);

#endif
