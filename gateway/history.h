/*
 * A room's stored messages as one JSON document, for WS `history` answers and
 * GET /rooms/{room}/messages: the messages after `since` (or the latest ones), oldest
 * first, each exactly as delivered live. Bounded by count and by bytes, so an answer
 * always fits one write; `more` says there is more to ask for.
 */
#ifndef RG_HISTORY_H
#define RG_HISTORY_H

#include "room.h"

/* since: -1 for the latest `limit` messages. limit: 1..RG_HISTORY_LIMIT_MAX. Messages
 * are added while the text stays under max_bytes (the first always is). prefix is
 * inserted after the opening brace (e.g. "\"type\":\"history\","), may be "".
 * Returns malloc'd text and *len, or NULL when out of memory. The caller checks since
 * <= last_seq. */
char *rg_history_json(const struct rg_room *room, int64_t since, unsigned limit, size_t max_bytes,
		      const char *prefix, size_t *len);

/* The gap notice for a subscriber whose cursor fell off the ring:
 * {"type":"gap","room":..,"from":..,"to":..}. Returns its length (< cap) or 0. */
size_t rg_gap_json(const struct rg_room *room, uint64_t from, uint64_t to, char *out, size_t cap);

#endif
