/*
 * The lws face of the gateway: builds the lws context from the config (one vhost per
 * listener, the WebSocket, SSE and HTTP API protocols, the static mount), runs the
 * event loop until SIGINT/SIGTERM, and tears everything down.
 */
#ifndef RG_SERVER_H
#define RG_SERVER_H

#include "../gateway/config.h"

/* 0 after a clean shutdown, -1 when the server could not start (reason logged). */
int rg_server_run(const struct rg_config *cfg);

#endif
