#include "cursor.h"

#include "request.h"

#include <string.h>

/* A seq as ids carry it (0: nothing delivered yet). */
static int rg__seq(const char *s, size_t len, uint64_t *out)
{
	return rg_count_parse(s, len, INT64_MAX, out);
}

int rg_epoch_valid(const char *s, size_t len)
{
	if (!len || len > RG_EPOCH_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z')))
			return 0;
	return 1;
}

int rg_cursor_parse(const char *id, size_t len, struct rg_cursor *out, int max,
		    char epoch[RG_EPOCH_MAX + 1])
{
	const char *slash = memchr(id, '/', len);
	int n = 0;

	epoch[0] = '\0';
	if (slash) {
		size_t el = (size_t)(slash - id);
		if (!rg_epoch_valid(id, el))
			return -1;
		memcpy(epoch, id, el);
		epoch[el] = '\0';
		len -= el + 1;
		id = slash + 1;
	}
	if (max < 1 || !len)
		return -1;
	if (!memchr(id, '=', len)) {
		out[0].room[0] = '\0';
		return rg__seq(id, len, &out[0].seq) ? -1 : 1;
	}
	for (size_t i = 0; i < len;) {
		const char *entry = id + i, *comma = memchr(entry, ',', len - i);
		size_t elen = comma ? (size_t)(comma - entry) : len - i;
		const char *eq = memchr(entry, '=', elen);

		if (n == max || !eq || !rg_room_name_valid(entry, (size_t)(eq - entry)) ||
		    rg__seq(eq + 1, elen - (size_t)(eq - entry) - 1, &out[n].seq))
			return -1;
		memcpy(out[n].room, entry, (size_t)(eq - entry));
		out[n].room[eq - entry] = '\0';
		for (int k = 0; k < n; k++)
			if (!strcmp(out[k].room, out[n].room))
				return -1;
		n++;
		i += elen + 1;
		if (comma && i == len)
			return -1; /* a trailing comma */
	}
	return n;
}
