#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum rg_log_level rg__max = RG_LOG_NOTICE, rg__min;
static enum rg_log_format rg__format = RG_LOG_TEXT;
static int rg__access = 1;
static double rg__tokens = RG_LOG_BURST, rg__last; /* token bucket; monotonic seconds */
static unsigned long rg__dropped;

static const char *const rg__names[] = {"ERROR", "WARN", "NOTICE", "INFO"};
static const char *const rg__json_names[] = {"error", "warn", "notice", "info"};

static double rg__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 1 when a line may be written now. */
static int rg__take(void)
{
	double now = rg__now();

	if (rg__last > 0) {
		rg__tokens += (now - rg__last) * RG_LOG_RATE;
		if (rg__tokens > RG_LOG_BURST)
			rg__tokens = RG_LOG_BURST;
	}
	rg__last = now;
	if (rg__tokens < 1)
		return 0;
	rg__tokens -= 1;
	return 1;
}

void rg_log_set_level(enum rg_log_level max)
{
	rg__max = max > rg__min ? max : rg__min;
}

enum rg_log_level rg_log_get_level(void)
{
	return rg__max;
}

void rg_log_force_level(enum rg_log_level min)
{
	rg__min = min;
	rg_log_set_level(rg__max);
}

void rg_log_set_format(enum rg_log_format f)
{
	rg__format = f;
}

void rg_log_set_access(int on)
{
	rg__access = on;
}

/* A line being composed. A string field stops short of RG__TAIL bytes before the end,
 * between two characters, so that what follows it (numbers, the closing quote and
 * brace) always fits and a JSON line stays valid whatever a client put in a field;
 * with the lengths the gateway's fields have, nothing is ever cut. */
#define RG__TAIL 256
struct rg__line {
	char buf[8192];
	size_t len;
};

static void rg__stderr(const char *line, size_t len)
{
	/* One write per line (or per held batch) so lines from lws and from us never
	 * interleave. */
	fwrite(line, 1, len, stderr);
}

static void (*rg__sink)(const char *, size_t) = rg__stderr;

void rg_log_set_sink(void (*sink)(const char *text, size_t len))
{
	rg__sink = sink ? sink : rg__stderr;
}

static void rg__put(struct rg__line *l, const char *s, size_t n)
{
	if (n > sizeof(l->buf) - 1 - l->len)
		n = sizeof(l->buf) - 1 - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

__attribute__((format(printf, 2, 3))) static void rg__putf(struct rg__line *l, const char *fmt, ...)
{
	size_t room = sizeof(l->buf) - l->len;
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(l->buf + l->len, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len += (size_t)n < room ? (size_t)n : room - 1;
}

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t rg__utf8_len(const unsigned char *s, size_t n)
{
	/* lead bytes: C2..DF, E0..EF, F0..F4 (F5..FF and C0, C1 never start a character) */
	size_t len = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
		     : s[0] >= 0xe0 && s[0] <= 0xef ? 3
		     : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
						    : 0;
	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0; /* overlong, a surrogate, past U+10FFFF */
	return len;
}

/* s as a JSON string; a byte that is not UTF-8 becomes U+FFFD (lws's lines are bytes). */
static void rg__json_str(struct rg__line *l, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);

	rg__put(l, "\"", 1);
	for (size_t i = 0; i < n;) {
		size_t u;
		if (l->len + 6 + RG__TAIL > sizeof(l->buf))
			break; /* the longest unit is 6 bytes: \u00XX, \ufffd */
		if (s[i] == '"' || s[i] == '\\') {
			rg__put(l, "\\", 1);
			rg__put(l, (const char *)s + i++, 1);
		} else if (s[i] < 0x20 || s[i] == 0x7f) {
			rg__putf(l, "\\u%04x", s[i++]);
		} else if (s[i] < 0x80) {
			rg__put(l, (const char *)s + i++, 1);
		} else if ((u = rg__utf8_len(s + i, n - i))) {
			rg__put(l, (const char *)s + i, u);
			i += u;
		} else {
			rg__put(l, "\\ufffd", 6);
			i++;
		}
	}
	rg__put(l, "\"", 1);
}

/* s in a text line: control bytes (a decoded %0a in a path) as \xNN, so one line stays
 * one line; spaces too where a field must stay one token (space != 0). */
static void rg__text_str(struct rg__line *l, const char *str, int space)
{
	for (const unsigned char *s = (const unsigned char *)str;
	     *s && l->len + 4 + RG__TAIL <= sizeof(l->buf); s++) {
		if (*s < 0x20 || *s == 0x7f || *s == '\\' || (space && (*s == ' ' || *s == '"')))
			rg__putf(l, "\\x%02x", *s);
		else
			rg__put(l, (const char *)s, 1);
	}
}

static void rg__text_kv(struct rg__line *l, const char *key, const char *v)
{
	if (!v)
		return;
	rg__putf(l, " %s=", key);
	rg__text_str(l, v, 1);
}

static void rg__json_kv(struct rg__line *l, const char *key, const char *v)
{
	if (!v)
		return;
	rg__putf(l, ",\"%s\":", key);
	rg__json_str(l, v);
}

/* The line's start: timestamp, level and where it comes from; conn when known. */
static void rg__head(struct rg__line *l, enum rg_log_level lvl, const char *source,
		     const char *type, uint64_t conn)
{
	char stamp[32];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (rg__format == RG_LOG_JSON) {
		rg__putf(l,
			 "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"source\":\"%s\",\"type\":\"%s\"",
			 stamp, ts.tv_nsec / 1000000, rg__json_names[lvl], source, type);
		if (conn)
			rg__putf(l, ",\"conn\":%" PRIu64, conn);
		return;
	}
	rg__putf(l, "%s.%03ldZ roomgate %s: ", stamp, ts.tv_nsec / 1000000, rg__names[lvl]);
	if (conn)
		rg__putf(l, "[conn %" PRIu64 "] ", conn);
	if (strcmp(source, "roomgate"))
		rg__putf(l, "%s: ", source);
}

/* Lines held for the end of the loop pass (rg_log_hold): one write for them all. */
static char rg__held[64 * 1024];
static size_t rg__nheld;
static int rg__holding;

void rg_log_hold(int on)
{
	rg_log_drain();
	rg__holding = on;
}

void rg_log_drain(void)
{
	if (rg__nheld)
		rg__sink(rg__held, rg__nheld);
	rg__nheld = 0;
}

/* An access line (held 1) waits for the pass's end while lines are held; any other line
 * goes out at once, after what was held, so that what an event logs is out before
 * its client sees its effect (a refusal, a close). */
static void rg__out(struct rg__line *l, int held)
{
	if (rg__format == RG_LOG_JSON) {
		/* the closing brace always fits: the body stops short of it */
		if (l->len > sizeof(l->buf) - 3)
			l->len = sizeof(l->buf) - 3;
		rg__put(l, "}", 1);
	}
	l->buf[l->len++] = '\n';
	if (rg__holding && held) {
		if (rg__nheld + l->len > sizeof(rg__held))
			rg_log_drain();
		memcpy(rg__held + rg__nheld, l->buf, l->len);
		rg__nheld += l->len;
		return;
	}
	rg_log_drain();
	rg__sink(l->buf, l->len);
}

static void rg__message(enum rg_log_level lvl, const char *source, uint64_t conn, const char *msg)
{
	struct rg__line l = {.len = 0};

	rg__head(&l, lvl, source, "log", conn);
	if (rg__format == RG_LOG_JSON)
		rg__json_kv(&l, "msg", msg);
	else
		rg__text_str(&l, msg, 0);
	rg__out(&l, 0);
}

void rg_log_flush(void)
{
	char line[96];

	if (!rg__dropped || !rg__take())
		return;
	snprintf(line, sizeof(line), "%lu log lines suppressed (more than %d a second)",
		 rg__dropped, RG_LOG_RATE);
	rg__dropped = 0;
	rg__message(RG_LOG_WARN, "roomgate", 0, line);
}

/* 1 when a line of lvl is to be written (the level, then the rate). */
static int rg__admit(enum rg_log_level lvl)
{
	if (lvl > rg__max)
		return 0;
	if (!rg__take()) {
		rg__dropped++;
		return 0;
	}
	if (rg__dropped) {
		rg__tokens += 1; /* the report does not count against the line */
		rg_log_flush();
	}
	return 1;
}

static void rg__vlog(enum rg_log_level lvl, uint64_t conn, const char *fmt, va_list ap)
{
	char msg[1024];

	if (!rg__admit(lvl))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	rg__message(lvl, "roomgate", conn, msg);
}

void rg_log(enum rg_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rg__vlog(lvl, 0, fmt, ap);
	va_end(ap);
}

void rg_log_conn(enum rg_log_level lvl, uint64_t conn, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rg__vlog(lvl, conn, fmt, ap);
	va_end(ap);
}

void rg_log_lws(enum rg_log_level lvl, const char *line)
{
	if (rg__admit(lvl))
		rg__message(lvl, "lws", 0, line);
}

void rg_log_access(const struct rg_access *a)
{
	struct rg__line l = {.len = 0};
	double ms = (double)a->duration_us / 1000.0;

	if (!rg__access)
		return;
	rg__head(&l, RG_LOG_INFO, "roomgate", "access", a->conn);
	if (rg__format == RG_LOG_JSON) {
		rg__json_kv(&l, "peer", a->peer);
		rg__json_kv(&l, "transport", a->transport);
		rg__json_kv(&l, "http", a->version);
		rg__putf(&l, ",\"tls\":%s", a->tls ? "true" : "false");
		rg__json_kv(&l, "method", a->method);
		rg__json_kv(&l, "path", a->path);
		rg__putf(&l, ",\"status\":%u", a->status);
		if (a->close)
			rg__putf(&l, ",\"close\":%u", a->close);
		rg__json_kv(&l, "rooms", a->rooms);
		rg__json_kv(&l, "user", a->user);
		rg__putf(&l,
			 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64 ",\"duration_ms\":%.3f",
			 a->bytes_in, a->bytes_out, ms);
	} else {
		/* one token per field */
		rg__putf(&l, "access %s", a->transport);
		rg__text_kv(&l, "peer", a->peer ? a->peer : "-");
		rg__text_kv(&l, "method", a->method ? a->method : "-");
		rg__text_kv(&l, "path", a->path ? a->path : "-");
		rg__text_kv(&l, "http", a->version ? a->version : "-");
		rg__putf(&l, " tls=%s status=%u", a->tls ? "yes" : "no", a->status);
		if (a->close)
			rg__putf(&l, " close=%u", a->close);
		rg__text_kv(&l, "rooms", a->rooms);
		rg__text_kv(&l, "user", a->user);
		rg__putf(&l, " in=%" PRIu64 " out=%" PRIu64 " ms=%.3f", a->bytes_in, a->bytes_out,
			 ms);
	}
	rg__out(&l, 1);
}
