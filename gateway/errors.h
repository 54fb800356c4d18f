/*
 * Stable error codes answered to clients (docs/PROTOCOL.md, "Error codes"), each with
 * its HTTP status, and the messages every transport shares: one vocabulary for the
 * WebSocket, SSE and the HTTP API. The code strings are part of the v1 wire contract:
 * add, never rename.
 */
#ifndef RG_ERRORS_H
#define RG_ERRORS_H

enum rg_err {
	RG_E_BAD_JSON,
	RG_E_BAD_REQUEST,
	RG_E_UNKNOWN_TYPE,
	RG_E_UNKNOWN_ROOM,
	RG_E_NOT_FOUND,
	RG_E_FORBIDDEN,
	RG_E_NOT_JOINED,
	RG_E_TOO_LARGE,
	RG_E_LIMIT_EXCEEDED,
	RG_E_METHOD_NOT_ALLOWED,
	RG_E_UNSUPPORTED_MEDIA_TYPE,
	RG_E_LENGTH_REQUIRED,
	RG_E_CONFLICT,
	RG_E_NO_PRESENCE,
	RG_E_INTERNAL,
	RG_E_UNAUTHORIZED,
	RG_E_TOKEN_EXPIRED,
	RG_E_RATE_LIMITED,
	RG_E_OVERLOADED,
	RG_E_ROOM_CLOSED,
	RG_E_CLOSED,
	RG_E_UNAVAILABLE,
	RG_E_COUNT
};

/* The wire name, e.g. "bad_json". */
const char *rg_err_code(enum rg_err e);
/* The HTTP status that carries this error. */
int rg_err_http_status(enum rg_err e);
/* The body of an HTTP answer with this error, {"error":{"code":..,"message":why}}:
 * malloc'd, NULL when out of memory. */
char *rg_err_http_body(enum rg_err e, const char *why);

/* The messages more than one place answers, each written once. */
extern const char rg_why_room_name[];      /* a name that is not a room name */
extern const char rg_why_nomem[];          /* RG_E_INTERNAL */
extern const char rg_why_since[];          /* "since" is not a count */
extern const char rg_why_limit[];          /* "limit" of a history query */
extern const char rg_why_no_presence[];    /* RG_E_NO_PRESENCE */
extern const char rg_why_too_many_rooms[]; /* past limits.max_rooms_per_connection */
extern const char rg_why_body_json[];      /* an HTTP body that is not JSON */
extern const char rg_why_body_too_large[]; /* past limits.max_message_bytes */
extern const char rg_why_no_stream[];      /* an SSE stream id that is not open */
extern const char rg_why_unread[];         /* lagged: the connection's answers went unread */
extern const char rg_why_origin[];         /* RG_E_FORBIDDEN: a browser page elsewhere */
extern const char rg_why_name[];           /* a presence name that is not one */
extern const char rg_why_epoch[];          /* an epoch that is not one */
extern const char rg_why_depth[];          /* past limits.max_json_depth */
extern const char rg_why_overloaded[];     /* RG_E_OVERLOADED: over the memory budget */
extern const char rg_why_unavailable[];    /* RG_E_UNAVAILABLE: the cluster's Redis is down */
extern const char rg_why_catching_up[];    /* RG_E_UNAVAILABLE: a cursor not known yet */

/* A room lookup that failed (rg_registry_get: -EINVAL, -ENOENT, -ENOSPC, -ENOBUFS,
 * -ENOMEM) as the error every transport answers, and its message in *why. */
enum rg_err rg_err_room(int rc, const char **why);
/* A publish that failed (rg_registry_publish's or the engine's negative rc: -EEXIST,
 * -ENOBUFS, -EAGAIN, -ENOMEM) likewise. */
enum rg_err rg_err_publish(int rc, const char **why);

#endif
