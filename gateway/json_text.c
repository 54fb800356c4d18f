#include "json_text.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

static int rg__ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t rg_json_minify(const char *in, size_t len, char *out)
{
	size_t n = 0;
	int in_str = 0, esc = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (in_str) {
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (rg__ws(c)) {
			continue;
		}
		out[n++] = c;
	}
	return n;
}

/* Index just past the string starting at text[i] (a '"'). */
static size_t rg__skip_string(const char *t, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (t[i] == '\\')
			i++;
		else if (t[i] == '"')
			return i + 1;
	}
	return len;
}

/* Index just past the value starting at text[i]. */
static size_t rg__skip_value(const char *t, size_t len, size_t i)
{
	int depth = 0;

	for (; i < len; i++) {
		char c = t[i];
		if (c == '"') {
			i = rg__skip_string(t, len, i) - 1;
			if (!depth)
				return i + 1;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (!depth)
				return i; /* a scalar ended by its container */
			if (!--depth)
				return i + 1;
		} else if (!depth && (c == ',' || rg__ws(c))) {
			return i;
		}
	}
	return len;
}

size_t rg_json_depth(const char *t, size_t len)
{
	size_t depth = 0, max = 0;

	for (size_t i = 0; i < len; i++) {
		char c = t[i];
		if (c == '"')
			i = rg__skip_string(t, len, i) - 1;
		else if ((c == '{' || c == '[') && ++depth > max)
			max = depth;
		else if ((c == '}' || c == ']') && depth)
			depth--;
	}
	return max;
}

static int rg__key_is(const char *raw, size_t rlen, const char *key)
{
	/* raw includes the quotes; only keys with escapes need decoding. */
	if (!memchr(raw, '\\', rlen))
		return rlen - 2 == strlen(key) && !memcmp(raw + 1, key, rlen - 2);
	json_t *s = json_loadb(raw, rlen, JSON_DECODE_ANY, NULL);
	int same = json_is_string(s) && json_string_length(s) == strlen(key) &&
		   !memcmp(json_string_value(s), key, strlen(key));
	json_decref(s);
	return same;
}

int rg_json_member_span(const char *t, size_t len, const char *key, const char **start,
			size_t *span)
{
	size_t i = 0;

	while (i < len && rg__ws(t[i]))
		i++;
	if (i >= len || t[i] != '{')
		return -ENOENT;
	i++;
	while (i < len) {
		while (i < len && (rg__ws(t[i]) || t[i] == ','))
			i++;
		if (i >= len || t[i] != '"')
			return -ENOENT;
		size_t k = i;
		i = rg__skip_string(t, len, i);
		int match = rg__key_is(t + k, i - k, key);
		while (i < len && (rg__ws(t[i]) || t[i] == ':'))
			i++;
		size_t end = rg__skip_value(t, len, i);
		if (match) {
			*start = t + i;
			*span = end - i;
			return 0;
		}
		i = end;
	}
	return -ENOENT;
}

int rg_json_array_next(const char *t, size_t len, size_t *pos, const char **start, size_t *span)
{
	size_t i = *pos;

	if (!i) {
		while (i < len && rg__ws(t[i]))
			i++;
		if (i >= len || t[i] != '[')
			return -EINVAL;
		i++;
	}
	while (i < len && (rg__ws(t[i]) || t[i] == ','))
		i++;
	if (i >= len || t[i] == ']') {
		*pos = i;
		return 0;
	}
	size_t end = rg__skip_value(t, len, i);
	*start = t + i;
	*span = end - i;
	*pos = end > i ? end : i + 1;
	return 1;
}
