/*
 * The config's key table, private to gateway/config.c (the engine that walks it: parsing,
 * defaults, freeing, the documentation table) and gateway/config_keys.c (the rows, and
 * the checks no row can state alone).
 *
 * A row is one key: its path ("limits.max_rooms", "listen[].tls.cert", where "[]" is an
 * element of an array), its type and range, its default, the field it lands in, and its
 * line of docs/CONFIG.md. Rows of one object are adjacent, in the order they are checked
 * and documented; an object's fields live in the struct of the nearest enclosing array
 * element (struct rg_config at the top).
 */
#ifndef RG_CONFIG_TABLE_H
#define RG_CONFIG_TABLE_H

#include "config.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum rg_conf_type {
	RG_CONF_UINT,    /* uint32_t, min..max */
	RG_CONF_BOOL,    /* int, 0 or 1 */
	RG_CONF_ENUM,    /* an enum field: the index of the string in choices */
	RG_CONF_STRING,  /* char *, non-empty, owned by the config */
	RG_CONF_OBJECT,  /* its keys are the rows under it; absent: they keep their defaults */
	RG_CONF_ARRAY,   /* min..max objects, each a struct of elem_size (calloc'd array) */
	RG_CONF_STRINGS, /* min..max non-empty strings: char ** (calloc'd), each owned */
};

#define RG_CONF_REQUIRED 1u

struct rg_conf_parse;

struct rg_conf_key;
/* A check of a value the row's type admits, in the struct obj: reports through
 * rg_conf_fail at the key's path. */
typedef void (*rg_conf_check_fn)(struct rg_conf_parse *p, const struct rg_conf_key *k, void *obj);
/* A check of one array element as a whole, once its rows are parsed: elem is the JSON
 * object, arr the array's elements so far (arr[i] is this one). */
typedef void (*rg_conf_elem_fn)(struct rg_conf_parse *p, json_t *elem, void *arr, size_t i);

struct rg_conf_key {
	const char *path;
	enum rg_conf_type type;
	unsigned flags;
	uint32_t min, max;           /* UINT: the range; ARRAY: how many elements */
	uint32_t def;                /* UINT, BOOL, ENUM (an index into choices) */
	const char *const *choices;  /* ENUM, NULL-terminated */
	const char *def_str;         /* STRING: the default, NULL for none */
	size_t offset;               /* the field, in the struct of the enclosing element */
	size_t count_offset;         /* ARRAY, STRINGS: its size_t count, same struct */
	size_t elem_size;            /* ARRAY */
	const char *what;            /* STRING, STRINGS: what is expected (of each); ARRAY: the
					elements' noun; UINT: a condition after the range, or NULL */
	const char *def_doc;         /* the documented default where the value does not say it */
	const char *doc;             /* the meaning; NULL: an object without a row of its own */
	rg_conf_check_fn check;      /* STRING: a value that was given */
	rg_conf_elem_fn each;        /* ARRAY */
	int (*valid)(const char *s); /* STRINGS: 1 if an element is what is expected */
};

extern const struct rg_conf_key rg_conf_keys[];
extern const size_t rg_conf_nkeys;

/* A line that is not an error ("FILE: PATH: warning: ..."): what start accepts but an
 * operator should hear of. */
__attribute__((format(printf, 3, 4))) void rg_conf_warn(struct rg_conf_parse *p, const char *key,
							const char *fmt, ...);

/* 1 once any error was reported. */
int rg_conf_failed(const struct rg_conf_parse *p);

/* Checks across keys, once the whole file is parsed. */
void rg_conf_check_whole(struct rg_conf_parse *p, struct rg_config *cfg);

/* One error at the current path (extended by key when not NULL). */
__attribute__((format(printf, 3, 4))) void rg_conf_fail(struct rg_conf_parse *p, const char *key,
							const char *fmt, ...);

#endif
