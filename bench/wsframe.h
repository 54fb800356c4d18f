/*
 * bench/wsframe.h: reading WebSocket frames (RFC 6455), shared by the load generator
 * (bench/loadgen.c) and the raw calibration server (bench/peers/rawfanout.c). Header
 * only, so that each tool stays one file built with one cc line.
 */
#ifndef BENCH_WSFRAME_H
#define BENCH_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

/* The header of the frame at f (avail bytes): 0 with *hl (header length, masking key
 * included) and *pl (payload length), or -1 when the header is not all there yet. */
static inline int ws_frame_head(const unsigned char *f, size_t avail, size_t *hl, uint64_t *pl)
{
	if (avail < 2)
		return -1;
	*hl = 2;
	*pl = f[1] & 0x7f;
	if (*pl == 126) {
		if (avail < 4)
			return -1;
		*pl = (uint64_t)f[2] << 8 | f[3];
		*hl = 4;
	} else if (*pl == 127) {
		if (avail < 10)
			return -1;
		*pl = 0;
		for (int i = 0; i < 8; i++)
			*pl = *pl << 8 | f[2 + i];
		*hl = 10;
	}
	if (f[1] & 0x80)
		*hl += 4;
	return 0;
}

/* Unmasks the payload of a complete masked frame in place (hl, pl: ws_frame_head). */
static inline void ws_frame_unmask(unsigned char *f, size_t hl, uint64_t pl)
{
	if (!(f[1] & 0x80))
		return;
	for (uint64_t i = 0; i < pl; i++)
		f[hl + i] ^= f[hl - 4 + (i & 3)];
}

#endif
