#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum rg_log_level rg__max = RG_LOG_NOTICE;
static double rg__tokens = RG_LOG_BURST, rg__last; /* token bucket; monotonic seconds */
static unsigned long rg__dropped;

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
	rg__max = max;
}

enum rg_log_level rg_log_get_level(void)
{
	return rg__max;
}

static void rg__write(enum rg_log_level lvl, const char *line)
{
	static const char *names[] = {"ERROR", "WARN", "NOTICE", "INFO"};
	char stamp[32];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One fprintf per line so lines from lws and from us never interleave. */
	fprintf(stderr, "%s.%03ldZ roomgate %s: %s\n", stamp, ts.tv_nsec / 1000000, names[lvl],
		line);
}

void rg_log_flush(void)
{
	char line[96];

	if (!rg__dropped || !rg__take())
		return;
	snprintf(line, sizeof(line), "%lu log lines suppressed (more than %d a second)",
		 rg__dropped, RG_LOG_RATE);
	rg__dropped = 0;
	rg__write(RG_LOG_WARN, line);
}

void rg_log(enum rg_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl > rg__max)
		return;
	if (!rg__take()) {
		rg__dropped++;
		return;
	}
	if (rg__dropped) {
		rg__tokens += 1; /* the report does not count against the line */
		rg_log_flush();
	}

	char line[1024];
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	rg__write(lvl, line);
}
