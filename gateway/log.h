/*
 * Logging to stderr, one line per call: text (a UTC timestamp, the level, the message)
 * or one JSON object per line (log.format). The single sink for the gateway and
 * (through protocols/server.c) for lws itself. docs/OPERATIONS.md, "Logs", documents
 * both formats and every field.
 *
 * Lines about one connection carry its id (rg_log_conn): the network connection's
 * number, in the order connections were accepted, so all of a client's lines are found
 * together. Nothing a client sends is written verbatim but its address, the request's
 * path (never its query, which may hold a token) and room names: no tokens, keys or
 * message bodies.
 *
 * Bounded: remote peers cause most lines, so no peer may turn its bytes into more log
 * than an operator can keep. Past RG_LOG_BURST lines, at most RG_LOG_RATE lines a
 * second are written; the rest are counted and reported in one line
 * ("N log lines suppressed") by the next line written or by rg_log_flush(). Access
 * lines (rg_log_access) are not rate-limited: there is one per request or connection,
 * which the connection limits bound, and an access log with holes is no record.
 */
#ifndef RG_LOG_H
#define RG_LOG_H

#include <stddef.h>
#include <stdint.h>

enum rg_log_level { RG_LOG_ERR, RG_LOG_WARN, RG_LOG_NOTICE, RG_LOG_INFO };
enum rg_log_format { RG_LOG_TEXT, RG_LOG_JSON };

/* Lines above this level are dropped; RG_LOG_NOTICE by default. */
void rg_log_set_level(enum rg_log_level max);
enum rg_log_level rg_log_get_level(void);
/* --verbose: the level is at least min, whatever rg_log_set_level is given later. */
void rg_log_force_level(enum rg_log_level min);
void rg_log_set_format(enum rg_log_format f);
/* Whether access lines are written (log.access; on by default). */
void rg_log_set_access(int on);

#define RG_LOG_BURST 200
#define RG_LOG_RATE  50

/* Where lines go: stderr (NULL), or sink (tests and fuzzing), each call one or more
 * whole lines. */
void rg_log_set_sink(void (*sink)(const char *text, size_t len));

/* Reports lines suppressed since the last report, if any (called once a second). */
void rg_log_flush(void);

/* With on, access lines are held and written together by rg_log_drain (the server calls
 * it at the end of each event loop pass: one write for a pass's access lines, not one
 * each); any other line goes out at once, after what was held. Off: every line is
 * written at once (at exit, or for a process without such a loop), what was held
 * first. */
void rg_log_hold(int on);
void rg_log_drain(void);

__attribute__((format(printf, 2, 3))) void rg_log(enum rg_log_level lvl, const char *fmt, ...);
/* A line about connection conn (0: none known, as rg_log). */
__attribute__((format(printf, 3, 4))) void rg_log_conn(enum rg_log_level lvl, uint64_t conn,
						       const char *fmt, ...);
/* A line of libwebsockets' own (source "lws"). */
void rg_log_lws(enum rg_log_level lvl, const char *line);

/* One request answered, or one WebSocket or SSE stream ended. Strings may be NULL
 * (the field is left out) and are the caller's. */
struct rg_access {
	uint64_t conn;
	const char *peer;      /* the client's address */
	const char *transport; /* "http", "sse" or "ws" */
	const char *version;   /* HTTP version: "1.1" or "2" */
	int tls;
	const char *method, *path; /* the path without its query */
	unsigned status;           /* the HTTP status answered (a WebSocket: 101) */
	unsigned close;            /* a WebSocket's close code (1006: none), else 0 */
	const char *rooms;         /* a stream's rooms when it ended, comma-separated */
	const char *user;          /* the token's sub */
	uint64_t bytes_in, bytes_out;
	int64_t duration_us;
};
void rg_log_access(const struct rg_access *a);

#define rg_err(...)    rg_log(RG_LOG_ERR, __VA_ARGS__)
#define rg_warn(...)   rg_log(RG_LOG_WARN, __VA_ARGS__)
#define rg_notice(...) rg_log(RG_LOG_NOTICE, __VA_ARGS__)
#define rg_info(...)   rg_log(RG_LOG_INFO, __VA_ARGS__)

#endif
