/*
 * SSE event ids as this gateway writes them, read back from Last-Event-ID: "SEQ" for a
 * one-room stream, "ROOM=SEQ,ROOM=SEQ,..." for several rooms (room names cannot hold
 * '=' or ','). Pure parsing; what the cursors mean is the SSE protocol's business.
 */
#ifndef RG_CURSOR_H
#define RG_CURSOR_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>

struct rg_cursor {
	char room[RG_ROOM_NAME_MAX + 1]; /* "" in the one-room form */
	uint64_t seq;
};

/* Parses id (len bytes) into at most max cursors. Returns how many, or -1 when id is
 * not of either form (empty, a bad number or name, too many entries, a room twice). */
int rg_cursor_parse(const char *id, size_t len, struct rg_cursor *out, int max);

#endif
