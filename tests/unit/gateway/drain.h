/* What a transport would write for a session, for tests: every fill until none says
 * RG_FILL_MORE (or one says RG_FILL_END), as text: a WebSocket session's frame payloads
 * one per line (the frames must be unfragmented text frames of at most 64 KB), an SSE
 * session's event blocks as they are. */
#ifndef RG_TEST_DRAIN_H
#define RG_TEST_DRAIN_H

#include "../check.h"

#include "../../../gateway/session.h"

/* The text in a static buffer, valid until the next call; the last fill's flags in
 * *flags_out when it is not NULL. */
__attribute__((unused)) static char *drain(struct rg_session *s, int *flags_out)
{
	static unsigned char buf[1 << 16];
	static char out[1 << 16];
	size_t o = 0, len;
	int flags;

	do {
		flags = rg_session_fill(s, buf, sizeof(buf), 0, &len);
		CHECK(flags >= 0);
		if (flags < 0)
			break;
		if (s->fmt == RG_FMT_SSE) {
			CHECK(o + len < sizeof(out));
			if (o + len >= sizeof(out))
				break;
			memcpy(out + o, buf, len);
			o += len;
			continue;
		}
		for (size_t i = 0; i < len;) {
			size_t pl = buf[i + 1], hl = 2;
			CHECK(buf[i] == 0x81 && pl <= 126);
			if (pl == 126) {
				pl = (size_t)buf[i + 2] << 8 | buf[i + 3];
				hl = 4;
			}
			memcpy(out + o, buf + i + hl, pl);
			o += pl;
			out[o++] = '\n';
			i += hl + pl;
		}
	} while ((flags & RG_FILL_MORE) && !(flags & RG_FILL_END));
	out[o] = '\0';
	if (flags_out)
		*flags_out = flags;
	return out;
}

#endif
