/* The log sink (log.h): both formats, data-driven (escaping, fields, truncation); levels;
 * lines caused by remote peers cannot flood it, and access lines are never dropped. */
#include "../check.h"

#include "../../../gateway/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Counts the lines of f and those that contain needle. */
static int count_lines(FILE *f, const char *needle, int *with)
{
	char line[2048];
	int n = 0;

	*with = 0;
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		n++;
		*with += strstr(line, needle) != NULL;
	}
	return n;
}

/* What fn wrote to stderr, into out (cap bytes, NUL-terminated). */
static void capture(void (*fn)(void), char *out, size_t cap)
{
	FILE *f = tmpfile();
	int saved = dup(2);
	size_t n = 0;

	out[0] = '\0';
	if (!f || saved < 0)
		return;
	fflush(stderr);
	dup2(fileno(f), 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
}

/* A message with what must be escaped: quotes, a backslash, a newline, a tab, UTF-8 and
 * a byte that is not. */
#define NASTY "a \"q\" \\ \n tab\t \xc3\xa9 \xff end"

static void conn_line(void)
{
	rg_log_conn(RG_LOG_NOTICE, 7, "%s", NASTY);
}

/* Bytes that start no UTF-8 character, each followed by what would continue one (found
 * by fuzz_log: F6 was taken for a 3-byte lead, and the line was not UTF-8). */
static void bad_leads(void)
{
	rg_log_conn(RG_LOG_NOTICE, 0, "%s", "\xf6\x8a\x8a\x8a|\xc0\x80|\xf5\x80\x80\x80");
}

static const struct rg_access full = {
	.conn = 12,
	.peer = "127.0.0.1",
	.transport = "ws",
	.version = "1.1",
	.tls = 1,
	.method = "GET",
	.path = "/ws",
	.status = 101,
	.close = 4008,
	.rooms = "a,b",
	.user = "al ice",
	.bytes_in = 5,
	.bytes_out = 70,
	.duration_us = 1500,
};
static const struct rg_access bare = {.conn = 3,
				      .peer = "::1",
				      .transport = "http",
				      .version = "2",
				      .method = "POST",
				      .path = "/rooms/a/messages",
				      .status = 201,
				      .bytes_in = 9,
				      .bytes_out = 24};

static void access_lines(void)
{
	rg_log_access(&full);
	rg_log_access(&bare);
}

/* The longest message (1023 bytes kept), every byte escaped at 6: whole, valid JSON. */
static void long_line(void)
{
	char big[1500];

	memset(big, '\x01', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	rg_notice("%s", big);
}

/* An access line whose every string is as long as any caller's and all escapes. */
static void long_access(void)
{
	static char path[256], user[65], rooms[512];
	struct rg_access a = bare;

	memset(path, '\n', sizeof(path) - 1);
	memset(user, '"', sizeof(user) - 1);
	memset(rooms, 'r', sizeof(rooms) - 1);
	a.path = path, a.user = user, a.rooms = rooms;
	rg_log_access(&a);
}

static void levels(void)
{
	rg_log_set_level(RG_LOG_WARN);
	rg_notice("dropped-notice");
	rg_warn("kept-warn");
	rg_log_force_level(RG_LOG_INFO);
	rg_log_set_level(RG_LOG_ERR); /* --verbose wins */
	rg_info("kept-info");
	rg_log_force_level(RG_LOG_ERR);
	rg_log_set_level(RG_LOG_NOTICE);
	rg_log_set_access(0);
	rg_log_access(&bare);
	rg_log_set_access(1);
}

/* Held access lines: written at the pass's end (rg_log_drain), or before any other
 * line, which goes out at once. */
static char held_before_drain[4096], held_before_error[4096];

static void hold_two(void)
{
	rg_log_hold(1);
	rg_log_access(&bare);
	rg_log_access(&full);
}

static void hold_error(void)
{
	rg_warn("warn-now");
}

static void hold_drain(void)
{
	rg_log_access(&full);
	rg_log_drain();
	rg_log_hold(0);
}

static void holding(void)
{
	char out[4096];

	capture(hold_two, held_before_drain, sizeof(held_before_drain));
	capture(hold_error, held_before_error, sizeof(held_before_error));
	capture(hold_drain, out, sizeof(out));
	CHECK_STR(held_before_drain, "");
	/* the line brought out what was held first, in order */
	CHECK(strstr(held_before_error, "access http") && strstr(held_before_error, "access ws") &&
	      strstr(held_before_error, "access http") < strstr(held_before_error, "access ws") &&
	      strstr(held_before_error, "access ws") < strstr(held_before_error, "warn-now"));
	CHECK(strstr(out, "access ws") && !strstr(out, "access http"));
}

/* The text after the timestamp of each line (they differ run to run). */
static void strip_stamps(char *text)
{
	char *r = text, *w = text;

	while (*r) {
		char *nl = strchr(r, '\n');
		size_t len = nl ? (size_t)(nl - r + 1) : strlen(r);
		/* text: "2026-...Z roomgate"; JSON: {"ts":"2026-...Z",  (24-byte stamps) */
		size_t skip = r[0] == '{' ? 7 + 24 + 2 : 24 + 9;
		if (len > skip) {
			memmove(w, r + skip, len - skip);
			w += len - skip;
		}
		r += len;
	}
	*w = '\0';
}

/* The rate-limited lines formats() writes: two conn_line, bad_leads, long_line, two of
 * levels, and holding's one. */
#define FORMAT_LINES 7

static void formats(void)
{
	char out[8192];

	rg_log_set_format(RG_LOG_JSON);
	capture(conn_line, out, sizeof(out));
	strip_stamps(out);
	CHECK_STR(out, "\"level\":\"notice\",\"source\":\"roomgate\",\"type\":\"log\",\"conn\":7,"
		       "\"msg\":\"a \\\"q\\\" \\\\ \\u000a tab\\u0009 \xc3\xa9 \\ufffd end\"}\n");
	capture(bad_leads, out, sizeof(out));
	strip_stamps(out);
	CHECK_STR(
		out,
		"\"level\":\"notice\",\"source\":\"roomgate\",\"type\":\"log\",\"msg\":"
		"\"\\ufffd\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd\\ufffd\"}\n");
	capture(access_lines, out, sizeof(out));
	strip_stamps(out);
	CHECK_STR(
		out,
		"\"level\":\"info\",\"source\":\"roomgate\",\"type\":\"access\",\"conn\":12,"
		"\"peer\":\"127.0.0.1\",\"transport\":\"ws\",\"http\":\"1.1\",\"tls\":true,"
		"\"method\":\"GET\",\"path\":\"/"
		"ws\",\"status\":101,\"close\":4008,\"rooms\":\"a,b\","
		"\"user\":\"al ice\",\"bytes_in\":5,\"bytes_out\":70,\"duration_ms\":1.500}\n"
		"\"level\":\"info\",\"source\":\"roomgate\",\"type\":\"access\",\"conn\":3,"
		"\"peer\":\"::1\",\"transport\":\"http\",\"http\":\"2\",\"tls\":false,"
		"\"method\":\"POST\",\"path\":\"/rooms/a/messages\",\"status\":201,\"bytes_in\":9,"
		"\"bytes_out\":24,\"duration_ms\":0.000}\n");
	/* cut to the line buffer, still one JSON object */
	capture(long_line, out, sizeof(out));
	json_t *j = json_loads(out, 0, NULL);
	CHECK(json_string_length(json_object_get(j, "msg")) == 1023);
	json_decref(j);
	capture(long_access, out, sizeof(out));
	j = json_loads(out, 0, NULL);
	CHECK(json_string_length(json_object_get(j, "path")) == 255 &&
	      json_string_length(json_object_get(j, "user")) == 64 &&
	      json_integer_value(json_object_get(j, "bytes_out")) == 24);
	json_decref(j);

	rg_log_set_format(RG_LOG_TEXT);
	capture(conn_line, out, sizeof(out));
	strip_stamps(out);
	CHECK_STR(out, " NOTICE: [conn 7] a \"q\" \\x5c \\x0a tab\\x09 \xc3\xa9 \xff end\n");
	capture(access_lines, out, sizeof(out));
	strip_stamps(out);
	CHECK_STR(out, " INFO: [conn 12] access ws peer=127.0.0.1 method=GET path=/ws http=1.1 "
		       "tls=yes status=101 close=4008 rooms=a,b user=al\\x20ice in=5 out=70 "
		       "ms=1.500\n"
		       " INFO: [conn 3] access http peer=::1 method=POST path=/rooms/a/messages "
		       "http=2 tls=no status=201 in=9 out=24 ms=0.000\n");
	capture(levels, out, sizeof(out));
	CHECK(!strstr(out, "dropped-notice") && strstr(out, "kept-warn") &&
	      strstr(out, "kept-info") && !strstr(out, "access"));
	holding();
}

int main(void)
{
	FILE *out = tmpfile();
	int saved = dup(2), flood, lines, reports, reports_after_flush, report_first;
	struct timespec t0, t1;
	char line[2048], prev[2048] = "";

	if (!out || saved < 0)
		return 1;
	formats();
	/* stderr goes to a file while the sink writes; checks run once it is back */
	fflush(stderr);
	dup2(fileno(out), 2);

	/* a flood: 100,000 lines as fast as they come */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 100000; i++)
		rg_err("lws: flood line %d", i);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fflush(stderr);
	lines = count_lines(out, "flood line", &flood);

	/* after a quiet spell, the next line first reports what was dropped */
	usleep(200 * 1000);
	rg_warn("after");
	fflush(stderr);
	count_lines(out, "log lines suppressed", &reports);
	char want[64];
	snprintf(want, sizeof(want), " %d log lines suppressed", 100000 - flood);
	report_first = 0;
	rewind(out);
	while (fgets(line, sizeof(line), out)) {
		if (strstr(line, "after"))
			report_first = strstr(prev, want) != NULL;
		memcpy(prev, line, sizeof(prev));
	}
	/* nothing dropped since: flushing reports nothing */
	rg_log_flush();
	fflush(stderr);
	count_lines(out, "log lines suppressed", &reports_after_flush);
	/* the rate spent: access lines still go out, every one */
	for (int i = 0; i < 1000; i++)
		rg_err("spent %d", i);
	for (int i = 0; i < 500; i++)
		rg_log_access(&bare);
	fflush(stderr);
	int accesses;
	count_lines(out, "access http", &accesses);
	dup2(saved, 2);
	fclose(out);

	double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("100000 lines in %.3f s: %d written\n", secs, flood);
	/* the burst (less the lines formats() wrote), and what the rate let through while
	 * the loop ran */
	CHECK(flood >= RG_LOG_BURST - FORMAT_LINES &&
	      flood <= RG_LOG_BURST + (int)(RG_LOG_RATE * secs) + 1);
	CHECK(lines == flood);
	CHECK(reports == 1 && report_first);
	CHECK(reports_after_flush == 1);
	CHECK(accesses == 500);
	return check_done("log");
}
