/*
 * Which web origins may use the gateway from a browser (http.allowed_origins). A
 * request without an Origin header is not a browser's cross-origin request and is not
 * judged here. A request whose Origin names the host it was sent to (its Host or
 * :authority, default ports normalised, the scheme not compared: behind a TLS proxy the
 * gateway listens plain) is the gateway's own page. Any other Origin must be listed,
 * exactly (scheme://host[:port], compared without case), or the list must hold "*".
 * Pure logic: no sockets, no allocation.
 */
#ifndef RG_ORIGIN_H
#define RG_ORIGIN_H

#include "config.h"

#include <stddef.h>

/* 1 if the request with this Origin (olen bytes), sent to host (hlen bytes, the Host
 * header's value; NULL when absent), may be served; 0 if not. */
int rg_origin_allowed(const struct rg_config *cfg, const char *origin, size_t olen,
		      const char *host, size_t hlen);

/* 1 if s is an origin as http.allowed_origins takes it: "*", or scheme "http" or
 * "https", "://", a host (name, IPv4, or [IPv6]), an optional ":port", nothing more. */
int rg_origin_valid(const char *s);

#endif
