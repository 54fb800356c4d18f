/* libFuzzer: arbitrary bytes in every string of a log line (a path, a user, rooms, a
 * peer, a message), as clients could put them there, written in both formats: a JSON
 * line must parse (jansson) with the string fields present, a text line must be one
 * line without control bytes. Nothing may crash, leak or read out of bounds. */
#include "../../gateway/log.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char got[16384];
static size_t ngot;

static void sink(const char *text, size_t len)
{
	if (ngot + len < sizeof(got)) {
		memcpy(got + ngot, text, len);
		ngot += len;
	} else {
		abort(); /* one call writes one line here: none is that long */
	}
}

/* The next field of data: up to a 0xff byte (dropped), NUL-terminated into out. */
static const char *field(const uint8_t **data, size_t *size, char *out, size_t cap)
{
	size_t n = 0;

	while (*size && **data != 0xff && n + 1 < cap) {
		out[n++] = **data ? (char)**data : '?'; /* C strings: a NUL ends them */
		(*data)++, (*size)--;
	}
	if (*size && **data == 0xff)
		(*data)++, (*size)--;
	out[n] = '\0';
	return out;
}

/* Every line written since the last check: whole, and as its format says. */
static void check_lines(int json, const char *want_key)
{
	for (size_t i = 0; i < ngot;) {
		const char *nl = memchr(got + i, '\n', ngot - i);
		if (!nl)
			abort(); /* a line not ended */
		size_t len = (size_t)(nl - (got + i));
		if (json) {
			json_t *j = json_loadb(got + i, len, 0, NULL);
			if (!j || !json_is_string(json_object_get(j, want_key)))
				abort();
			json_decref(j);
		} else {
			for (size_t k = i; k < i + len; k++)
				if ((unsigned char)got[k] < 0x20 || got[k] == 0x7f)
					abort();
		}
		i += len + 1;
	}
	ngot = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[512], user[128], rooms[1024], peer[64], msg[2048];

	field(&data, &size, path, sizeof(path));
	field(&data, &size, user, sizeof(user));
	field(&data, &size, rooms, sizeof(rooms));
	field(&data, &size, peer, sizeof(peer));
	field(&data, &size, msg, sizeof(msg));
	struct rg_access a = {.conn = 3,
			      .peer = peer,
			      .transport = "ws",
			      .version = "2",
			      .tls = 1,
			      .method = "GET",
			      .path = path,
			      .status = 101,
			      .close = 1006,
			      .rooms = rooms,
			      .user = user,
			      /* counts a connection reaches (jansson, like most readers, takes
			       * integers up to 2^63) */
			      .bytes_in = (uint64_t)size << 40,
			      .bytes_out = 1,
			      .duration_us = (int64_t)size * 86400000000LL};

	rg_log_set_sink(sink);
	for (int json = 0; json < 2; json++) {
		rg_log_set_format(json ? RG_LOG_JSON : RG_LOG_TEXT);
		rg_log_access(&a);
		if (!ngot)
			abort(); /* access lines are never dropped */
		check_lines(json, "path");
		/* a message line; past the burst, most are dropped and counted, and a line
		 * that says so comes before the next one written */
		rg_log_lws(RG_LOG_ERR, msg);
		check_lines(json, "msg");
	}
	return 0;
}
