/*
 * A JSON answer to one HTTP request, for the SSE and API protocols. On HTTP/1.1 the
 * headers and the body go out together in one write: on the next HTTP_WRITEABLE, or at
 * once from the end of the request's body (rg_http_reply_flush). On HTTP/2 the headers
 * go out at once, the body on the stream's next HTTP_WRITEABLE (lws wants one write per
 * writeable). The reply owns its buffer until it is written or cleared.
 */
#ifndef RG_HTTP_REPLY_H
#define RG_HTTP_REPLY_H

#include "access.h"

#include "../gateway/config.h"
#include "../gateway/errors.h"

#include <libwebsockets.h>

struct rg_http_reply {
	unsigned char *buf; /* LWS_PRE headroom, then what is left to write: on HTTP/1.1
			     * the headers and the body, on HTTP/2 the body */
	size_t len;
	int close_after;      /* the request body is not read: the answer closes the connection
			       * (HTTP/1.1; set before answering) */
	int cors;             /* the request's Origin is allowed: the answer names it in
			       * access-control-allow-origin (set before answering) */
	unsigned retry_after; /* seconds: a Retry-After header when not 0 (set before
			       * answering) */
	/* for the request's access line, written when it is answered (access.h) */
	struct rg_access_meter meter;
	const char *transport;
	char method[8];
	char *path; /* the request's, without the query: malloc'd, or NULL */
};

/* A request begins (LWS_CALLBACK_HTTP, while its headers are there): its access line
 * will name transport ("http", "sse"; a static string), its method and path, and count
 * from now. */
void rg_http_reply_begin(struct lws *wsi, struct rg_http_reply *r, const char *transport);
/* Writes the request's access line: it is answered status with len bytes, by lws (the
 * answers above write theirs). */
void rg_http_reply_access(struct lws *wsi, struct rg_http_reply *r, unsigned status, size_t len);

/* Answers status with body (of the content type type, copied); allow: an Allow header
 * value or NULL. 0, or -1: the caller returns -1 from its callback. */
int rg_http_reply(struct lws *wsi, struct rg_http_reply *r, unsigned status, const char *type,
		  const char *body, size_t len, const char *allow);
/* The same with JSON text. */
int rg_http_reply_json(struct lws *wsi, struct rg_http_reply *r, unsigned status, const char *body,
		       size_t len, const char *allow);
/* {"error":{"code":..,"message":..}} with the code's status. */
int rg_http_reply_error(struct lws *wsi, struct rg_http_reply *r, enum rg_err err, const char *why,
			const char *allow);
/* From HTTP_WRITEABLE: 1 if a reply was pending (then *ret is the callback's
 * return value), 0 if there was none. */
int rg_http_reply_writable(struct lws *wsi, struct rg_http_reply *r, int *ret);
/* From HTTP_BODY_COMPLETION, the request read whole: on HTTP/1.1 a pending answer is
 * written now and the transaction ends, as on its writeable (1, and the callback's
 * return value in *ret); 0 when there is none, or on HTTP/2 (the writeable sends it). */
int rg_http_reply_flush(struct lws *wsi, struct rg_http_reply *r, int *ret);
/* The callbacks a protocol answering with r shares: the end of a body it does not read
 * (the answer waits for it: lws's default would end the transaction before the answer
 * is written) and the writeable that sends the answer. 1 and the callback's return
 * value in *ret when reason was one of those and concerned r, else 0. */
int rg_http_reply_service(struct lws *wsi, enum lws_callback_reasons reason,
			  struct rg_http_reply *r, int *ret);
/* Frees the body; _clear also forgets close_after, cors and the request's path, for
 * the connection's next request. */
void rg_http_reply_free(struct rg_http_reply *r);
void rg_http_reply_clear(struct rg_http_reply *r);

/* How an HTTP/1.1 request frames its body, checked as RFC 9112 6.3 asks: NULL when
 * it is unambiguous, else why not (a Transfer-Encoding with a Content-Length, one whose
 * last coding is not chunked, a repeated or non-numeric Content-Length), to be
 * answered 400 with the connection closed. lws 4.1.6 would frame such a body by the
 * first Content-Length it saw, where a proxy in front may read it otherwise and
 * disagree on where the next request starts. HTTP/2 frames its own bodies: NULL. */
const char *rg_http_framing_error(struct lws *wsi);
/* Writes the error answer of err at once, with connection: close, for a request
 * refused before any protocol took it (its access line names transport); the caller
 * then returns nonzero. 0 or -1. */
int rg_http_refuse_now(struct lws *wsi, const char *transport, enum rg_err err, const char *why);

/* The request's path without its query, into out (NUL-terminated): from the
 * request line on HTTP/1.1, from :path on HTTP/2 (an RFC 8441 WebSocket CONNECT has no
 * request line). 0, or -1 when there is none or it does not fit. */
int rg_http_path(struct lws *wsi, char *out, size_t cap);

/* The request's Origin judged by http.allowed_origins (gateway/origin.h): 0 when it
 * has none (not a browser's cross-origin request), 1 when allowed, -1 when not. */
int rg_http_origin(struct lws *wsi, const struct rg_config *cfg);
/* The CORS headers of an answer to an allowed Origin: access-control-allow-origin
 * naming it, and vary: origin. 0, or -1 when they do not fit. */
int rg_http_cors_headers(struct lws *wsi, unsigned char **p, unsigned char *end);
/* 1 if the request is an OPTIONS (a CORS preflight, from a browser). */
int rg_http_is_options(struct lws *wsi);
/* Answers a CORS preflight of an allowed Origin: 204 with the methods given, the
 * request headers the gateway reads, and a 10-minute max-age. 0, or -1. */
int rg_http_preflight(struct lws *wsi, struct rg_http_reply *r, const char *methods);

/* The media type of the request without parameters, lowercased, into out. */
void rg_http_media_type(struct lws *wsi, char *out, size_t cap);

#endif
