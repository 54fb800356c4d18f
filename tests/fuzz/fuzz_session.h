/* What the session fuzz targets share: their config's limits, a wake callback that has
 * nothing to wake, and writing a session out as a transport does (until nothing more
 * is pending, or it lagged and would be closed). */
#ifndef RG_FUZZ_SESSION_H
#define RG_FUZZ_SESSION_H

#include "../../gateway/session.h"

/* A config of the rooms array r, with small limits the fuzzer reaches. */
#define FZ_CONFIG(r)                                                                      \
	{                                                                                 \
		.max_message_bytes = 4096, .max_rooms = 8, .max_rooms_per_connection = 4, \
		.max_json_depth = 32, .max_pending_bytes = 65536, .rooms = (r),           \
		.nrooms = sizeof(r) / sizeof((r)[0]),                                     \
	}

static void fz_wake(void *owner)
{
	(void)owner;
}

__attribute__((unused)) static void fz_drain(struct rg_session *s)
{
	static unsigned char buf[16384];
	size_t len;
	int flags;

	while ((flags = rg_session_fill(s, buf, sizeof(buf), 0, &len)) > 0 &&
	       !(flags & RG_FILL_LAGGED))
		;
}

#endif
