#include "batch.h"

#include "json_text.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char rg__why_shape[] =
	"expected {\"messages\": [{\"room\": .., \"data\": .., \"key\": ..}, ...]} (room and key "
	"optional; a room for all items may be given beside messages)";

/* 1 when every member of o is one of names (NULL-terminated). */
static int rg__only(json_t *o, const char *const *names)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		const char *const *n = names;
		while (*n && strcmp(*n, k))
			n++;
		if (!*n)
			return 0;
	}
	return 1;
}

static int rg__fail(struct rg_batch *b, enum rg_err *err, const char **why, enum rg_err e, size_t i,
		    const char *what)
{
	snprintf(b->why, sizeof(b->why), "messages[%zu]: %s", i, what);
	*err = e;
	*why = b->why;
	return -1;
}

/* The room named by s (an item's, else the batch's) into it. 0, or -1. */
static int rg__room(json_t *s, struct rg_batch_item *it)
{
	size_t n = json_string_length(s);

	if (!json_is_string(s) || !rg_room_name_valid(json_string_value(s), n))
		return -1;
	memcpy(it->room, json_string_value(s), n);
	it->room[n] = '\0';
	it->room_len = n;
	return 0;
}

int rg_batch_parse(const char *text, size_t len, const struct rg_batch_limits *lim,
		   struct rg_batch *b, enum rg_err *err, const char **why)
{
	static const char *const top_keys[] = {"room", "messages", NULL};
	static const char *const item_keys[] = {"room", "data", "key", NULL};
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *msgs = json_object_get(root, "messages"), *room = json_object_get(root, "room");
	const char *arr, *el, *data;
	size_t arr_len, el_len, data_len, pos = 0;
	int rc = -1;

	memset(b, 0, sizeof(*b));
	*err = RG_E_BAD_REQUEST;
	*why = rg__why_shape;
	if (!root) {
		*err = RG_E_BAD_JSON;
		*why = rg_why_body_json;
		return -1;
	}
	if (!json_is_object(root) || !rg__only(root, top_keys) || !json_is_array(msgs) ||
	    (room && !json_is_string(room)))
		goto out;
	if (!json_array_size(msgs) || json_array_size(msgs) > lim->max_items) {
		snprintf(b->why, sizeof(b->why), "messages: expected 1..%zu items", lim->max_items);
		*why = b->why;
		goto out;
	}
	b->items = calloc(json_array_size(msgs), sizeof(*b->items));
	if (!b->items || rg_json_member_span(text, len, "messages", &arr, &arr_len)) {
		*err = RG_E_INTERNAL;
		*why = rg_why_nomem;
		goto out;
	}
	for (size_t i = 0; i < json_array_size(msgs); i++) {
		json_t *m = json_array_get(msgs, i), *r = json_object_get(m, "room"),
		       *k = json_object_get(m, "key");
		struct rg_batch_item *it = &b->items[i];

		if (!json_is_object(m) || !rg__only(m, item_keys) || !json_object_get(m, "data"))
			rc = rg__fail(b, err, why, RG_E_BAD_REQUEST, i,
				      "expected {\"room\": .., \"data\": .., \"key\": ..}");
		else if (!(r ? r : room) || rg__room(r ? r : room, it))
			rc = rg__fail(b, err, why, RG_E_BAD_REQUEST, i,
				      r || room ? rg_why_room_name
						: "no room, and none for the batch");
		else if (k &&
			 (!json_is_string(k) ||
			  !rg_token_valid(json_string_value(k), json_string_length(k), RG_ID_MAX)))
			rc = rg__fail(b, err, why, RG_E_BAD_REQUEST, i,
				      "key: expected 1..64 bytes, no control characters");
		/* the text's i-th element is m: jansson read the same bytes */
		else if (rg_json_array_next(arr, arr_len, &pos, &el, &el_len) != 1 ||
			 rg_json_member_span(el, el_len, "data", &data, &data_len))
			rc = rg__fail(b, err, why, RG_E_INTERNAL, i, "unreadable");
		else if (rg_json_depth(data, data_len) > lim->max_depth)
			rc = rg__fail(b, err, why, RG_E_BAD_REQUEST, i, rg_why_depth);
		else if (!(it->data = malloc(data_len)))
			rc = rg__fail(b, err, why, RG_E_INTERNAL, i, rg_why_nomem);
		else if ((it->data_len = rg_json_minify(data, data_len, it->data)) > lim->max_data)
			rc = rg__fail(b, err, why, RG_E_TOO_LARGE, i,
				      "data exceeds limits.max_message_bytes");
		else {
			if (k)
				memcpy(it->key, json_string_value(k), json_string_length(k) + 1);
			b->n = i + 1;
			continue;
		}
		b->n = i + 1;
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

void rg_batch_clear(struct rg_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->items[i].data);
	free(b->items);
	b->items = NULL;
	b->n = 0;
}
