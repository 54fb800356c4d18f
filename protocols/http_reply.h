/*
 * A JSON answer to one HTTP request, for the SSE and API protocols: the headers go
 * out at once, the body on the next HTTP_WRITEABLE (lws wants one write per
 * writeable). The reply owns its body until it is written or cleared.
 */
#ifndef RG_HTTP_REPLY_H
#define RG_HTTP_REPLY_H

#include "../gateway/errors.h"

#include <libwebsockets.h>

struct rg_http_reply {
	unsigned char *buf; /* LWS_PRE headroom, then the body */
	size_t len;
	int close_after; /* the request body was not read: do not reuse the connection */
};

/* Answers status with body (JSON text, copied); allow: an Allow header value or
 * NULL. 0, or -1: the caller returns -1 from its callback. */
int rg_http_reply_json(struct lws *wsi, struct rg_http_reply *r, unsigned status, const char *body,
		       size_t len, const char *allow);
/* {"error":{"code":..,"message":..}} with the code's status. */
int rg_http_reply_error(struct lws *wsi, struct rg_http_reply *r, enum rg_err err, const char *why,
			const char *allow);
/* From HTTP_WRITEABLE: 1 if a reply was pending (then *ret is the callback's
 * return value), 0 if there was none. */
int rg_http_reply_writable(struct lws *wsi, struct rg_http_reply *r, int *ret);
void rg_http_reply_clear(struct rg_http_reply *r);

/* How an HTTP/1.1 request frames its body, checked as RFC 9112 6.3 asks: NULL when
 * it is unambiguous, else why not (Content-Length with Transfer-Encoding, a repeated
 * or non-numeric Content-Length), to be answered 400 with the connection closed: a
 * server and a proxy in front of it that read such a request differently would
 * disagree on where the next request starts. HTTP/2 frames its own bodies: NULL. */
const char *rg_http_framing_error(struct lws *wsi);

/* The media type of the request without parameters, lowercased, into out. */
void rg_http_media_type(struct lws *wsi, char *out, size_t cap);

#endif
