#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RG__MAX_LISTEN       RG_LISTEN_MAX
#define RG__MAX_ROOMS_CONF   10000
#define RG__MAX_CONFIG_BYTES (4 * 1024 * 1024)

/* The parse state: where we are in the document (for messages) and how it went. */
struct rg__cp {
	const char *name;
	char path[256];
	size_t plen;
	rg_config_err_fn err;
	void *ctx;
	int errors;
};

__attribute__((format(printf, 2, 3))) static void rg__fail(struct rg__cp *p, const char *fmt, ...)
{
	char msg[512], line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->plen)
		snprintf(line, sizeof(line), "%s: %s: %s", p->name, p->path, msg);
	else
		snprintf(line, sizeof(line), "%s: %s", p->name, msg);
	p->errors++;
	if (p->err)
		p->err(p->ctx, line);
}

/* Path segments: push returns the old length, pop restores it. */
static size_t rg__push_key(struct rg__cp *p, const char *key)
{
	size_t old = p->plen;
	int n = snprintf(p->path + p->plen, sizeof(p->path) - p->plen, "%s%s", p->plen ? "." : "",
			 key);
	if (n > 0)
		p->plen = strlen(p->path);
	return old;
}

static size_t rg__push_index(struct rg__cp *p, size_t i)
{
	size_t old = p->plen;
	snprintf(p->path + p->plen, sizeof(p->path) - p->plen, "[%zu]", i);
	p->plen = strlen(p->path);
	return old;
}

static void rg__pop(struct rg__cp *p, size_t old)
{
	p->plen = old;
	p->path[old] = '\0';
}

/* Reports keys of obj not in allowed (NULL-terminated). */
static void rg__only_keys(struct rg__cp *p, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		const char *const *a = allowed;
		while (*a && strcmp(*a, key))
			a++;
		if (!*a) {
			size_t old = rg__push_key(p, key);
			rg__fail(p, "unknown key");
			rg__pop(p, old);
		}
	}
}

/* An optional object member; reports a wrong type. NULL when absent or wrong. */
static json_t *rg__object(struct rg__cp *p, json_t *parent, const char *key)
{
	json_t *v = json_object_get(parent, key);
	if (!v || json_is_object(v))
		return v;
	size_t old = rg__push_key(p, key);
	rg__fail(p, "expected an object");
	rg__pop(p, old);
	return NULL;
}

static void rg__uint(struct rg__cp *p, json_t *obj, const char *key, uint32_t min, uint32_t max,
		     uint32_t *out)
{
	json_t *v = obj ? json_object_get(obj, key) : NULL;
	if (!v)
		return; /* *out keeps its default */
	json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
	if (!json_is_integer(v) || n < (json_int_t)min || n > (json_int_t)max) {
		size_t old = rg__push_key(p, key);
		rg__fail(p, "expected an integer %u..%u", min, max);
		rg__pop(p, old);
		return;
	}
	*out = (uint32_t)n;
}

/* A string member; returns a malloc'd copy or NULL (absent, or reported). */
static char *rg__string(struct rg__cp *p, json_t *obj, const char *key, int required,
			const char *what)
{
	json_t *v = json_object_get(obj, key);
	size_t old = rg__push_key(p, key);
	char *s = NULL;

	if (!v) {
		if (required)
			rg__fail(p, "missing, expected %s", what);
	} else if (!json_is_string(v) || !json_string_length(v) ||
		   strlen(json_string_value(v)) != json_string_length(v)) {
		rg__fail(p, "expected %s", what);
	} else {
		s = strdup(json_string_value(v));
	}
	rg__pop(p, old);
	return s;
}

static void rg__readable_file(struct rg__cp *p, const char *key, const char *file)
{
	struct stat st;
	const char *why = NULL;
	size_t old = rg__push_key(p, key);

	if (stat(file, &st))
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (access(file, R_OK))
		why = strerror(errno);
	if (why)
		rg__fail(p,
			 "cannot read \"%s\" (%s); make a dev certificate with scripts/dev-cert.sh",
			 file, why);
	rg__pop(p, old);
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

static void rg__listen(struct rg__cp *p, json_t *arr, struct rg_config *cfg)
{
	static const char *const keys[] = {"port", "host", "tls", NULL};
	static const char *const tls_keys[] = {"cert", "key", NULL};
	size_t old = rg__push_key(p, "listen"), i;
	json_t *l;

	if (!arr) {
		rg__fail(p, "missing, expected an array of 1..%d listeners", RG__MAX_LISTEN);
		goto out;
	}
	if (!json_is_array(arr) || !json_array_size(arr) || json_array_size(arr) > RG__MAX_LISTEN) {
		rg__fail(p, "expected an array of 1..%d listeners", RG__MAX_LISTEN);
		goto out;
	}
	cfg->listen = calloc(json_array_size(arr), sizeof(*cfg->listen));
	if (!cfg->listen) {
		rg__fail(p, "out of memory");
		goto out;
	}
	json_array_foreach(arr, i, l) {
		struct rg_listen_conf *lc = &cfg->listen[cfg->nlisten++];
		size_t o2 = rg__push_index(p, i);
		uint32_t port = 0;

		if (!json_is_object(l)) {
			rg__fail(p, "expected an object");
			rg__pop(p, o2);
			continue;
		}
		rg__only_keys(p, l, keys);
		if (!json_object_get(l, "port")) {
			size_t o3 = rg__push_key(p, "port");
			rg__fail(p, "missing, expected an integer 1..65535");
			rg__pop(p, o3);
		}
		rg__uint(p, l, "port", 1, 65535, &port);
		lc->port = (int)port;
		for (size_t j = 0; port && j + 1 < cfg->nlisten; j++) {
			if (cfg->listen[j].port == lc->port) {
				size_t o3 = rg__push_key(p, "port");
				rg__fail(p, "port %u is already used by listen[%zu]", port, j);
				rg__pop(p, o3);
			}
		}
		if (json_object_get(l, "host")) {
			unsigned char addr[16];
			lc->host = rg__string(p, l, "host", 1, "an IPv4 or IPv6 address");
			if (lc->host && inet_pton(AF_INET, lc->host, addr) != 1 &&
			    inet_pton(AF_INET6, lc->host, addr) != 1) {
				size_t o3 = rg__push_key(p, "host");
				rg__fail(p, "expected an IPv4 or IPv6 address");
				rg__pop(p, o3);
			}
		}
		json_t *tls = rg__object(p, l, "tls");
		if (tls) {
			size_t o3 = rg__push_key(p, "tls");
			rg__only_keys(p, tls, tls_keys);
			lc->cert = rg__string(p, tls, "cert", 1, "a certificate file path");
			lc->key = rg__string(p, tls, "key", 1, "a private key file path");
			if (lc->cert)
				rg__readable_file(p, "cert", lc->cert);
			if (lc->key)
				rg__readable_file(p, "key", lc->key);
			rg__pop(p, o3);
		}
		rg__pop(p, o2);
	}
out:
	rg__pop(p, old);
}

static void rg__room(struct rg__cp *p, json_t *r, struct rg_config *cfg)
{
	static const char *const keys[] = {"name",     "pattern", "history",      "publish",
					   "presence", "on_lag",  "idle_seconds", NULL};
	struct rg_room_conf *rc = &cfg->rooms[cfg->nrooms];
	json_t *name = json_object_get(r, "name"), *pat = json_object_get(r, "pattern");

	rg__only_keys(p, r, keys);
	rc->history = 100;
	rc->publish = RG_PUBLISH_ANYONE;
	rc->idle_seconds = 300;

	if (!!name == !!pat) {
		rg__fail(p, "expected exactly one of \"name\" or \"pattern\"");
		return;
	}
	if (name) {
		rc->name = rg__string(p, r, "name", 1,
				      "a room name (1..128 of A-Z a-z 0-9 _ . : @ ~ -)");
		if (rc->name && !rg_room_name_valid(rc->name, strlen(rc->name))) {
			size_t o = rg__push_key(p, "name");
			rg__fail(p, "expected a room name (1..128 of A-Z a-z 0-9 _ . : @ ~ -)");
			rg__pop(p, o);
		}
		if (json_object_get(r, "idle_seconds")) {
			size_t o = rg__push_key(p, "idle_seconds");
			rg__fail(p, "only pattern rooms are dropped when idle");
			rg__pop(p, o);
		}
	} else {
		const char *what = "a pattern: room-name characters ending in one '*'";
		char *s = rg__string(p, r, "pattern", 1, what);
		size_t n = s ? strlen(s) : 0;
		rc->is_pattern = 1;
		if (s && (s[n - 1] != '*' || n - 1 > RG_ROOM_NAME_MAX ||
			  (n > 1 && !rg_room_name_valid(s, n - 1)))) {
			size_t o = rg__push_key(p, "pattern");
			rg__fail(p, "expected %s", what);
			rg__pop(p, o);
		}
		if (s)
			s[n - 1] = '\0'; /* keep the prefix */
		rc->name = s;
		rg__uint(p, r, "idle_seconds", 1, 86400, &rc->idle_seconds);
	}
	rg__uint(p, r, "history", 1, 1000000, &rc->history);

	json_t *pub = json_object_get(r, "publish");
	if (pub) {
		const char *v = json_string_value(pub);
		if (v && !strcmp(v, "anyone"))
			rc->publish = RG_PUBLISH_ANYONE;
		else if (v && !strcmp(v, "server"))
			rc->publish = RG_PUBLISH_SERVER;
		else {
			size_t o = rg__push_key(p, "publish");
			rg__fail(p, "expected \"anyone\" or \"server\"");
			rg__pop(p, o);
		}
	}
	json_t *presence = json_object_get(r, "presence");
	if (presence && !json_is_boolean(presence)) {
		size_t o = rg__push_key(p, "presence");
		rg__fail(p, "expected true or false");
		rg__pop(p, o);
	}
	rc->presence = json_is_true(presence);

	json_t *lag = json_object_get(r, "on_lag");
	if (lag) {
		const char *v = json_string_value(lag);
		if (v && !strcmp(v, "disconnect"))
			rc->on_lag = RG_LAG_DISCONNECT;
		else if (v && !strcmp(v, "skip"))
			rc->on_lag = RG_LAG_SKIP;
		else {
			size_t o = rg__push_key(p, "on_lag");
			rg__fail(p, "expected \"disconnect\" or \"skip\"");
			rg__pop(p, o);
		}
	}
	if (!rc->name)
		return;
	for (size_t j = 0; j < cfg->nrooms; j++) {
		struct rg_room_conf *o = &cfg->rooms[j];
		if (o->name && o->is_pattern == rc->is_pattern && !strcmp(o->name, rc->name))
			rg__fail(p, "the same %s as rooms[%zu]",
				 rc->is_pattern ? "pattern" : "name", j);
	}
}

static void rg__rooms(struct rg__cp *p, json_t *arr, struct rg_config *cfg)
{
	size_t old = rg__push_key(p, "rooms"), i;
	json_t *r;

	if (!arr) {
		rg__fail(p, "missing, expected an array of 1..%d rooms", RG__MAX_ROOMS_CONF);
		goto out;
	}
	if (!json_is_array(arr) || !json_array_size(arr) ||
	    json_array_size(arr) > RG__MAX_ROOMS_CONF) {
		rg__fail(p, "expected an array of 1..%d rooms", RG__MAX_ROOMS_CONF);
		goto out;
	}
	cfg->rooms = calloc(json_array_size(arr), sizeof(*cfg->rooms));
	if (!cfg->rooms) {
		rg__fail(p, "out of memory");
		goto out;
	}
	json_array_foreach(arr, i, r) {
		size_t o2 = rg__push_index(p, i);
		if (json_is_object(r))
			rg__room(p, r, cfg);
		else
			rg__fail(p, "expected an object");
		cfg->nrooms++;
		rg__pop(p, o2);
	}
out:
	rg__pop(p, old);
}

/* The config's integer keys: one row each drives the parser (type, range, unknown
 * keys), the defaults, and the key table of docs/CONFIG.md, which a unit test holds to
 * this table. A section whose keys are all here is parsed from it alone. */
static const struct rg_config_key rg__keys[] = {
	{"sse", "keepalive_seconds", 1, 3600, 15,
	 offsetof(struct rg_config, sse_keepalive_seconds)},
	{"sse", "retry_ms", 0, 600000, 3000, offsetof(struct rg_config, sse_retry_ms)},
	{"ws", "ping_seconds", 1, 3600, 30, offsetof(struct rg_config, ws_ping_seconds)},
	{"ws", "ping_timeout_seconds", 1, 3600, 10,
	 offsetof(struct rg_config, ws_ping_timeout_seconds)},
	{"limits", "max_message_bytes", 16, 16 * 1024 * 1024, 65536,
	 offsetof(struct rg_config, max_message_bytes)},
	{"limits", "max_rooms", 1, 1000000, 10000, offsetof(struct rg_config, max_rooms)},
	{"limits", "max_rooms_per_connection", 1, 1024, 64,
	 offsetof(struct rg_config, max_rooms_per_connection)},
	{"limits", "max_pending_bytes", 65536, 1024 * 1024 * 1024, 1024 * 1024,
	 offsetof(struct rg_config, max_pending_bytes)},
	{"shutdown", "drain_ms", 0, 60000, 1000, offsetof(struct rg_config, drain_ms)},
	{"delivery", "coalesce_us", 0, 100000, 0, offsetof(struct rg_config, coalesce_us)},
};
#define RG__NKEYS (sizeof(rg__keys) / sizeof(rg__keys[0]))

const struct rg_config_key *rg_config_keys(size_t *n)
{
	*n = RG__NKEYS;
	return rg__keys;
}

static uint32_t *rg__field(struct rg_config *cfg, const struct rg_config_key *k)
{
	return (uint32_t *)(void *)((char *)cfg + k->offset);
}

/* The table's sections: each an object whose keys are exactly its rows. */
static void rg__table_sections(struct rg__cp *p, json_t *root, struct rg_config *cfg)
{
	for (size_t i = 0; i < RG__NKEYS; i++) {
		const char *sec = rg__keys[i].section, *keys[RG__NKEYS + 1];
		size_t nk = 0;
		json_t *o;

		if (i && !strcmp(rg__keys[i - 1].section, sec))
			continue; /* rows of a section are adjacent */
		for (size_t j = i; j < RG__NKEYS && !strcmp(rg__keys[j].section, sec); j++)
			keys[nk++] = rg__keys[j].key;
		keys[nk] = NULL;
		if (!(o = rg__object(p, root, sec)))
			continue;
		size_t old = rg__push_key(p, sec);
		rg__only_keys(p, o, keys);
		for (size_t j = i; j < i + nk; j++)
			rg__uint(p, o, rg__keys[j].key, rg__keys[j].min, rg__keys[j].max,
				 rg__field(cfg, &rg__keys[j]));
		rg__pop(p, old);
	}
}

static void rg__top(struct rg__cp *p, json_t *root, struct rg_config *cfg)
{
	static const char *const keys[] = {"listen", "http",     "sse",      "ws", "limits",
					   "rooms",  "shutdown", "delivery", NULL};
	static const char *const http_keys[] = {"web_root", NULL};
	json_t *o;
	size_t old;

	rg__only_keys(p, root, keys);
	rg__listen(p, json_object_get(root, "listen"), cfg);

	if ((o = rg__object(p, root, "http"))) {
		old = rg__push_key(p, "http");
		rg__only_keys(p, o, http_keys);
		if (json_object_get(o, "web_root")) {
			free(cfg->web_root);
			cfg->web_root = rg__string(p, o, "web_root", 1, "a directory path");
		}
		rg__pop(p, old);
	}
	if (cfg->web_root) {
		struct stat st;
		if (stat(cfg->web_root, &st) || !S_ISDIR(st.st_mode)) {
			old = rg__push_key(p, "http.web_root");
			rg__fail(p, "\"%s\" is not a directory", cfg->web_root);
			rg__pop(p, old);
		}
	}
	rg__table_sections(p, root, cfg);
	rg__rooms(p, json_object_get(root, "rooms"), cfg);

	/* A connection must be able to owe a few of the largest messages without being
	 * judged slow for it. */
	if ((uint64_t)cfg->max_pending_bytes < 4 * (uint64_t)cfg->max_message_bytes) {
		old = rg__push_key(p, "limits.max_pending_bytes");
		rg__fail(p, "expected at least 4 x limits.max_message_bytes (%llu)",
			 4ULL * cfg->max_message_bytes);
		rg__pop(p, old);
	}

	size_t exact = 0;
	for (size_t i = 0; i < cfg->nrooms; i++)
		exact += !cfg->rooms[i].is_pattern;
	if (exact > cfg->max_rooms) {
		old = rg__push_key(p, "limits.max_rooms");
		rg__fail(p, "%u is less than the %zu rooms named in \"rooms\"", cfg->max_rooms,
			 exact);
		rg__pop(p, old);
	}
}

struct rg_config *rg_config_parse(const char *name, const char *text, size_t len,
				  rg_config_err_fn err, void *ctx)
{
	struct rg__cp p = {.name = name, .err = err, .ctx = ctx};
	struct rg_config *cfg = calloc(1, sizeof(*cfg));
	json_error_t jerr;
	json_t *root = NULL;

	if (!cfg || !(cfg->path = strdup(name)) || !(cfg->web_root = strdup("web"))) {
		rg__fail(&p, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < RG__NKEYS; i++)
		*rg__field(cfg, &rg__keys[i]) = rg__keys[i].def;

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
	rg__top(&p, root, cfg);
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
	struct rg__cp p = {.name = path, .err = err, .ctx = ctx};
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
	for (size_t i = 0; i < cfg->nlisten; i++) {
		free(cfg->listen[i].host);
		free(cfg->listen[i].cert);
		free(cfg->listen[i].key);
	}
	free(cfg->listen);
	for (size_t i = 0; i < cfg->nrooms; i++)
		free(cfg->rooms[i].name);
	free(cfg->rooms);
	free(cfg->web_root);
	free(cfg->path);
	free(cfg);
}
