#include "request.h"

#include "json_text.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int rg__refuse(struct rg_request *req, enum rg_err err, const char *why)
{
	req->err = err;
	req->why = why;
	return -1;
}

/* Only strings without NUL count: names and ids end up in C strings. */
static int rg__string(json_t *v, const char **s, size_t *len)
{
	if (!json_is_string(v))
		return -1;
	*s = json_string_value(v);
	*len = json_string_length(v);
	return strlen(*s) == *len ? 0 : -1;
}

int rg_count_parse(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!len || len > 19)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

int rg_token_valid(const char *s, size_t len, size_t max)
{
	if (!len || len > max)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* Optional non-negative integer member; -1 when absent, -2 when invalid. */
static int64_t rg__count(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return -1;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -2;
	return json_integer_value(v);
}

static int rg__parse_obj(const char *text, size_t len, json_t *obj, struct rg_request *req)
{
	static const struct {
		const char *name;
		enum rg_req_type type;
	} types[] = {{"join", RG_REQ_JOIN},       {"leave", RG_REQ_LEAVE},
		     {"publish", RG_REQ_PUBLISH}, {"ping", RG_REQ_PING},
		     {"history", RG_REQ_HISTORY}, {"presence", RG_REQ_PRESENCE},
		     {"auth", RG_REQ_AUTH}};
	const char *s;
	size_t n;
	json_t *v;

	if ((v = json_object_get(obj, "id"))) {
		if (rg__string(v, &s, &n) || !rg_token_valid(s, n, RG_ID_MAX))
			return rg__refuse(
				req, RG_E_BAD_REQUEST,
				"id: expected a string of 1..64 bytes, no control characters");
		memcpy(req->id, s, n + 1);
	}
	v = json_object_get(obj, "type");
	if (!v)
		return rg__refuse(req, RG_E_BAD_REQUEST, "type: missing");
	if (rg__string(v, &s, &n))
		return rg__refuse(req, RG_E_BAD_REQUEST, "type: expected a string");
	size_t i = 0;
	while (i < sizeof(types) / sizeof(types[0]) && strcmp(types[i].name, s))
		i++;
	if (i == sizeof(types) / sizeof(types[0]))
		return rg__refuse(req, RG_E_UNKNOWN_TYPE,
				  "type: expected one of join, leave, publish, history, presence, "
				  "ping, auth");
	req->type = types[i].type;
	if (req->type == RG_REQ_PING)
		return 0;
	if (req->type == RG_REQ_AUTH) {
		/* verified by the session, which knows how long a token may be */
		if (rg__string(json_object_get(obj, "token"), &s, &n) || !n)
			return rg__refuse(req, RG_E_BAD_REQUEST, "token: expected a string");
		if (!(req->data = malloc(n + 1)))
			return rg__refuse(req, RG_E_INTERNAL, rg_why_nomem);
		memcpy(req->data, s, n + 1);
		req->data_len = n;
		return 0;
	}

	v = json_object_get(obj, "room");
	if (!v)
		return rg__refuse(req, RG_E_BAD_REQUEST, "room: missing");
	if (rg__string(v, &s, &n) || !rg_room_name_valid(s, n))
		return rg__refuse(req, RG_E_BAD_REQUEST, rg_why_room_name);
	memcpy(req->room, s, n + 1);
	req->room_len = n;

	if (req->type == RG_REQ_JOIN || req->type == RG_REQ_HISTORY) {
		if ((req->since = rg__count(obj, "since")) == -2)
			return rg__refuse(req, RG_E_BAD_REQUEST, rg_why_since);
	}
	if ((req->type == RG_REQ_JOIN || req->type == RG_REQ_HISTORY) &&
	    (v = json_object_get(obj, "epoch"))) {
		if (rg__string(v, &s, &n) || !rg_epoch_valid(s, n))
			return rg__refuse(req, RG_E_BAD_REQUEST, rg_why_epoch);
		memcpy(req->epoch, s, n + 1);
	}
	if (req->type == RG_REQ_HISTORY) {
		int64_t limit = rg__count(obj, "limit");
		if (limit == 0 || limit == -2 || limit > RG_HISTORY_LIMIT_MAX)
			return rg__refuse(req, RG_E_BAD_REQUEST, rg_why_limit);
		req->limit = limit < 0 ? 0 : (unsigned)limit;
	}
	if (req->type == RG_REQ_JOIN && (v = json_object_get(obj, "name"))) {
		if (rg__string(v, &s, &n) || !rg_token_valid(s, n, RG_NAME_MAX))
			return rg__refuse(req, RG_E_BAD_REQUEST, rg_why_name);
		memcpy(req->name, s, n + 1);
	}
	if (req->type != RG_REQ_PUBLISH)
		return 0;

	if (!json_object_get(obj, "data"))
		return rg__refuse(req, RG_E_BAD_REQUEST, "data: missing");
	const char *span;
	size_t span_len;
	if (rg_json_member_span(text, len, "data", &span, &span_len))
		return rg__refuse(req, RG_E_BAD_REQUEST, "data: missing");
	req->data = malloc(span_len ? span_len : 1);
	if (!req->data)
		return rg__refuse(req, RG_E_INTERNAL, rg_why_nomem);
	req->data_len = rg_json_minify(span, span_len, req->data);
	return 0;
}

int rg_request_parse(const char *text, size_t len, struct rg_request *req)
{
	json_error_t jerr;
	int rc;

	memset(req, 0, sizeof(*req));
	req->since = -1;
	json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!obj)
		return rg__refuse(req, RG_E_BAD_JSON, "the message is not valid JSON");
	if (!json_is_object(obj))
		rc = rg__refuse(req, RG_E_BAD_REQUEST, "expected a JSON object");
	else
		rc = rg__parse_obj(text, len, obj, req);
	json_decref(obj);
	return rc;
}

void rg_request_clear(struct rg_request *req)
{
	free(req->data);
	req->data = NULL;
}

int rg_body_parse(const char *text, size_t len, char **out, size_t *out_len, enum rg_err *err,
		  const char **why)
{
	json_t *v;

	if (!len) {
		*err = RG_E_BAD_REQUEST;
		*why = "empty body: expected a JSON value";
		return -1;
	}
	v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	if (!v) {
		*err = RG_E_BAD_JSON;
		*why = rg_why_body_json;
		return -1;
	}
	json_decref(v);
	*out = malloc(len);
	if (!*out) {
		*err = RG_E_INTERNAL;
		*why = rg_why_nomem;
		return -1;
	}
	*out_len = rg_json_minify(text, len, *out);
	return 0;
}
