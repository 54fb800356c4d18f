#include "history.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t rg_gap_json(const struct rg_room *room, uint64_t from, uint64_t to, char *out, size_t cap)
{
	int n = snprintf(out, cap,
			 "{\"type\":\"gap\",\"room\":\"%s\",\"from\":%" PRIu64 ",\"to\":%" PRIu64
			 "}",
			 room->name, from, to);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

char *rg_history_json(const struct rg_room *room, int64_t since, unsigned limit, size_t max_bytes,
		      const char *prefix, size_t *len)
{
	uint64_t oldest = rg_room_oldest_seq(room), first, last = room->last_seq, s;
	char head[512], gap[128] = "";
	size_t n = 0, cap, used;
	int more;

	if (since < 0)
		first = last >= limit ? last - limit + 1 : 1;
	else
		first = (uint64_t)since + 1;
	if (first < oldest) {
		if (since >= 0)
			snprintf(gap, sizeof(gap),
				 "\"gap\":{\"from\":%" PRIu64 ",\"to\":%" PRIu64 "},", first,
				 oldest - 1);
		first = oldest;
	}
	/* how many fit, by count and by bytes */
	used = 0;
	for (s = first; s <= last && s - first < limit; s++) {
		size_t ml = rg_room_get(room, s)->json_len + 1;
		if (s > first && used + ml > max_bytes)
			break;
		used += ml;
	}
	more = s <= last;

	int hn =
		snprintf(head, sizeof(head),
			 "{%s\"room\":\"%s\",\"last_seq\":%" PRIu64 ",\"more\":%s,%s\"messages\":[",
			 prefix, room->name, last, more ? "true" : "false", gap);
	if (hn < 0 || (size_t)hn >= sizeof(head))
		return NULL;
	cap = (size_t)hn + used + 3;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	memcpy(out, head, (size_t)hn);
	n = (size_t)hn;
	for (uint64_t t = first; t < s; t++) {
		const struct rg_msg *m = rg_room_get(room, t);
		if (t > first)
			out[n++] = ',';
		memcpy(out + n, m->json, m->json_len);
		n += m->json_len;
	}
	out[n++] = ']';
	out[n++] = '}';
	out[n] = '\0';
	*len = n;
	return out;
}
