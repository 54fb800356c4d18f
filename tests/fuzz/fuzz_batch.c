/* libFuzzer: a batch publish's body (gateway/batch.h). Nothing may crash, leak or read
 * out of bounds, and what a batch that is read holds must be what jansson reads in the
 * same body: as many items, each item's data the same JSON value, within the limits. */
#include "../../gateway/batch.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct rg_batch_limits lim = {.max_items = 8, .max_data = 64, .max_depth = 4};
	struct rg_batch b;
	enum rg_err err;
	const char *why;

	if (rg_batch_parse((const char *)data, size, &lim, &b, &err, &why)) {
		if (!why || !*why)
			abort();
		rg_batch_clear(&b);
		return 0;
	}
	json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	json_t *msgs = json_object_get(root, "messages");
	if (!root || b.n != json_array_size(msgs) || !b.n || b.n > lim.max_items)
		abort();
	for (size_t i = 0; i < b.n; i++) {
		const struct rg_batch_item *it = &b.items[i];
		json_t *want = json_object_get(json_array_get(msgs, i), "data");
		json_t *got = json_loadb(it->data, it->data_len, JSON_DECODE_ANY, NULL);
		if (!got || !json_equal(got, want) || it->data_len > lim.max_data || !it->room_len)
			abort();
		json_decref(got);
	}
	json_decref(root);
	rg_batch_clear(&b);
	return 0;
}
