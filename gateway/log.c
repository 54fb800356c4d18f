#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum rg_log_level rg__max = RG_LOG_NOTICE;

void rg_log_set_level(enum rg_log_level max)
{
	rg__max = max;
}

enum rg_log_level rg_log_get_level(void)
{
	return rg__max;
}

void rg_log(enum rg_log_level lvl, const char *fmt, ...)
{
	static const char *names[] = {"ERROR", "WARN", "NOTICE", "INFO"};
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (lvl > rg__max)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	/* One fprintf per line so lines from lws and from us never interleave. */
	char line[1024];
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03ldZ roomgate %s: %s\n", stamp, ts.tv_nsec / 1000000, names[lvl],
		line);
}
