/*
 * SSE event ids as this gateway writes them, read back from Last-Event-ID:
 * "EPOCH/SEQ" for a one-room stream, "EPOCH/ROOM=SEQ,ROOM=SEQ,..." for several rooms
 * (room names cannot hold '/', '=' or ','). The "EPOCH/" prefix names the start of the
 * gateway the seqs belong to; ids without it (before epochs) are read too. Pure parsing;
 * what the cursors mean is the SSE protocol's business.
 */
#ifndef RG_CURSOR_H
#define RG_CURSOR_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>

/* An epoch: 1..16 characters of 0-9 a-z (the gateway makes RG_EPOCH_LEN of them). */
#define RG_EPOCH_MAX 16

/* 1 if s (len bytes) is an epoch. */
int rg_epoch_valid(const char *s, size_t len);

struct rg_cursor {
	char room[RG_ROOM_NAME_MAX + 1]; /* "" in the one-room form */
	uint64_t seq;
};

/* Parses id (len bytes) into at most max cursors, and its epoch into epoch ("" when
 * the id has none). Returns how many cursors, or -1 when id is not of either form
 * (empty, a bad epoch, number or name, too many entries, a room twice). */
int rg_cursor_parse(const char *id, size_t len, struct rg_cursor *out, int max,
		    char epoch[RG_EPOCH_MAX + 1]);

#endif
