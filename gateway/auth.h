/*
 * Who a client is and what it may do: an identity from a JWT (gateway/jwt.h) or an API
 * key, and the one rule that decides an action on a room from the room's policy, its
 * binding to users, and the identity's grants.
 *
 * A token's claims, beyond the registered ones (exp, nbf, iat, iss, aud):
 *   "sub"      the user: its presence name, and what user-bound rooms are bound to
 *   "name"     optional: the presence name instead of sub
 *   "roomgate" optional: {"admin": true} makes the bearer a backend (as an API key
 *              does); {"rooms": {"lobby": ["subscribe", "publish"], "team:*": [...]}}
 *              grants actions on rooms, by name or by a prefix ending in '*'
 *
 * Ownership: an identity owns its grants (rg_identity_clear); struct rg_auth owns its
 * keyring and key hashes (rg_auth_load makes one, rg_auth_free frees it).
 */
#ifndef RG_AUTH_H
#define RG_AUTH_H

#include "jwt.h"
#include "request.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum rg_action { RG_ACT_SUBSCRIBE, RG_ACT_PUBLISH, RG_ACT_HISTORY, RG_ACT_PRESENCE, RG_ACT_N };

struct rg_identity {
	int authenticated;          /* a valid token or API key */
	int server;                 /* an API key, or a token with roomgate.admin */
	char sub[RG_NAME_MAX + 1];  /* "" when none */
	char name[RG_NAME_MAX + 1]; /* the presence name: the name claim, else sub */
	int64_t exp;                /* the token's exp, 0 when it has none */
	json_t *grants;             /* roomgate.rooms, or NULL */
};

struct rg_auth {
	struct rg_jwt_keyring keys;
	struct rg_jwt_check check;     /* now is set per call */
	unsigned char (*api_keys)[32]; /* SHA-256 of each API key */
	size_t napi_keys;
};

/* The identity the claims of a verified token make: 0, or -1 and *why (a sub or name
 * that is not 1..64 bytes without control characters, or grants of the wrong shape). */
int rg_identity_from_claims(struct rg_identity *id, json_t *claims, const char **why);

/* Verifies token and fills id: 0, or -1 and *why (rg_jwt_verify's reasons, or
 * rg_identity_from_claims's). */
int rg_auth_token(const struct rg_auth *auth, const char *token, size_t len, int64_t now,
		  struct rg_identity *id, const char **why);

/* Adds an API key's SHA-256, as 64 hex digits (a line of the API key file). 0, or
 * -1 when hex is not one. */
int rg_auth_add_api_key_hash(struct rg_auth *auth, const char *hex, size_t len);

/* 1 and id made a backend when key (len bytes) is one of the API keys; compared in
 * constant time against every hash. */
int rg_auth_api_key(const struct rg_auth *auth, const char *key, size_t len,
		    struct rg_identity *id);

void rg_identity_clear(struct rg_identity *id);

/* Key and secret files past this are refused. */
#define RG_AUTH_FILE_MAX (1024 * 1024)

/* One problem found loading the config's auth files: where is its config path
 * ("auth.keys[1].file"), what says what is wrong with it (never a key's bytes). */
typedef void (*rg_auth_fail_fn)(void *ctx, const char *where, const char *what);

/* Loads the keys and API key hashes the config's auth section names (rg_config.auth):
 * NULL when it names none (auth is off), or when any could not be loaded, each
 * problem reported through fail; else a malloc'd rg_auth, freed with rg_auth_free.
 * The config's strings must outlive it (issuer, audience). */
struct rg_auth *rg_auth_load(const struct rg_config *cfg, rg_auth_fail_fn fail, void *ctx);
void rg_auth_free(struct rg_auth *auth);

/* May id do act in the room called room, whose config says policy and, for a pattern
 * room, bind with the pattern's prefix (plen bytes of room)? 1 or 0; *why says what is
 * missing when 0. */
int rg_auth_allows(const struct rg_identity *id, enum rg_action act, enum rg_policy policy,
		   enum rg_bind bind, const char *room, size_t plen, const char **why);

/* rg_auth_allows for an action on a live or would-be room of the config entry rc:
 * the policy of the action, and for a pattern room its binding. */
int rg_auth_room_allows(const struct rg_identity *id, enum rg_action act,
			const struct rg_room_conf *rc, const char *room, const char **why);

/* No token, no key: what every client is until it shows one. */
extern const struct rg_identity rg_identity_anonymous;

#endif
