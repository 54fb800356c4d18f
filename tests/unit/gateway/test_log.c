/* The log sink: lines caused by remote peers cannot flood it (log.h). */
#include "../check.h"

#include "../../../gateway/log.h"

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

int main(void)
{
	FILE *out = tmpfile();
	int saved = dup(2), flood, lines, reports, reports_after_flush, report_first;
	struct timespec t0, t1;
	char line[2048], prev[2048] = "";

	if (!out || saved < 0)
		return 1;
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
	dup2(saved, 2);
	fclose(out);

	double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("100000 lines in %.3f s: %d written\n", secs, flood);
	/* the burst, and what the rate let through while the loop ran */
	CHECK(flood >= RG_LOG_BURST && flood <= RG_LOG_BURST + (int)(RG_LOG_RATE * secs) + 1);
	CHECK(lines == flood);
	CHECK(reports == 1 && report_first);
	CHECK(reports_after_flush == 1);
	return check_done("log");
}
