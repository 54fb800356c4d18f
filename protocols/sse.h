/*
 * Server-Sent Events at /events?room=a[&room=b...] (docs/PROTOCOL.md): an lws HTTP
 * callback mount that subscribes one session to the named rooms and streams their
 * messages as text/event-stream, with a periodic comment that is both the keepalive
 * and, on lws 4.1.6, the only way a vanished HTTP/1.1 client is noticed.
 */
#ifndef RG_SSE_H
#define RG_SSE_H

#include <libwebsockets.h>

extern const struct lws_protocols rg_sse_protocol;

#endif
