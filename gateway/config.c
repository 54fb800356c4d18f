/*
 * The config engine: walks the key table (config_table.h, rows in config_keys.c) over
 * the JSON document (defaults, types, ranges, unknown keys, every error at its path),
 * frees what it allocated, and prints the table as docs/CONFIG.md's key table.
 */
#include "auth.h"
#include "config_table.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RG__MAX_CONFIG_BYTES (4 * 1024 * 1024)

/* The parse state: where we are in the document (for messages) and how it went. */
struct rg_conf_parse {
	const char *name;
	char path[256];
	size_t plen;
	rg_config_err_fn err;
	void *ctx;
	int errors;
};

/* One line to the callback, "FILE: PATH: msg"; counted as an error unless a warning. */
static void rg__line(struct rg_conf_parse *p, int warning, const char *msg)
{
	char line[1024];

	if (p->plen)
		snprintf(line, sizeof(line), "%s: %s: %s%s", p->name, p->path,
			 warning ? "warning: " : "", msg);
	else
		snprintf(line, sizeof(line), "%s: %s%s", p->name, warning ? "warning: " : "", msg);
	p->errors += !warning;
	if (p->err)
		p->err(p->ctx, line);
}

__attribute__((format(printf, 2, 3))) static void rg__fail(struct rg_conf_parse *p, const char *fmt,
							   ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rg__line(p, 0, msg);
}

/* Path segments: push returns the old length, pop restores it. */
static size_t rg__push_key(struct rg_conf_parse *p, const char *key)
{
	size_t old = p->plen;
	int n = snprintf(p->path + p->plen, sizeof(p->path) - p->plen, "%s%s", p->plen ? "." : "",
			 key);
	if (n > 0)
		p->plen = strlen(p->path);
	return old;
}

static size_t rg__push_index(struct rg_conf_parse *p, size_t i)
{
	size_t old = p->plen;
	snprintf(p->path + p->plen, sizeof(p->path) - p->plen, "[%zu]", i);
	p->plen = strlen(p->path);
	return old;
}

static void rg__pop(struct rg_conf_parse *p, size_t old)
{
	p->plen = old;
	p->path[old] = '\0';
}

int rg_room_name_valid(const char *s, size_t len)
{
	if (!len || len > RG_ROOM_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == ':' || c == '@' || c == '~' || c == '-'))
			return 0;
	}
	return 1;
}

/* A line at the current path extended by key (when not NULL). */
static void rg__keyed(struct rg_conf_parse *p, const char *key, int warning, const char *fmt,
		      va_list ap)
{
	char msg[512];
	size_t old = key ? rg__push_key(p, key) : p->plen;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	rg__line(p, warning, msg);
	rg__pop(p, old);
}

void rg_conf_warn(struct rg_conf_parse *p, const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rg__keyed(p, key, 1, fmt, ap);
	va_end(ap);
}

int rg_conf_failed(const struct rg_conf_parse *p)
{
	return p->errors > 0;
}

void rg_conf_fail(struct rg_conf_parse *p, const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rg__keyed(p, key, 0, fmt, ap);
	va_end(ap);
}

static void *rg__at(void *obj, size_t offset)
{
	return (char *)obj + offset;
}

/* The row's key when it lies directly in the object at scope ("", "limits.",
 * "listen[].tls."), NULL otherwise. */
static const char *rg__child(const struct rg_conf_key *k, const char *scope, size_t slen)
{
	if (strncmp(k->path, scope, slen) || strpbrk(k->path + slen, ".["))
		return NULL;
	return k->path + slen;
}

/* The row lies in the struct of the object at scope: under it, in no array element
 * below it. */
static int rg__in_struct(const struct rg_conf_key *k, const char *scope, size_t slen)
{
	return !strncmp(k->path, scope, slen) && !strchr(k->path + slen, '[');
}

/* Whether k owns its field: the name and the pattern of a room share one. */
static int rg__owns(const struct rg_conf_key *k, const char *scope, size_t slen)
{
	for (const struct rg_conf_key *o = rg_conf_keys; o < k; o++)
		if (o->type == RG_CONF_STRING && o->offset == k->offset &&
		    rg__in_struct(o, scope, slen))
			return 0;
	return 1;
}

static void rg__defaults(struct rg_conf_parse *p, const char *scope, void *obj)
{
	size_t slen = strlen(scope);

	for (size_t i = 0; i < rg_conf_nkeys; i++) {
		const struct rg_conf_key *k = &rg_conf_keys[i];
		if (!rg__in_struct(k, scope, slen))
			continue;
		if (k->type == RG_CONF_UINT)
			*(uint32_t *)rg__at(obj, k->offset) = k->def;
		else if (k->type == RG_CONF_BOOL)
			*(int *)rg__at(obj, k->offset) = (int)k->def;
		else if (k->type == RG_CONF_ENUM)
			*(unsigned *)rg__at(obj, k->offset) = k->def;
		else if (k->type == RG_CONF_STRING && k->def_str &&
			 !(*(char **)rg__at(obj, k->offset) = strdup(k->def_str)))
			rg__fail(p, "out of memory");
	}
}

/* Frees the strings and arrays of the struct at scope. */
static void rg__free_struct(const char *scope, void *obj)
{
	size_t slen = strlen(scope);

	for (size_t i = 0; i < rg_conf_nkeys; i++) {
		const struct rg_conf_key *k = &rg_conf_keys[i];
		if (!rg__in_struct(k, scope, slen))
			continue;
		if (k->type == RG_CONF_STRING && rg__owns(k, scope, slen)) {
			free(*(char **)rg__at(obj, k->offset));
		} else if (k->type == RG_CONF_STRINGS) {
			char **arr = *(char ***)rg__at(obj, k->offset);
			size_t n = *(size_t *)rg__at(obj, k->count_offset);
			for (size_t j = 0; arr && j < n; j++)
				free(arr[j]);
			free(arr);
		} else if (k->type == RG_CONF_ARRAY) {
			char *arr = *(char **)rg__at(obj, k->offset), elem[128];
			size_t n = *(size_t *)rg__at(obj, k->count_offset);
			snprintf(elem, sizeof(elem), "%s[].", k->path);
			for (size_t j = 0; arr && j < n; j++)
				rg__free_struct(elem, arr + j * k->elem_size);
			free(arr);
		}
	}
}

static void rg__object(struct rg_conf_parse *p, json_t *o, const char *scope, void *obj);

static void rg__array(struct rg_conf_parse *p, const struct rg_conf_key *k, json_t *v, void *obj)
{
	char **arr = rg__at(obj, k->offset), elem[128];
	size_t *n = rg__at(obj, k->count_offset), i;
	json_t *e;

	if (!json_is_array(v) || json_array_size(v) < k->min || json_array_size(v) > k->max) {
		rg__fail(p, "expected an array of %u..%u %s", k->min, k->max, k->what);
		return;
	}
	if (!(*arr = calloc(json_array_size(v), k->elem_size))) {
		rg__fail(p, "out of memory");
		return;
	}
	snprintf(elem, sizeof(elem), "%s[].", k->path);
	json_array_foreach(v, i, e) {
		void *el = *arr + i * k->elem_size;
		size_t old = rg__push_index(p, i);
		(*n)++;
		rg__defaults(p, elem, el);
		if (!json_is_object(e)) {
			rg__fail(p, "expected an object");
		} else {
			rg__object(p, e, elem, el);
			if (k->each)
				k->each(p, e, *arr, i);
		}
		rg__pop(p, old);
	}
}

static void rg__strings(struct rg_conf_parse *p, const struct rg_conf_key *k, json_t *v, void *obj)
{
	char ***arr = rg__at(obj, k->offset);
	size_t *n = rg__at(obj, k->count_offset), i;
	json_t *e;

	if (!json_array_size(v))
		return;
	if (!(*arr = calloc(json_array_size(v), sizeof(char *)))) {
		rg__fail(p, "out of memory");
		return;
	}
	json_array_foreach(v, i, e) {
		size_t old = rg__push_index(p, i);
		const char *s = json_string_value(e);
		if (!s || !*s || strlen(s) != json_string_length(e) || (k->valid && !k->valid(s)))
			rg__fail(p, "expected %s", k->what);
		else if (!((*arr)[(*n)++] = strdup(s)))
			rg__fail(p, "out of memory");
		rg__pop(p, old);
	}
}

static void rg__choices(char *out, size_t cap, const char *const *c, const char *quote)
{
	size_t n = 0, len = 0;

	while (c[n])
		n++;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s%s\"%s\"%s",
					!i          ? ""
					: i + 1 < n ? ", "
						    : " or ",
					quote, c[i], quote);
}

/* One value v of the row k (NULL: absent), at the current path. */
static void rg__value(struct rg_conf_parse *p, const struct rg_conf_key *k, json_t *v,
		      const char *scope, void *obj)
{
	void *field = rg__at(obj, k->offset);
	char expected[256];

	switch (k->type) {
	case RG_CONF_UINT:
		snprintf(expected, sizeof(expected), "an integer %u..%u", k->min, k->max);
		break;
	case RG_CONF_BOOL:
		snprintf(expected, sizeof(expected), "true or false");
		break;
	case RG_CONF_ENUM:
		rg__choices(expected, sizeof(expected), k->choices, "");
		break;
	case RG_CONF_STRING:
		snprintf(expected, sizeof(expected), "%s", k->what);
		break;
	case RG_CONF_OBJECT:
		snprintf(expected, sizeof(expected), "an object");
		break;
	case RG_CONF_ARRAY:
		snprintf(expected, sizeof(expected), "an array of %u..%u %s", k->min, k->max,
			 k->what);
		break;
	case RG_CONF_STRINGS:
		snprintf(expected, sizeof(expected), "an array of %u..%u strings", k->min, k->max);
		break;
	}
	if (!v) {
		if (k->flags & RG_CONF_REQUIRED)
			rg__fail(p, "missing, expected %s", expected);
		return;
	}
	switch (k->type) {
	case RG_CONF_UINT: {
		json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
		if (!json_is_integer(v) || n < (json_int_t)k->min || n > (json_int_t)k->max)
			break;
		*(uint32_t *)field = (uint32_t)n;
		return;
	}
	case RG_CONF_BOOL:
		if (!json_is_boolean(v))
			break;
		*(int *)field = json_is_true(v);
		return;
	case RG_CONF_ENUM:
		for (unsigned i = 0; json_is_string(v) && k->choices[i]; i++) {
			if (!strcmp(json_string_value(v), k->choices[i])) {
				*(unsigned *)field = i;
				return;
			}
		}
		break;
	case RG_CONF_STRING: {
		char **s = field;
		if (!json_is_string(v) || !json_string_length(v) ||
		    strlen(json_string_value(v)) != json_string_length(v))
			break;
		free(*s);
		if (!(*s = strdup(json_string_value(v)))) {
			rg__fail(p, "out of memory");
			return;
		}
		if (k->check)
			k->check(p, k, obj);
		return;
	}
	case RG_CONF_OBJECT: {
		char sub[128];
		if (!json_is_object(v))
			break;
		snprintf(sub, sizeof(sub), "%s.", k->path);
		rg__object(p, v, sub, obj);
		return;
	}
	case RG_CONF_ARRAY:
		rg__array(p, k, v, obj);
		return;
	case RG_CONF_STRINGS:
		if (!json_is_array(v) || json_array_size(v) < k->min || json_array_size(v) > k->max)
			break;
		rg__strings(p, k, v, obj);
		return;
	}
	(void)scope;
	rg__fail(p, "expected %s", expected);
}

/* The JSON object o whose rows are those at scope, into the struct obj: unknown keys
 * first, then every row in table order. */
static void rg__object(struct rg_conf_parse *p, json_t *o, const char *scope, void *obj)
{
	size_t slen = strlen(scope);
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v) {
		size_t i = 0;
		while (i < rg_conf_nkeys && !(rg__child(&rg_conf_keys[i], scope, slen) &&
					      !strcmp(rg_conf_keys[i].path + slen, key)))
			i++;
		if (i == rg_conf_nkeys)
			rg_conf_fail(p, key, "unknown key");
	}
	for (size_t i = 0; i < rg_conf_nkeys; i++) {
		const struct rg_conf_key *k = &rg_conf_keys[i];
		const char *name = rg__child(k, scope, slen);
		if (!name)
			continue;
		size_t old = rg__push_key(p, name);
		rg__value(p, k, json_object_get(o, name), scope, obj);
		rg__pop(p, old);
	}
}

/* A Markdown table cell's text: the row's documented type and range. */
static void rg__doc_type(const struct rg_conf_key *k, char *out, size_t cap)
{
	char c[256];

	switch (k->type) {
	case RG_CONF_UINT:
		snprintf(out, cap, "integer %u..%u%s%s", k->min, k->max, k->what ? ", " : "",
			 k->what ? k->what : "");
		return;
	case RG_CONF_BOOL:
		snprintf(out, cap, "`true` or `false`");
		return;
	case RG_CONF_ENUM:
		rg__choices(c, sizeof(c), k->choices, "`");
		snprintf(out, cap, "%s", c);
		return;
	case RG_CONF_STRING:
		snprintf(out, cap, "string: %s", k->what);
		return;
	case RG_CONF_OBJECT:
		snprintf(out, cap, "object");
		return;
	case RG_CONF_ARRAY:
		snprintf(out, cap, "array of %u..%u %s", k->min, k->max, k->what);
		return;
	case RG_CONF_STRINGS:
		snprintf(out, cap, "array of %u..%u strings: %s", k->min, k->max, k->what);
		return;
	}
}

static void rg__doc_default(const struct rg_conf_key *k, char *out, size_t cap)
{
	if (k->def_doc)
		snprintf(out, cap, "%s", k->def_doc);
	else if (k->flags & RG_CONF_REQUIRED)
		snprintf(out, cap, "required");
	else if (k->type == RG_CONF_UINT)
		snprintf(out, cap, "%u", k->def);
	else if (k->type == RG_CONF_BOOL)
		snprintf(out, cap, "`%s`", k->def ? "true" : "false");
	else if (k->type == RG_CONF_ENUM)
		snprintf(out, cap, "`\"%s\"`", k->choices[k->def]);
	else if (k->type == RG_CONF_STRING && k->def_str)
		snprintf(out, cap, "`\"%s\"`", k->def_str);
	else
		snprintf(out, cap, "none");
}

char *rg_config_doc(void)
{
	static const char head[] = "| key | type, range | default | meaning |\n|---|---|---|---|\n";
	size_t cap = sizeof(head), len;
	char *out;

	for (size_t i = 0; i < rg_conf_nkeys; i++)
		if (rg_conf_keys[i].doc)
			cap += strlen(rg_conf_keys[i].path) + strlen(rg_conf_keys[i].doc) + 1024;
	if (!(out = malloc(cap)))
		return NULL;
	len = (size_t)snprintf(out, cap, "%s", head);
	for (size_t i = 0; i < rg_conf_nkeys; i++) {
		const struct rg_conf_key *k = &rg_conf_keys[i];
		char type[512], def[256];
		if (!k->doc)
			continue;
		rg__doc_type(k, type, sizeof(type));
		rg__doc_default(k, def, sizeof(def));
		len += (size_t)snprintf(out + len, cap - len, "| `%s` | %s | %s | %s |\n", k->path,
					type, def, k->doc);
	}
	return out;
}

struct rg_config *rg_config_parse(const char *name, const char *text, size_t len,
				  rg_config_err_fn err, void *ctx)
{
	struct rg_conf_parse p = {.name = name, .err = err, .ctx = ctx};
	struct rg_config *cfg = calloc(1, sizeof(*cfg));
	json_error_t jerr;
	json_t *root = NULL;

	if (!cfg || !(cfg->path = strdup(name))) {
		rg__fail(&p, "out of memory");
		goto fail;
	}
	rg__defaults(&p, "", cfg);

	if (!len) {
		rg__fail(&p, "the file is empty, expected a JSON object");
		goto fail;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rg__fail(&p, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
		goto fail;
	}
	if (!json_is_object(root)) {
		rg__fail(&p, "expected a JSON object at the top");
		goto fail;
	}
	rg__object(&p, root, "", cfg);
	rg_conf_check_whole(&p, cfg);
	if (p.errors)
		goto fail;
	json_decref(root);
	return cfg;
fail:
	json_decref(root);
	rg_config_free(cfg);
	return NULL;
}

struct rg_config *rg_config_load(const char *path, rg_config_err_fn err, void *ctx)
{
	struct rg_conf_parse p = {.name = path, .err = err, .ctx = ctx};
	struct rg_config *cfg = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "rb");

	if (!f) {
		rg__fail(&p, "cannot open: %s", strerror(errno));
		return NULL;
	}
	buf = malloc(RG__MAX_CONFIG_BYTES + 1);
	if (!buf) {
		rg__fail(&p, "out of memory");
		goto out;
	}
	len = fread(buf, 1, RG__MAX_CONFIG_BYTES + 1, f);
	if (ferror(f))
		rg__fail(&p, "cannot read: %s", strerror(errno));
	else if (len > RG__MAX_CONFIG_BYTES)
		rg__fail(&p, "larger than %d bytes", RG__MAX_CONFIG_BYTES);
	else
		cfg = rg_config_parse(path, buf, len, err, ctx);
out:
	free(buf);
	fclose(f);
	return cfg;
}

void rg_config_free(struct rg_config *cfg)
{
	if (!cfg)
		return;
	rg_auth_free(cfg->auth);
	rg__free_struct("", cfg);
	free(cfg->path);
	free(cfg);
}
