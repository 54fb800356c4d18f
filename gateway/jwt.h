/*
 * JSON Web Tokens (RFC 7519) in JWS compact form (RFC 7515), verified with OpenSSL 3.
 *
 * A keyring holds the keys a gateway trusts: HMAC secrets, PEM public keys and JWKS
 * documents, each with an optional kid. Every key fixes its one algorithm when it is
 * loaded (from its type, or the JWK's "alg"); a token is verified only with a key
 * whose algorithm is the one its header names, so "alg":"none" and algorithm
 * confusion (an RSA public key used as an HMAC secret) find no key. MACs are compared
 * in constant time; ECDSA signatures must be exactly r || s; RSA keys have at least
 * 2048 bits. Claims: exp, nbf and iat with a leeway, iss and aud when asked for.
 *
 * Ownership: the keyring owns its keys (rg_jwt_keyring_free); rg_jwt_verify hands the
 * caller the token's claims, a jansson object it must json_decref.
 */
#ifndef RG_JWT_H
#define RG_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum rg_jwt_alg {
	RG_JWT_HS256,
	RG_JWT_HS384,
	RG_JWT_HS512,
	RG_JWT_RS256,
	RG_JWT_RS384,
	RG_JWT_RS512,
	RG_JWT_PS256,
	RG_JWT_PS384,
	RG_JWT_PS512,
	RG_JWT_ES256,
	RG_JWT_ES384,
	RG_JWT_EDDSA,
	RG_JWT_ALG_NONE /* no algorithm: parse failure */
};

#define RG_JWT_KID_MAX 64

struct rg_jwt_key;

struct rg_jwt_keyring {
	struct rg_jwt_key *keys;
	size_t n;
};

/* The algorithm called name ("HS256", "EdDSA", ...), or RG_JWT_ALG_NONE. */
enum rg_jwt_alg rg_jwt_alg_of(const char *name);
const char *rg_jwt_alg_name(enum rg_jwt_alg alg);

/* Adds an HMAC secret (len bytes, at least as long as the hash: 32, 48, 64) for alg
 * (HS256, HS384 or HS512). kid: NULL or "" for none. 0, or -1 with a reason in err. */
int rg_jwt_keyring_add_secret(struct rg_jwt_keyring *kr, const unsigned char *secret, size_t len,
			      const char *kid, enum rg_jwt_alg alg, char *err, size_t errlen);

/* Adds the public key in a PEM text (len bytes). alg: RG_JWT_ALG_NONE for the key's
 * own (RSA: RS256, P-256: ES256, P-384: ES384, Ed25519: EdDSA), or one of the RSA
 * algorithms for an RSA key. 0, or -1 with a reason in err. */
int rg_jwt_keyring_add_pem(struct rg_jwt_keyring *kr, const char *pem, size_t len, const char *kid,
			   enum rg_jwt_alg alg, char *err, size_t errlen);

/* Adds every key of a JWKS document ({"keys":[...]}; kty RSA, EC P-256/P-384, OKP
 * Ed25519, oct), public parts only. A key without "alg" takes its type's default
 * (oct: HS256). 0, or -1 with a reason in err (nothing added then). */
int rg_jwt_keyring_add_jwks(struct rg_jwt_keyring *kr, const char *json, size_t len, char *err,
			    size_t errlen);

void rg_jwt_keyring_free(struct rg_jwt_keyring *kr);

struct rg_jwt_check {
	int64_t now;          /* seconds since the Unix epoch */
	unsigned leeway;      /* seconds of clock skew allowed on exp, nbf and iat */
	const char *issuer;   /* NULL, or the iss a token must carry */
	const char *audience; /* NULL, or an aud a token must carry (string or in an array) */
	size_t max_bytes;     /* tokens longer than this are refused unread */
};

/* Verifies token (len bytes) against the keyring and the checks: 0 and *claims (the
 * payload, a JSON object; the caller's to json_decref), or -1 and *why, a static
 * reason that never quotes the token: "malformed", "algorithm not allowed", "no key",
 * "bad signature", "expired", "not yet valid", "issued in the future", "wrong
 * issuer", "wrong audience", "too long". */
int rg_jwt_verify(const struct rg_jwt_keyring *kr, const char *token, size_t len,
		  const struct rg_jwt_check *check, json_t **claims, const char **why);

#endif
