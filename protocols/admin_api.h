/*
 * The admin API (docs/PROTOCOL.md, "Admin API"), mounted at /admin: rooms with their
 * counters, one room's state, and an operator's orders: close a room, drop its
 * history, close a connection's or a user's streams. Backends only: an API key or an
 * admin token, or without `auth`, a caller on a loopback address. Every order is
 * logged with the connection that gave it.
 */
#ifndef RG_ADMIN_API_H
#define RG_ADMIN_API_H

#include <libwebsockets.h>

extern const struct lws_protocols rg_admin_api_protocol;

#endif
