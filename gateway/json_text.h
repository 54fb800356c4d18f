/*
 * Byte-level helpers for JSON text that jansson has already validated. They keep a
 * publisher's data exactly as sent (numbers, escapes and key order untouched) instead
 * of re-encoding it, which would turn 0.1 into 0.10000000000000001.
 * Behaviour on text that is not valid JSON is bounded but unspecified.
 */
#ifndef RG_JSON_TEXT_H
#define RG_JSON_TEXT_H

#include <stddef.h>

/* Copies in to out without insignificant whitespace; out holds at least len bytes.
 * Returns the length written. The result is one line: JSON strings cannot hold raw
 * newlines. */
size_t rg_json_minify(const char *in, size_t len, char *out);

/* The deepest nesting of arrays and objects in text (a scalar: 0). */
size_t rg_json_depth(const char *text, size_t len);

/* Finds the value of member key in the top-level object of text: 0 and its span, or
 * -ENOENT. */
int rg_json_member_span(const char *text, size_t len, const char *key, const char **start,
			size_t *span);

/* Walks the elements of the top-level array of text: *pos 0 for the first; 1 and the
 * next element's span, 0 past the last, -EINVAL when text is not an array. */
int rg_json_array_next(const char *text, size_t len, size_t *pos, const char **start, size_t *span);

#endif
