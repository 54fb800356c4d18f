#include "auth.h"

#include "config.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const rg__acts[RG_ACT_N] = {
	[RG_ACT_SUBSCRIBE] = "subscribe",
	[RG_ACT_PUBLISH] = "publish",
	[RG_ACT_HISTORY] = "history",
	[RG_ACT_PRESENCE] = "presence",
};

/* A grant's room: a room name, or a prefix of one ending in '*'. */
static int rg__grant_room_valid(const char *s)
{
	size_t n = strlen(s);

	if (n && s[n - 1] == '*')
		return n == 1 || rg_room_name_valid(s, n - 1);
	return rg_room_name_valid(s, n);
}

/* {"ROOM": ["subscribe", ...], ...}: 0 when it is, -1 when not. */
static int rg__grants_valid(json_t *rooms)
{
	const char *room;
	json_t *acts, *a;
	size_t i;

	if (!json_is_object(rooms))
		return -1;
	json_object_foreach(rooms, room, acts) {
		if (!rg__grant_room_valid(room) || !json_is_array(acts))
			return -1;
		json_array_foreach(acts, i, a) {
			size_t k = 0;
			while (k < RG_ACT_N &&
			       !(json_is_string(a) && !strcmp(json_string_value(a), rg__acts[k])))
				k++;
			if (k == RG_ACT_N)
				return -1;
		}
	}
	return 0;
}

/* A claim that is a name: 1..64 bytes, no control characters. 0 and copied into out
 * (or absent: out is ""), -1 when it is something else. */
static int rg__name_claim(json_t *claims, const char *key, char out[RG_NAME_MAX + 1])
{
	json_t *v = json_object_get(claims, key);

	out[0] = '\0';
	if (!v)
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
	    !rg_token_valid(json_string_value(v), json_string_length(v), RG_NAME_MAX))
		return -1;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

int rg_identity_from_claims(struct rg_identity *id, json_t *claims, const char **why)
{
	json_t *rg = json_object_get(claims, "roomgate"), *admin, *rooms, *exp;

	memset(id, 0, sizeof(*id));
	if (rg__name_claim(claims, "sub", id->sub) || rg__name_claim(claims, "name", id->name)) {
		*why = "sub and name: expected 1..64 bytes, no control characters";
		return -1;
	}
	admin = json_object_get(rg, "admin");
	rooms = json_object_get(rg, "rooms");
	if ((rg && !json_is_object(rg)) || (admin && !json_is_boolean(admin)) ||
	    (rooms && rg__grants_valid(rooms))) {
		*why = "roomgate: expected {\"admin\": BOOL, \"rooms\": {ROOM: [ACTION, ...]}}";
		return -1;
	}
	if (!id->name[0])
		memcpy(id->name, id->sub, sizeof(id->name));
	exp = json_object_get(claims, "exp");
	/* jwt.c has checked it is a number; a fraction is cut (an expiry earlier, not
	 * later) */
	id->exp = json_is_integer(exp) ? json_integer_value(exp)
		  : json_is_real(exp)  ? (int64_t)json_real_value(exp)
				       : 0;
	id->authenticated = 1;
	id->server = json_is_true(admin);
	id->grants = json_incref(rooms);
	return 0;
}

int rg_auth_token(const struct rg_auth *auth, const char *token, size_t len, int64_t now,
		  struct rg_identity *id, const char **why)
{
	struct rg_jwt_check check = auth->check;
	json_t *claims;
	int rc;

	memset(id, 0, sizeof(*id));
	check.now = now;
	if (rg_jwt_verify(&auth->keys, token, len, &check, &claims, why))
		return -1;
	rc = rg_identity_from_claims(id, claims, why);
	json_decref(claims);
	return rc;
}

int rg_auth_add_api_key_hash(struct rg_auth *auth, const char *hex, size_t len)
{
	unsigned char h[32], (*keys)[32];

	if (len != 64)
		return -1;
	for (size_t i = 0; i < 32; i++) {
		int v = 0;
		for (size_t j = 0; j < 2; j++) {
			char c = hex[2 * i + j];
			int d = c >= '0' && c <= '9'   ? c - '0'
				: c >= 'a' && c <= 'f' ? c - 'a' + 10
				: c >= 'A' && c <= 'F' ? c - 'A' + 10
						       : -1;
			if (d < 0)
				return -1;
			v = v * 16 + d;
		}
		h[i] = (unsigned char)v;
	}
	if (!(keys = realloc(auth->api_keys, (auth->napi_keys + 1) * sizeof(*keys))))
		return -1;
	auth->api_keys = keys;
	memcpy(keys[auth->napi_keys++], h, 32);
	return 0;
}

int rg_auth_api_key(const struct rg_auth *auth, const char *key, size_t len, struct rg_identity *id)
{
	unsigned char h[32];
	unsigned int hl = 0;
	int found = 0;

	if (!len || !EVP_Digest(key, len, h, &hl, EVP_sha256(), NULL) || hl != 32)
		return 0;
	/* every hash is compared, so the time says nothing of which one matched */
	for (size_t i = 0; i < auth->napi_keys; i++)
		found |= !CRYPTO_memcmp(h, auth->api_keys[i], 32);
	if (found) {
		memset(id, 0, sizeof(*id));
		id->authenticated = id->server = 1;
	}
	return found;
}

void rg_identity_clear(struct rg_identity *id)
{
	json_decref(id->grants);
	memset(id, 0, sizeof(*id));
}

void rg_auth_free(struct rg_auth *auth)
{
	if (!auth)
		return;
	rg_jwt_keyring_free(&auth->keys);
	free(auth->api_keys);
	free(auth);
}

/* A key or secret file, whole: malloc'd and NUL-terminated, *len bytes; NULL with a
 * reason in err. Key files are small: past 1 MB it is the wrong file. */
static char *rg__slurp(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0;

	if (!f) {
		snprintf(err, errlen, "cannot read \"%s\" (%s)", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(RG_AUTH_FILE_MAX + 1)))
		n = fread(buf, 1, RG_AUTH_FILE_MAX + 1, f);
	if (!buf || ferror(f) || n > RG_AUTH_FILE_MAX) {
		snprintf(err, errlen, "cannot read \"%s\" (%s)", path,
			 !buf                   ? "out of memory"
			 : n > RG_AUTH_FILE_MAX ? "larger than 1 MB"
						: "I/O error");
		free(buf);
		buf = NULL;
	} else {
		buf[n] = '\0';
		*len = n;
	}
	fclose(f);
	return buf;
}

static int rg__load_key(struct rg_auth *auth, const struct rg_key_conf *k, char *err, size_t errlen)
{
	enum rg_jwt_alg alg = k->alg ? rg_jwt_alg_of(k->alg) : RG_JWT_ALG_NONE;
	const char *path = k->file ? k->file : k->secret_file;
	size_t len = 0, at = 0;
	char *text = rg__slurp(path, &len, err, errlen);
	int rc;

	if (!text)
		return -1;
	while (at < len && strchr(" \t\r\n", text[at]))
		at++;
	if (k->secret_file) {
		/* `echo SECRET > file` adds a newline the secret does not have */
		if (len && text[len - 1] == '\n')
			len -= 1 + (len > 1 && text[len - 2] == '\r');
		rc = rg_jwt_keyring_add_secret(&auth->keys, (const unsigned char *)text, len,
					       k->kid, k->alg ? alg : RG_JWT_HS256, err, errlen);
	} else if (text[at] == '{') {
		if (k->kid || k->alg) {
			snprintf(err, errlen, "a JWKS names its keys' kid and alg itself");
			rc = -1;
		} else
			rc = rg_jwt_keyring_add_jwks(&auth->keys, text, len, err, errlen);
	} else
		rc = rg_jwt_keyring_add_pem(&auth->keys, text, len, k->kid, alg, err, errlen);
	OPENSSL_cleanse(text, len);
	free(text);
	return rc;
}

/* The API key file: a SHA-256 in hex per line, as `sha256sum` prints it (what follows
 * the hash is a label); blank lines and lines starting with '#' are skipped. */
static int rg__load_api_keys(struct rg_auth *auth, const char *path, char *err, size_t errlen)
{
	size_t len = 0, lineno = 0;
	char *text = rg__slurp(path, &len, err, errlen);

	if (!text)
		return -1;
	for (char *line = text; line < text + len;) {
		char *end = memchr(line, '\n', (size_t)(text + len - line));
		size_t n = end ? (size_t)(end - line) : (size_t)(text + len - line), h = 0;
		lineno++;
		while (h < n && strchr("0123456789abcdefABCDEF", line[h]))
			h++;
		if (n && line[0] != '#' && strspn(line, " \t\r") < n &&
		    ((h != n && !strchr(" \t\r", line[h])) ||
		     rg_auth_add_api_key_hash(auth, line, h))) {
			snprintf(err, errlen,
				 "\"%s\" line %zu: expected a SHA-256 in hex (64 digits), as "
				 "`sha256sum` prints it",
				 path, lineno);
			free(text);
			return -1;
		}
		line += n + 1;
	}
	free(text);
	if (!auth->napi_keys) {
		snprintf(err, errlen, "\"%s\" holds no key hash", path);
		return -1;
	}
	return 0;
}

struct rg_auth *rg_auth_load(const struct rg_config *cfg, rg_auth_fail_fn fail, void *ctx)
{
	struct rg_auth *auth;
	char err[256], where[64];
	int bad = 0;

	if (!cfg->nauth_keys && !cfg->auth_api_keys_file)
		return NULL;
	if (!(auth = calloc(1, sizeof(*auth)))) {
		fail(ctx, "auth", "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < cfg->nauth_keys; i++) {
		const struct rg_key_conf *k = &cfg->auth_keys[i];
		if (rg__load_key(auth, k, err, sizeof(err))) {
			snprintf(where, sizeof(where), "auth.keys[%zu].%s", i,
				 k->file ? "file" : "secret_file");
			fail(ctx, where, err);
			bad = 1;
		}
	}
	if (cfg->auth_api_keys_file &&
	    rg__load_api_keys(auth, cfg->auth_api_keys_file, err, sizeof(err))) {
		fail(ctx, "auth.api_keys_file", err);
		bad = 1;
	}
	auth->check.leeway = cfg->auth_leeway_seconds;
	auth->check.issuer = cfg->auth_issuer;
	auth->check.audience = cfg->auth_audience;
	auth->check.max_bytes = cfg->auth_max_token_bytes;
	if (bad) {
		rg_auth_free(auth);
		return NULL;
	}
	return auth;
}

static int rg__granted(json_t *grants, enum rg_action act, const char *room)
{
	const char *key;
	json_t *acts, *a;
	size_t i;

	json_object_foreach(grants, key, acts) {
		size_t kl = strlen(key);
		if (key[kl - 1] == '*' ? strncmp(room, key, kl - 1) : strcmp(room, key))
			continue;
		/* who may subscribe may read what subscribing shows: history and presence */
		json_array_foreach(acts, i, a) {
			const char *v = json_string_value(a);
			if (!strcmp(v, rg__acts[act]) ||
			    ((act == RG_ACT_HISTORY || act == RG_ACT_PRESENCE) &&
			     !strcmp(v, rg__acts[RG_ACT_SUBSCRIBE])))
				return 1;
		}
	}
	return 0;
}

/* Is the part of room after its pattern's prefix bound to sub? */
static int rg__bound(enum rg_bind bind, const char *rest, const char *sub)
{
	size_t sl = strlen(sub);

	if (!sl)
		return 0;
	if (bind == RG_BIND_SUB)
		return !strcmp(rest, sub);
	for (const char *p = rest;; p++) { /* RG_BIND_MEMBERS: one of the ':'-joined users */
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == sl && !memcmp(p, sub, sl))
			return 1;
		if (!end)
			return 0;
		p = end;
	}
}

int rg_auth_allows(const struct rg_identity *id, enum rg_action act, enum rg_policy policy,
		   enum rg_bind bind, const char *room, size_t plen, const char **why)
{
	if (id->server)
		return 1; /* backends may do anything */
	switch (policy) {
	case RG_POLICY_ANYONE:
		break;
	case RG_POLICY_AUTHENTICATED:
		if (!id->authenticated) {
			*why = "this room needs a token";
			return 0;
		}
		break;
	case RG_POLICY_CLAIM:
		if (!id->grants || !rg__granted(id->grants, act, room)) {
			*why = id->authenticated ? "the token does not grant this in this room"
						 : "this room needs a token that grants it";
			return 0;
		}
		break;
	case RG_POLICY_SERVER:
		*why = "only backends (an API key, or an admin token) may do this here";
		return 0;
	}
	if (bind != RG_BIND_NONE && !(id->authenticated && rg__bound(bind, room + plen, id->sub))) {
		*why = id->authenticated ? "this room belongs to other users"
					 : "this room belongs to its users: it needs a token";
		return 0;
	}
	return 1;
}

int rg_auth_room_allows(const struct rg_identity *id, enum rg_action act,
			const struct rg_room_conf *rc, const char *room, const char **why)
{
	const enum rg_policy pol[RG_ACT_N] = {
		[RG_ACT_SUBSCRIBE] = rc->subscribe,
		[RG_ACT_PUBLISH] = rc->publish,
		[RG_ACT_HISTORY] = rc->history_query,
		[RG_ACT_PRESENCE] = rc->presence_query,
	};

	return rg_auth_allows(id, act, pol[act], rc->is_pattern ? rc->bind : RG_BIND_NONE, room,
			      rc->is_pattern ? strlen(rc->name) : 0, why);
}

const struct rg_identity rg_identity_anonymous;
