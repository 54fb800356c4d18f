#include "errors.h"

#include <errno.h>
#include <jansson.h>

static const struct {
	const char *code;
	int status;
} rg__errs[RG_E_COUNT] = {
	[RG_E_BAD_JSON] = {"bad_json", 400},
	[RG_E_BAD_REQUEST] = {"bad_request", 400},
	[RG_E_UNKNOWN_TYPE] = {"unknown_type", 400},
	[RG_E_UNKNOWN_ROOM] = {"unknown_room", 404},
	[RG_E_NOT_FOUND] = {"not_found", 404},
	[RG_E_FORBIDDEN] = {"forbidden", 403},
	[RG_E_NOT_JOINED] = {"not_joined", 400},
	[RG_E_TOO_LARGE] = {"too_large", 413},
	[RG_E_LIMIT_EXCEEDED] = {"limit_exceeded", 429},
	[RG_E_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405},
	[RG_E_UNSUPPORTED_MEDIA_TYPE] = {"unsupported_media_type", 415},
	[RG_E_LENGTH_REQUIRED] = {"length_required", 411},
	[RG_E_CONFLICT] = {"conflict", 409},
	[RG_E_NO_PRESENCE] = {"presence_disabled", 400},
	[RG_E_INTERNAL] = {"internal", 500},
	[RG_E_UNAUTHORIZED] = {"unauthorized", 401},
	[RG_E_TOKEN_EXPIRED] = {"token_expired", 401},
	[RG_E_RATE_LIMITED] = {"rate_limited", 429},
	[RG_E_OVERLOADED] = {"overloaded", 503},
	[RG_E_ROOM_CLOSED] = {"room_closed", 410},
	[RG_E_CLOSED] = {"closed", 410},
	[RG_E_UNAVAILABLE] = {"unavailable", 503},
};

const char *rg_err_code(enum rg_err e)
{
	return (unsigned)e < RG_E_COUNT ? rg__errs[e].code : "internal";
}

int rg_err_http_status(enum rg_err e)
{
	return (unsigned)e < RG_E_COUNT ? rg__errs[e].status : 500;
}

char *rg_err_http_body(enum rg_err e, const char *why)
{
	json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", rg_err_code(e), "message", why);
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(o);
	return text;
}

const char rg_why_room_name[] = "room: expected 1..128 characters of A-Z a-z 0-9 _ . : @ ~ -";
const char rg_why_nomem[] = "out of memory";
const char rg_why_since[] = "since: expected an integer >= 0";
const char rg_why_limit[] = "limit: expected an integer 1..1000";
const char rg_why_no_presence[] = "this room has no presence";
const char rg_why_too_many_rooms[] = "more rooms than limits.max_rooms_per_connection";
const char rg_why_body_json[] = "the body is not valid JSON";
const char rg_why_body_too_large[] = "the body exceeds limits.max_message_bytes";
const char rg_why_no_stream[] = "no such stream";
const char rg_why_unread[] = "its answers went unread";
const char rg_why_origin[] = "Origin: not the gateway's own, and not in http.allowed_origins";
const char rg_why_name[] = "name: expected 1..64 bytes, no control characters";
const char rg_why_depth[] = "nested deeper than limits.max_json_depth";
const char rg_why_overloaded[] = "the gateway is over its memory budget (limits.memory_mb)";
const char rg_why_unavailable[] = "the cluster's Redis is unreachable: not published; retry (with "
				  "the same id or key it is safe)";
const char rg_why_catching_up[] =
	"this gateway has not yet read the cluster's messages up to this cursor from Redis (it "
	"is starting, or Redis is unreachable): retry shortly, or on another gateway";
const char rg_why_epoch[] = "epoch: expected 1..16 characters of 0-9 a-z";

enum rg_err rg_err_publish(int rc, const char **why)
{
	switch (rc) {
	case -EEXIST:
		*why = "this room stored another message under this idempotency key";
		return RG_E_CONFLICT;
	case -ENOBUFS:
		*why = rg_why_overloaded;
		return RG_E_OVERLOADED;
	case -EAGAIN:
		*why = rg_why_unavailable;
		return RG_E_UNAVAILABLE;
	default:
		*why = rg_why_nomem;
		return RG_E_INTERNAL;
	}
}

enum rg_err rg_err_room(int rc, const char **why)
{
	switch (rc) {
	case -EINVAL:
		*why = rg_why_room_name;
		return RG_E_BAD_REQUEST;
	case -ENOENT:
		*why = "no such room";
		return RG_E_UNKNOWN_ROOM;
	case -ENOSPC:
		*why = "the gateway holds limits.max_rooms rooms, each with a subscriber";
		return RG_E_LIMIT_EXCEEDED;
	case -ENOBUFS:
		*why = rg_why_overloaded;
		return RG_E_OVERLOADED;
	default:
		*why = rg_why_nomem;
		return RG_E_INTERNAL;
	}
}
