/*
 * The WebSocket chat protocol "roomgate.v1" (docs/PROTOCOL.md), an lws protocol
 * plugin: built statically into the binary (LWS_PLUGIN_STATIC: rg_ws_chat_protocol),
 * and as libprotocol_roomgate_chat.so exporting the lws_plugin_protocol_t
 * roomgate_chat, which any lws 4.1.6 server loads with lws_plugins_init() and serves
 * with the per-vhost option "config" (docs/OPERATIONS.md, "Embedding the chat
 * protocol"). In roomgate it is protocols[0] of every vhost so that a client offering
 * no subprotocol lands here too; plain HTTP that reaches it is passed to lws's default
 * HTTP handler (static files).
 */
#ifndef RG_WS_CHAT_H
#define RG_WS_CHAT_H

#include <libwebsockets.h>

#if defined(LWS_PLUGIN_STATIC)
extern const struct lws_protocols rg_ws_chat_protocol;
#endif

#endif
