/*
 * The smallest test harness that reports what failed: CHECK* record a failure with
 * file:line and keep going; check_done() prints the totals and gives the exit code.
 */
#ifndef RG_CHECK_H
#define RG_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_ok, check_fail;

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (cond)                                                                  \
			check_ok++;                                                        \
		else {                                                                     \
			check_fail++;                                                      \
			fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                          \
	} while (0)

#define CHECK_STR(got, want)                                                                     \
	do {                                                                                     \
		const char *g_ = (got), *w_ = (want);                                            \
		if (g_ && w_ && !strcmp(g_, w_))                                                 \
			check_ok++;                                                              \
		else {                                                                           \
			check_fail++;                                                            \
			fprintf(stderr, "%s:%d: FAILED: %s\n  got:  %s\n  want: %s\n", __FILE__, \
				__LINE__, #got, g_ ? g_ : "(null)", w_ ? w_ : "(null)");         \
		}                                                                                \
	} while (0)

static inline int check_done(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, check_ok, check_fail);
	return check_fail ? 1 : 0;
}

#endif
