#include "http_reply.h"

#include "srv.h"

#include "../gateway/origin.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *rg__reason(unsigned status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	default:
		return "Error";
	}
}

static int rg__retry_after(struct lws *wsi, unsigned s, unsigned char **p, unsigned char *end)
{
	char v[16];
	int n = snprintf(v, sizeof(v), "%u", s);

	return lws_add_http_header_by_name(
		wsi, (const unsigned char *)"retry-after:", (const unsigned char *)v, n, p, end);
}

static void rg__method(struct lws *wsi, char *out, size_t cap);

void rg_http_reply_begin(struct lws *wsi, struct rg_http_reply *r, const char *transport)
{
	char path[256];

	rg_access_start(&r->meter, wsi);
	r->transport = transport;
	rg__method(wsi, r->method, sizeof(r->method));
	free(r->path);
	/* on HTTP/1.1 lws may let the headers go before a body's end is answered */
	r->path = rg_http_path(wsi, path, sizeof(path)) ? NULL : strdup(path);
}

/* The request's method: lws's name for it on HTTP/1.1, :method on HTTP/2. */
static void rg__method(struct lws *wsi, char *out, size_t cap)
{
	static const char *const names[] = {
		[LWSHUMETH_GET] = "GET",         [LWSHUMETH_POST] = "POST",
		[LWSHUMETH_OPTIONS] = "OPTIONS", [LWSHUMETH_PUT] = "PUT",
		[LWSHUMETH_PATCH] = "PATCH",     [LWSHUMETH_DELETE] = "DELETE",
		[LWSHUMETH_CONNECT] = "CONNECT", [LWSHUMETH_HEAD] = "HEAD"};
	char *uri;
	int ulen, m = lws_http_get_uri_and_method(wsi, &uri, &ulen);

	if (m >= 0 && (size_t)m < sizeof(names) / sizeof(names[0]) && names[m])
		snprintf(out, cap, "%s", names[m]);
	else if (lws_hdr_copy(wsi, out, (int)cap, WSI_TOKEN_HTTP_COLON_METHOD) <= 0)
		snprintf(out, cap, "-");
}

/* The access line of a request answered status with a body of len bytes. A request
 * refused before it began (rg_http_refuse_now) names what its headers say. */
static void rg__access(struct lws *wsi, struct rg_http_reply *r, const char *transport,
		       unsigned status, size_t len)
{
	char method[sizeof(r->method)], path[256];
	int known = r->meter.start_us != 0;

	if (!known) {
		rg_access_start(&r->meter, wsi);
		r->meter.start_us = 0; /* its duration is not known */
		rg__method(wsi, method, sizeof(method));
		if (rg_http_path(wsi, path, sizeof(path)))
			snprintf(path, sizeof(path), "-");
	}
	r->meter.out = len;
	rg_access_log(wsi, &r->meter, transport ? transport : "http", known ? r->method : method,
		      known ? (r->path ? r->path : "-") : path, status, 0, NULL);
}

void rg_http_reply_access(struct lws *wsi, struct rg_http_reply *r, unsigned status, size_t len)
{
	rg__access(wsi, r, r->transport, status, len);
}

int rg_http_reply_json(struct lws *wsi, struct rg_http_reply *r, unsigned status, const char *body,
		       size_t len, const char *allow)
{
	return rg_http_reply(wsi, r, status, "application/json", body, len, allow);
}

/* The headers of an answer into [*p, end), finalized. */
static int rg__headers(struct lws *wsi, struct rg_http_reply *r, unsigned status, const char *type,
		       size_t len, const char *allow, unsigned char **p, unsigned char *end)
{
	return lws_add_http_common_headers(wsi, status, type, len, p, end) ||
			       lws_add_http_header_by_name(
				       wsi, (const unsigned char *)"cache-control:",
				       (const unsigned char *)"no-store", 8, p, end) ||
			       (allow &&
				lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
							    (const unsigned char *)allow,
							    (int)strlen(allow), p, end)) ||
			       (r->retry_after && rg__retry_after(wsi, r->retry_after, p, end)) ||
			       /* RFC 6750 3: a 401 names the scheme that would do */
			       (status == 401 &&
				lws_add_http_header_by_name(
					wsi, (const unsigned char *)"www-authenticate:",
					(const unsigned char *)"Bearer", 6, p, end)) ||
			       (r->close_after &&
				lws_add_http_header_by_name(
					wsi, (const unsigned char *)"connection:",
					(const unsigned char *)"close", 5, p, end)) ||
			       (r->cors && rg_http_cors_headers(wsi, p, end)) ||
			       lws_finalize_http_header(wsi, p, end)
		       ? -1
		       : 0;
}

int rg_http_reply(struct lws *wsi, struct rg_http_reply *r, unsigned status, const char *type,
		  const char *body, size_t len, const char *allow)
{
	enum { HDR_MAX = 1024 };
	int h2 = lws_get_network_wsi(wsi) != wsi;
	unsigned char *start, *p, *end;

	rg_http_reply_free(r);
	/* On HTTP/2 an unread body only concerns its own stream, which the reply ends;
	 * on HTTP/1.1 the next request would start inside it. */
	if (h2)
		r->close_after = 0;
	r->buf = malloc(LWS_PRE + HDR_MAX + len);
	if (!r->buf)
		return -1;
	start = p = r->buf + LWS_PRE;
	end = start + HDR_MAX - 1;
	if (rg__headers(wsi, r, status, type, len, allow, &p, end))
		return -1;
	if (h2) {
		/* the headers are a frame of their own, sent now; the body follows on the
		 * stream's writeable */
		if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) < 0)
			return -1;
		p = start;
	}
	/* HTTP/1.1: headers and body go out in one write (one segment, one syscall) */
	memcpy(p, body, len);
	r->len = (size_t)(p - start) + len;
	rg__access(wsi, r, r->transport, status, len);
	lws_callback_on_writable(wsi);
	return 0;
}

int rg_http_origin(struct lws *wsi, const struct rg_config *cfg)
{
	char origin[256], host[256];
	int o = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);
	int h = lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST);

	if (!lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN))
		return 0;
	if (h <= 0)
		h = lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HTTP_COLON_AUTHORITY);
	if (o <= 0) /* too long to be one we list */
		return -1;
	return rg_origin_allowed(cfg, origin, (size_t)o, h > 0 ? host : NULL, h > 0 ? (size_t)h : 0)
		       ? 1
		       : -1;
}

int rg_http_cors_headers(struct lws *wsi, unsigned char **p, unsigned char *end)
{
	char origin[256];
	int n = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);

	if (n <= 0)
		return 0;
	return lws_add_http_header_by_name(wsi,
					   (const unsigned char *)"access-control-allow-origin:",
					   (const unsigned char *)origin, n, p, end) ||
			       lws_add_http_header_by_name(wsi, (const unsigned char *)"vary:",
							   (const unsigned char *)"origin", 6, p,
							   end)
		       ? -1
		       : 0;
}

int rg_http_is_options(struct lws *wsi)
{
	char m[16];

	return lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0 ||
	       (lws_hdr_copy(wsi, m, sizeof(m), WSI_TOKEN_HTTP_COLON_METHOD) > 0 &&
		!strcmp(m, "OPTIONS"));
}

int rg_http_preflight(struct lws *wsi, struct rg_http_reply *r, const char *methods)
{
	static const char headers[] = "authorization, content-type, idempotency-key, last-event-id";
	unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
					   *end = hdr + sizeof(hdr) - 1;

	rg_http_reply_free(r);
	if (lws_get_network_wsi(wsi) != wsi)
		r->close_after = 0;
	if (!(r->buf = malloc(LWS_PRE + 1)))
		return -1;
	r->len = 0;
	if (lws_add_http_header_status(wsi, HTTP_STATUS_NO_CONTENT, &p, end) ||
	    rg_http_cors_headers(wsi, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-methods:",
					(const unsigned char *)methods, (int)strlen(methods), &p,
					end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-headers:",
					(const unsigned char *)headers, (int)sizeof(headers) - 1,
					&p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-max-age:",
					(const unsigned char *)"600", 3, &p, end) ||
	    lws_add_http_header_content_length(wsi, 0, &p, end) ||
	    (r->close_after &&
	     lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
					 (const unsigned char *)"close", 5, &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	rg__access(wsi, r, r->transport, HTTP_STATUS_NO_CONTENT, 0);
	lws_callback_on_writable(wsi);
	return 0;
}

int rg_http_reply_error(struct lws *wsi, struct rg_http_reply *r, enum rg_err err, const char *why,
			const char *allow)
{
	struct rg_srv *srv = rg_srv_of(wsi);
	char *text = rg_err_http_body(err, why);

	if (srv)
		srv->reg.metrics.errors[err]++;
	int rc = text ? rg_http_reply_json(wsi, r, (unsigned)rg_err_http_status(err), text,
					   strlen(text), allow)
		      : -1;
	free(text);
	return rc;
}

int rg_http_reply_writable(struct lws *wsi, struct rg_http_reply *r, int *ret)
{
	if (!r->buf)
		return 0;
	int n = lws_write(wsi, r->buf + LWS_PRE, r->len, LWS_WRITE_HTTP_FINAL);
	int close_after = r->close_after;
	rg_http_reply_clear(r);
	*ret = (n < 0 || close_after || lws_http_transaction_completed(wsi)) ? -1 : 0;
	return 1;
}

int rg_http_reply_flush(struct lws *wsi, struct rg_http_reply *r, int *ret)
{
	if (!r->buf || lws_get_network_wsi(wsi) != wsi)
		return 0;
	return rg_http_reply_writable(wsi, r, ret);
}

int rg_http_reply_service(struct lws *wsi, enum lws_callback_reasons reason,
			  struct rg_http_reply *r, int *ret)
{
	switch (reason) {
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (rg_http_reply_flush(wsi, r, ret))
			return 1;
		if (r->buf)
			lws_callback_on_writable(wsi);
		*ret = 0;
		return 1;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return rg_http_reply_writable(wsi, r, ret);
	default:
		return 0;
	}
}

void rg_http_reply_free(struct rg_http_reply *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = 0;
}

void rg_http_reply_clear(struct rg_http_reply *r)
{
	rg_http_reply_free(r);
	r->close_after = 0;
	r->cors = 0;
	r->retry_after = 0;
	free(r->path);
	r->path = NULL;
}

/* The value of header h, trailing blanks cut, into v: its length, or -1. */
static int rg__value(struct lws *wsi, enum lws_token_indexes h, char *v, int cap)
{
	int n = lws_hdr_copy(wsi, v, cap, h);

	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	return n;
}

const char *rg_http_framing_error(struct lws *wsi)
{
	static const char why[] = "Content-Length, Transfer-Encoding: the body's length is "
				  "ambiguous (RFC 9112 6.3)";
	int te = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
	char v[64];
	int n;

	if (lws_get_network_wsi(wsi) != wsi)
		return NULL;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
		/* lws keeps a repeated header as a second fragment of the same token */
		if (te || lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, 1) > 0)
			return why;
		n = rg__value(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, v, sizeof(v));
		if (n <= 0 || n > 19 || strspn(v, "0123456789") != (size_t)n)
			return why;
	}
	if (te) { /* its last coding must be chunked (the API then answers 411) */
		n = rg__value(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING, v, sizeof(v));
		if (n < 7 || strncasecmp(v + n - 7, "chunked", 7) ||
		    (n > 7 && !strchr(" ,\t", v[n - 8])))
			return why;
	}
	return NULL;
}

int rg_http_refuse_now(struct lws *wsi, const char *transport, enum rg_err err, const char *why)
{
	struct rg_http_reply r = {.transport = transport};
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
					   *end = buf + sizeof(buf) - 1;
	char *text = rg_err_http_body(err, why);
	size_t len = text ? strlen(text) : 0;
	unsigned status = (unsigned)rg_err_http_status(err);
	int rc = -1;

	if (!text || len >= 512)
		goto out;
	rg__access(wsi, &r, transport, status, len);
	if (lws_get_network_wsi(wsi) != wsi) {
		/* HTTP/2 (an RFC 8441 CONNECT refused): the headers in a frame of their own,
		 * then the body ends the stream */
		if (!lws_add_http_common_headers(wsi, status, "application/json", len, &p, end) &&
		    !lws_finalize_http_header(wsi, &p, end) &&
		    lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) >= 0) {
			memcpy(start, text, len);
			rc = lws_write(wsi, start, len, LWS_WRITE_HTTP_FINAL) < 0 ? -1 : 0;
		}
		goto out;
	}
	/* HTTP/1.1, and the connection closes after it. Written out here: before lws has
	 * taken the request as HTTP (a refused upgrade) it would say HTTP/1.0. */
	int n = snprintf((char *)start, (size_t)(end - start),
			 "HTTP/1.1 %u %s\r\ncontent-type: application/json\r\n"
			 "content-length: %zu\r\nconnection: close\r\n\r\n%s",
			 status, rg__reason(status), len, text);
	if (n > 0 && n < end - start)
		rc = lws_write(wsi, start, (size_t)n, LWS_WRITE_HTTP) < 0 ? -1 : 0;
out:
	free(text);
	return rc;
}

int rg_http_path(struct lws *wsi, char *out, size_t cap)
{
	char *uri;
	int n;

	/* lws keeps the URI under its method's token (GET, POST, ...), or :path on HTTP/2 */
	if (lws_http_get_uri_and_method(wsi, &uri, &n) < 0 || n <= 0)
		n = lws_hdr_copy(wsi, out, (int)cap, WSI_TOKEN_HTTP_COLON_PATH);
	else if ((size_t)n < cap)
		memcpy(out, uri, (size_t)n + 1);
	else
		n = -1;
	if (n <= 0)
		return -1;
	out[strcspn(out, "?")] = '\0';
	return 0;
}

void rg_http_media_type(struct lws *wsi, char *out, size_t cap)
{
	size_t i = 0;

	if (lws_hdr_copy(wsi, out, (int)cap, WSI_TOKEN_HTTP_CONTENT_TYPE) < 0)
		out[0] = '\0';
	while (out[i] && out[i] != ';' && !isspace((unsigned char)out[i])) {
		out[i] = (char)tolower((unsigned char)out[i]);
		i++;
	}
	out[i] = '\0';
}
