/*
 * The HTTP API (docs/PROTOCOL.md): POST /rooms/{room}/messages publishes as the
 * trusted server, GET /rooms lists rooms, GET /healthz answers while the loop runs.
 * Mounted at /rooms and /healthz as lws callback mounts.
 */
#ifndef RG_HTTP_API_H
#define RG_HTTP_API_H

#include <libwebsockets.h>

extern const struct lws_protocols rg_http_api_protocol;

#endif
