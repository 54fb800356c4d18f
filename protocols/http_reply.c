#include "http_reply.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int rg_http_reply_json(struct lws *wsi, struct rg_http_reply *r, unsigned status, const char *body,
		       size_t len, const char *allow)
{
	unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
					  *end = hdr + sizeof(hdr) - 1;

	rg_http_reply_clear(r);
	/* On HTTP/2 an unread body only concerns its own stream, which the reply ends.
	 * On HTTP/1.1 every answer ends its connection: lws 4.1.6 spins forever on a
	 * request pipelined behind a completed one (it waits for POLLOUT in a loop that
	 * never polls), so no request may be left buffered behind ours. */
	r->close_after = lws_get_network_wsi(wsi) == wsi;
	r->buf = malloc(LWS_PRE + len);
	if (!r->buf)
		return -1;
	memcpy(r->buf + LWS_PRE, body, len);
	r->len = len;
	if (lws_add_http_common_headers(wsi, status, "application/json", len, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, &p, end) ||
	    (allow && lws_add_http_header_by_name(
			      wsi, (const unsigned char *)"allow:", (const unsigned char *)allow,
			      (int)strlen(allow), &p, end)) ||
	    (r->close_after &&
	     lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
					 (const unsigned char *)"close", 5, &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	lws_callback_on_writable(wsi);
	return 0;
}

int rg_http_reply_error(struct lws *wsi, struct rg_http_reply *r, enum rg_err err, const char *why,
			const char *allow)
{
	json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", rg_err_code(err), "message", why);
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	int rc = text ? rg_http_reply_json(wsi, r, (unsigned)rg_err_http_status(err), text,
					   strlen(text), allow)
		      : -1;
	free(text);
	json_decref(o);
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

void rg_http_reply_clear(struct rg_http_reply *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = 0;
}

const char *rg_http_framing_error(struct lws *wsi)
{
	char cl[24];
	int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);

	if (lws_get_network_wsi(wsi) != wsi || n <= 0)
		return NULL;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
		return "Content-Length together with Transfer-Encoding";
	/* lws joins a repeated header's values with commas */
	if ((size_t)n >= sizeof(cl) ||
	    lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) != n ||
	    strspn(cl, "0123456789") != (size_t)n)
		return "Content-Length: expected one decimal number";
	return NULL;
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
