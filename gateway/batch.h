/*
 * A batch publish's body (POST /messages, docs/PROTOCOL.md):
 *
 *   {"room": R, "messages": [{"room": R, "data": V, "key": K}, ...]}
 *
 * every item with data, a room of its own or the batch's, and an optional idempotency
 * key. The body is read whole before anything is published: one that is not of this
 * shape publishes nothing. Each item's data is kept as sent, minified (json_text.h).
 *
 * Ownership: rg_batch_parse fills *b, which the caller frees with rg_batch_clear (also
 * after a failed parse).
 */
#ifndef RG_BATCH_H
#define RG_BATCH_H

#include "config.h"
#include "errors.h"
#include "request.h"

#include <stddef.h>

struct rg_batch_item {
	char room[RG_ROOM_NAME_MAX + 1];
	size_t room_len;
	char key[RG_ID_MAX + 1]; /* "" when none */
	char *data;              /* minified JSON text, not NUL-terminated */
	size_t data_len;
};

struct rg_batch {
	struct rg_batch_item *items;
	size_t n;
	char why[160]; /* a refusal that names its item */
};

/* What a batch may hold: items, each item's data in bytes, its nesting. */
struct rg_batch_limits {
	size_t max_items;
	size_t max_data;
	size_t max_depth;
};

/* 0, or -1 with *err and *why (a static string or b->why): not JSON, not the shape
 * above, no items or more than max_items, an item's data past max_data bytes or
 * max_depth deep, an invalid room name or key. */
int rg_batch_parse(const char *text, size_t len, const struct rg_batch_limits *lim,
		   struct rg_batch *b, enum rg_err *err, const char **why);
void rg_batch_clear(struct rg_batch *b);

#endif
