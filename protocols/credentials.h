/*
 * Who an HTTP request or WebSocket upgrade says it is: the credentials it carries, made
 * into an identity (gateway/auth.h), for the chat, SSE and API protocols alike.
 *
 * Where they come from: `Authorization: Bearer X` (X a JWT, or a backend's API key),
 * else, where the caller allows it, the `token` query argument: a browser's WebSocket
 * and EventSource cannot set headers. Refusals are logged with their reason and the
 * peer's address, never the credential.
 */
#ifndef RG_CREDENTIALS_H
#define RG_CREDENTIALS_H

#include "srv.h"

#include "../gateway/auth.h"

/* 0 when the request carries none (*id anonymous); 1 and *id (the caller's to
 * rg_identity_clear) when they are valid; -1 with *why when they are not: a token that
 * does not verify, a key that is not one, or any credential when auth is off. */
int rg_credentials(struct rg_srv *srv, struct lws *wsi, int query, struct rg_identity *id,
		   const char **why);

/* 1 if the connection of wsi comes from a loopback address: without `auth`, the HTTP
 * API is a backend for these only. */
int rg_credentials_loopback(struct lws *wsi);

/* Who an HTTP API request is (no token= argument: URLs end up in logs): its
 * credentials, or without any and without `auth`, a backend (id->server) when it comes
 * from a loopback address. 0, or -1 with *why (credentials refused). */
int rg_credentials_caller(struct rg_srv *srv, struct lws *wsi, struct rg_identity *id,
			  const char **why);

#endif
