/*
 * Access lines (gateway/log.h, rg_log_access) from what lws knows of a request or a
 * stream: its connection's id and address, its HTTP version, TLS. One line per HTTP
 * request answered (rg_http_reply writes it), per WebSocket closed and per SSE stream
 * ended; the transports call rg_access_log with what they counted.
 */
#ifndef RG_ACCESS_H
#define RG_ACCESS_H

#include "../gateway/session.h"

#include <libwebsockets.h>

/* What a transport counts for one request or stream, and what it learns of its
 * connection when it begins: an HTTP/2 stream that ends has left its connection. */
struct rg_access_meter {
	int64_t start_us; /* rg_mono_us() when it began; 0: not begun */
	uint64_t in, out; /* bytes of bodies or messages, read and written */
	unsigned char h2, tls;
};

/* The request or stream of wsi begins now. */
void rg_access_start(struct rg_access_meter *m, struct lws *wsi);
/* The line of a request or stream begun. path: without the query. s: the stream's
 * session (its connection, address, rooms and user are named: an HTTP/2 stream that
 * ends has left its connection), or NULL for a request answered now (wsi's). */
void rg_access_log(struct lws *wsi, const struct rg_access_meter *m, const char *transport,
		   const char *method, const char *path, unsigned status, unsigned close,
		   const struct rg_session *s);

#endif
