/*
 * The WebSocket chat protocol "roomgate.v1" (docs/PROTOCOL.md), an lws protocol
 * built statically into the binary. It is protocols[0] of every vhost so that a
 * client offering no subprotocol lands here too; plain HTTP that reaches it is
 * passed to lws's default HTTP handler (static files).
 */
#ifndef RG_WS_CHAT_H
#define RG_WS_CHAT_H

#include <libwebsockets.h>

extern const struct lws_protocols rg_ws_chat_protocol;

#endif
