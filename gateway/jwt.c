#include "jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum rg__kind { RG__HMAC, RG__RSA, RG__PSS, RG__EC, RG__ED };

static const struct {
	const char *name;
	enum rg__kind kind;
	const char *md;
	size_t size; /* HMAC: the shortest secret; EC: bytes per coordinate */
	const char *group;
} rg__algs[] = {
	[RG_JWT_HS256] = {"HS256", RG__HMAC, "SHA256", 32, NULL},
	[RG_JWT_HS384] = {"HS384", RG__HMAC, "SHA384", 48, NULL},
	[RG_JWT_HS512] = {"HS512", RG__HMAC, "SHA512", 64, NULL},
	[RG_JWT_RS256] = {"RS256", RG__RSA, "SHA256", 0, NULL},
	[RG_JWT_RS384] = {"RS384", RG__RSA, "SHA384", 0, NULL},
	[RG_JWT_RS512] = {"RS512", RG__RSA, "SHA512", 0, NULL},
	[RG_JWT_PS256] = {"PS256", RG__PSS, "SHA256", 0, NULL},
	[RG_JWT_PS384] = {"PS384", RG__PSS, "SHA384", 0, NULL},
	[RG_JWT_PS512] = {"PS512", RG__PSS, "SHA512", 0, NULL},
	[RG_JWT_ES256] = {"ES256", RG__EC, "SHA256", 32, "prime256v1"},
	[RG_JWT_ES384] = {"ES384", RG__EC, "SHA384", 48, "secp384r1"},
	[RG_JWT_EDDSA] = {"EdDSA", RG__ED, NULL, 0, NULL},
};

#define RG__RSA_MIN_BITS 2048

struct rg_jwt_key {
	char kid[RG_JWT_KID_MAX + 1];
	enum rg_jwt_alg alg;
	EVP_PKEY *pkey;        /* asymmetric keys */
	unsigned char *secret; /* HMAC */
	size_t secret_len;
};

enum rg_jwt_alg rg_jwt_alg_of(const char *name)
{
	for (size_t i = 0; i < sizeof(rg__algs) / sizeof(rg__algs[0]); i++)
		if (!strcmp(rg__algs[i].name, name))
			return (enum rg_jwt_alg)i;
	return RG_JWT_ALG_NONE;
}

const char *rg_jwt_alg_name(enum rg_jwt_alg alg)
{
	return alg < RG_JWT_ALG_NONE ? rg__algs[alg].name : "none";
}

static int rg__fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Decodes unpadded base64url (RFC 7515 section 2), strictly: only its alphabet, and
 * unused bits zero. A malloc'd buffer (one spare byte, NUL) and *out_len, or NULL. */
static unsigned char *rg__b64url(const char *s, size_t len, size_t *out_len)
{
	unsigned char *out;
	unsigned acc = 0, bits = 0;
	size_t n = 0;

	if (len % 4 == 1 || !(out = malloc(len / 4 * 3 + 3)))
		return NULL;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i], v;
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '-')
			v = 62;
		else if (c == '_')
			v = 63;
		else
			goto bad;
		acc = ((acc << 6) | (unsigned)v) & 0x3fff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	if (acc & ((1u << bits) - 1))
		goto bad;
	out[n] = '\0';
	*out_len = n;
	return out;
bad:
	free(out);
	return NULL;
}

static struct rg_jwt_key *rg__new_key(struct rg_jwt_keyring *kr, const char *kid, char *err,
				      size_t errlen)
{
	struct rg_jwt_key *keys;

	if (kid && strlen(kid) > RG_JWT_KID_MAX) {
		rg__fail(err, errlen, "kid: longer than %d bytes", RG_JWT_KID_MAX);
		return NULL;
	}
	if (!(keys = realloc(kr->keys, (kr->n + 1) * sizeof(*keys)))) {
		rg__fail(err, errlen, "out of memory");
		return NULL;
	}
	kr->keys = keys;
	memset(&keys[kr->n], 0, sizeof(keys[0]));
	if (kid)
		snprintf(keys[kr->n].kid, sizeof(keys[0].kid), "%s", kid);
	return &keys[kr->n];
}

int rg_jwt_keyring_add_secret(struct rg_jwt_keyring *kr, const unsigned char *secret, size_t len,
			      const char *kid, enum rg_jwt_alg alg, char *err, size_t errlen)
{
	struct rg_jwt_key *k;

	if (alg >= RG_JWT_ALG_NONE || rg__algs[alg].kind != RG__HMAC)
		return rg__fail(err, errlen, "a secret is for HS256, HS384 or HS512");
	if (len < rg__algs[alg].size)
		return rg__fail(err, errlen, "%s needs a secret of at least %zu bytes (got %zu)",
				rg__algs[alg].name, rg__algs[alg].size, len);
	if (!(k = rg__new_key(kr, kid, err, errlen)))
		return -1;
	if (!(k->secret = malloc(len)))
		return rg__fail(err, errlen, "out of memory");
	memcpy(k->secret, secret, len);
	k->secret_len = len;
	k->alg = alg;
	kr->n++;
	return 0;
}

/* The algorithm pkey verifies: want when the key can (RG_JWT_ALG_NONE: its own), or
 * RG_JWT_ALG_NONE with a reason in err. */
static enum rg_jwt_alg rg__pkey_alg(EVP_PKEY *pkey, enum rg_jwt_alg want, char *err, size_t errlen)
{
	char group[64] = "";
	enum rg_jwt_alg own = RG_JWT_ALG_NONE;

	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pkey) < RG__RSA_MIN_BITS) {
			rg__fail(err, errlen, "an RSA key of %d bits: at least %d are needed",
				 EVP_PKEY_get_bits(pkey), RG__RSA_MIN_BITS);
			return RG_JWT_ALG_NONE;
		}
		if (want == RG_JWT_ALG_NONE)
			return RG_JWT_RS256;
		if (rg__algs[want].kind == RG__RSA || rg__algs[want].kind == RG__PSS)
			return want;
		break;
	case EVP_PKEY_EC:
		EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
					       sizeof(group), NULL);
		if (!strcmp(group, rg__algs[RG_JWT_ES256].group))
			own = RG_JWT_ES256;
		else if (!strcmp(group, rg__algs[RG_JWT_ES384].group))
			own = RG_JWT_ES384;
		else {
			rg__fail(err, errlen, "an EC key on %s: P-256 and P-384 are supported",
				 group[0] ? group : "an unnamed curve");
			return RG_JWT_ALG_NONE;
		}
		break;
	case EVP_PKEY_ED25519:
		own = RG_JWT_EDDSA;
		break;
	default:
		rg__fail(err, errlen,
			 "a key of an unsupported type (RSA, EC P-256/P-384, Ed25519)");
		return RG_JWT_ALG_NONE;
	}
	if (own != RG_JWT_ALG_NONE && (want == RG_JWT_ALG_NONE || want == own))
		return own;
	rg__fail(err, errlen, "%s does not fit this key", rg_jwt_alg_name(want));
	return RG_JWT_ALG_NONE;
}

static int rg__add_pkey(struct rg_jwt_keyring *kr, EVP_PKEY *pkey, const char *kid,
			enum rg_jwt_alg want, char *err, size_t errlen)
{
	enum rg_jwt_alg alg = rg__pkey_alg(pkey, want, err, errlen);
	struct rg_jwt_key *k;

	if (alg == RG_JWT_ALG_NONE || !(k = rg__new_key(kr, kid, err, errlen))) {
		EVP_PKEY_free(pkey);
		return -1;
	}
	k->pkey = pkey;
	k->alg = alg;
	kr->n++;
	return 0;
}

int rg_jwt_keyring_add_pem(struct rg_jwt_keyring *kr, const char *pem, size_t len, const char *kid,
			   enum rg_jwt_alg alg, char *err, size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;

	if (!pkey && bio) { /* a certificate carries one too */
		BIO_reset(bio);
		X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		pkey = cert ? X509_get_pubkey(cert) : NULL;
		X509_free(cert);
	}
	BIO_free(bio);
	if (!pkey)
		return rg__fail(err, errlen,
				"no PEM public key or certificate (\"BEGIN PUBLIC KEY\" or "
				"\"BEGIN CERTIFICATE\")");
	return rg__add_pkey(kr, pkey, kid, alg, err, errlen);
}

/* A JWK member, base64url-decoded; NULL when absent or not base64url. */
static unsigned char *rg__jwk_bytes(json_t *jwk, const char *name, size_t *len)
{
	json_t *v = json_object_get(jwk, name);
	return json_is_string(v) ? rg__b64url(json_string_value(v), json_string_length(v), len)
				 : NULL;
}

static EVP_PKEY *rg__fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
	EVP_PKEY *pkey = NULL;

	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

static EVP_PKEY *rg__jwk_rsa(json_t *jwk)
{
	size_t nl = 0, el = 0;
	unsigned char *n = rg__jwk_bytes(jwk, "n", &nl), *e = rg__jwk_bytes(jwk, "e", &el);
	BIGNUM *bn = n ? BN_bin2bn(n, (int)nl, NULL) : NULL,
	       *be = e ? BN_bin2bn(e, (int)el, NULL) : NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *pkey = NULL;

	if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		pkey = rg__fromdata("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	free(n);
	free(e);
	return pkey;
}

static EVP_PKEY *rg__jwk_ec(json_t *jwk)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	enum rg_jwt_alg alg = !crv                    ? RG_JWT_ALG_NONE
			      : !strcmp(crv, "P-256") ? RG_JWT_ES256
			      : !strcmp(crv, "P-384") ? RG_JWT_ES384
						      : RG_JWT_ALG_NONE;
	size_t xl = 0, yl = 0, size = alg == RG_JWT_ALG_NONE ? 0 : rg__algs[alg].size;
	unsigned char *x = rg__jwk_bytes(jwk, "x", &xl), *y = rg__jwk_bytes(jwk, "y", &yl);
	unsigned char pub[1 + 2 * 48];
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *pkey = NULL;

	if (size && x && y && xl == size && yl == size && bld) {
		pub[0] = 0x04; /* an uncompressed point: x || y */
		memcpy(pub + 1, x, size);
		memcpy(pub + 1 + size, y, size);
		if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
						    rg__algs[alg].group, 0) &&
		    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
						     1 + 2 * size))
			pkey = rg__fromdata("EC", bld);
	}
	OSSL_PARAM_BLD_free(bld);
	free(x);
	free(y);
	return pkey;
}

static EVP_PKEY *rg__jwk_okp(json_t *jwk)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	size_t xl = 0;
	unsigned char *x = rg__jwk_bytes(jwk, "x", &xl);
	EVP_PKEY *pkey = NULL;

	if (crv && !strcmp(crv, "Ed25519") && x && xl == 32)
		pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl);
	free(x);
	return pkey;
}

/* Adds the i-th key of a JWKS. 0, or -1 with a reason in err. */
static int rg__add_jwk(struct rg_jwt_keyring *kr, json_t *jwk, size_t i, char *err, size_t errlen)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *kid = json_string_value(json_object_get(jwk, "kid"));
	const char *use = json_string_value(json_object_get(jwk, "use"));
	json_t *a = json_object_get(jwk, "alg");
	enum rg_jwt_alg alg =
		a ? rg_jwt_alg_of(json_is_string(a) ? json_string_value(a) : "") : RG_JWT_ALG_NONE;
	char why[160];
	EVP_PKEY *pkey;

	if (!json_is_object(jwk) || !kty)
		return rg__fail(err, errlen, "keys[%zu]: not a JWK (no kty)", i);
	if (a && alg == RG_JWT_ALG_NONE)
		return rg__fail(err, errlen, "keys[%zu]: alg: not one this gateway verifies", i);
	if (use && strcmp(use, "sig"))
		return rg__fail(err, errlen,
				"keys[%zu]: use \"%s\": only signing keys verify tokens", i, use);
	if (json_object_get(jwk, "kid") && !kid)
		return rg__fail(err, errlen, "keys[%zu]: kid: not a string", i);
	if (!strcmp(kty, "oct")) {
		size_t kl = 0;
		unsigned char *k = rg__jwk_bytes(jwk, "k", &kl);
		int rc = k ? rg_jwt_keyring_add_secret(kr, k, kl, kid, a ? alg : RG_JWT_HS256, why,
						       sizeof(why))
			   : rg__fail(why, sizeof(why), "k: missing or not base64url");
		if (k)
			OPENSSL_cleanse(k, kl);
		free(k);
		return rc ? rg__fail(err, errlen, "keys[%zu]: %s", i, why) : 0;
	}
	if (!strcmp(kty, "RSA"))
		pkey = rg__jwk_rsa(jwk);
	else if (!strcmp(kty, "EC"))
		pkey = rg__jwk_ec(jwk);
	else if (!strcmp(kty, "OKP"))
		pkey = rg__jwk_okp(jwk);
	else
		return rg__fail(err, errlen, "keys[%zu]: kty \"%s\": RSA, EC, OKP or oct", i, kty);
	if (!pkey)
		return rg__fail(
			err, errlen,
			"keys[%zu]: a %s key whose members are missing, not base64url, or "
			"not a key (EC: crv P-256 or P-384 and x, y; OKP: crv Ed25519 and x)",
			i, kty);
	if (rg__add_pkey(kr, pkey, kid, alg, why, sizeof(why)))
		return rg__fail(err, errlen, "keys[%zu]: %s", i, why);
	return 0;
}

static void rg__key_free(struct rg_jwt_key *k)
{
	EVP_PKEY_free(k->pkey);
	if (k->secret)
		OPENSSL_cleanse(k->secret, k->secret_len);
	free(k->secret);
}

int rg_jwt_keyring_add_jwks(struct rg_jwt_keyring *kr, const char *json, size_t len, char *err,
			    size_t errlen)
{
	json_error_t jerr;
	json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr), *keys, *jwk;
	size_t before = kr->n, i;

	if (!doc)
		return rg__fail(err, errlen, "not JSON: %s (line %d)", jerr.text, jerr.line);
	keys = json_object_get(doc, "keys");
	if (!json_is_array(keys) || !json_array_size(keys)) {
		json_decref(doc);
		return rg__fail(err, errlen,
				"expected {\"keys\": [JWK, ...]} with at least one key");
	}
	json_array_foreach(keys, i, jwk) {
		if (rg__add_jwk(kr, jwk, i, err, errlen)) {
			while (kr->n > before)
				rg__key_free(&kr->keys[--kr->n]);
			json_decref(doc);
			return -1;
		}
	}
	json_decref(doc);
	return 0;
}

void rg_jwt_keyring_free(struct rg_jwt_keyring *kr)
{
	for (size_t i = 0; i < kr->n; i++)
		rg__key_free(&kr->keys[i]);
	free(kr->keys);
	kr->keys = NULL;
	kr->n = 0;
}

/* ECDSA in JWS is r || s, each of the curve's size; OpenSSL verifies DER. */
static unsigned char *rg__ecdsa_der(const unsigned char *sig, size_t size, int *der_len)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, (int)size, NULL), *s = BN_bin2bn(sig + size, (int)size, NULL);
	unsigned char *der = NULL;

	if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return NULL;
	}
	*der_len = i2d_ECDSA_SIG(es, &der);
	ECDSA_SIG_free(es);
	return *der_len > 0 ? der : NULL;
}

/* 1 when sig (slen bytes) is k's signature of data. */
static int rg__signed_by(const struct rg_jwt_key *k, const unsigned char *data, size_t dlen,
			 const unsigned char *sig, size_t slen)
{
	enum rg__kind kind = rg__algs[k->alg].kind;
	unsigned char mac[EVP_MAX_MD_SIZE], *der = NULL;
	size_t ml = 0;
	int ok = 0, der_len = 0;

	if (kind == RG__HMAC)
		return EVP_Q_mac(NULL, "HMAC", NULL, rg__algs[k->alg].md, NULL, k->secret,
				 k->secret_len, data, dlen, mac, sizeof(mac), &ml) &&
		       ml == slen && !CRYPTO_memcmp(mac, sig, ml);
	if (kind == RG__EC) {
		if (slen != 2 * rg__algs[k->alg].size ||
		    !(der = rg__ecdsa_der(sig, rg__algs[k->alg].size, &der_len)))
			return 0;
		sig = der;
		slen = (size_t)der_len;
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	const char *md = kind == RG__ED ? NULL : rg__algs[k->alg].md;
	if (ctx && EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL, k->pkey, NULL) == 1 &&
	    (kind != RG__PSS ||
	     (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
	      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1)))
		ok = EVP_DigestVerify(ctx, sig, slen, data, dlen) == 1;
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	return ok;
}

/* A NumericDate claim: 1 and *out, 0 when absent, -1 when not a number. */
static int rg__date(json_t *claims, const char *name, double *out)
{
	json_t *v = json_object_get(claims, name);

	if (!v)
		return 0;
	if (!json_is_number(v))
		return -1;
	*out = json_number_value(v);
	return 1;
}

static int rg__audience_has(json_t *aud, const char *want)
{
	size_t i;
	json_t *v;

	if (json_is_string(aud))
		return !strcmp(json_string_value(aud), want);
	json_array_foreach(aud, i, v) {
		if (json_is_string(v) && !strcmp(json_string_value(v), want))
			return 1;
	}
	return 0;
}

static const char *rg__check_claims(json_t *c, const struct rg_jwt_check *check)
{
	double exp = 0, nbf = 0, iat = 0, now = (double)check->now, leeway = check->leeway;
	int e = rg__date(c, "exp", &exp), n = rg__date(c, "nbf", &nbf),
	    i = rg__date(c, "iat", &iat);
	json_t *iss = json_object_get(c, "iss"), *aud = json_object_get(c, "aud");

	if (e < 0 || n < 0 || i < 0 || (iss && !json_is_string(iss)) ||
	    (aud && !json_is_string(aud) && !json_is_array(aud)))
		return "malformed";
	if (e && now >= exp + leeway)
		return "expired";
	if (n && now + leeway < nbf)
		return "not yet valid";
	if (i && now + leeway < iat)
		return "issued in the future";
	if (check->issuer && (!iss || strcmp(json_string_value(iss), check->issuer)))
		return "wrong issuer";
	if (check->audience && (!aud || !rg__audience_has(aud, check->audience)))
		return "wrong audience";
	return NULL;
}

/* A segment's JSON object, or NULL. */
static json_t *rg__segment_json(const char *s, size_t len)
{
	size_t n;
	unsigned char *raw = rg__b64url(s, len, &n);
	json_t *v = raw ? json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL) : NULL;

	free(raw);
	if (v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

int rg_jwt_verify(const struct rg_jwt_keyring *kr, const char *token, size_t len,
		  const struct rg_jwt_check *check, json_t **claims, const char **why)
{
	const char *d1, *d2, *end = token + len;
	json_t *header = NULL, *payload = NULL;
	unsigned char *sig = NULL;
	size_t slen = 0;
	int tried = 0;

	*claims = NULL;
	if (check->max_bytes && len > check->max_bytes) {
		*why = "too long";
		return -1;
	}
	*why = "malformed";
	if (!(d1 = memchr(token, '.', len)) ||
	    !(d2 = memchr(d1 + 1, '.', (size_t)(end - d1 - 1))) ||
	    memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) || d1 == token || d2 == d1 + 1)
		return -1;
	if (!(header = rg__segment_json(token, (size_t)(d1 - token))))
		goto out;
	json_t *a = json_object_get(header, "alg"), *kid = json_object_get(header, "kid");
	enum rg_jwt_alg alg =
		json_is_string(a) ? rg_jwt_alg_of(json_string_value(a)) : RG_JWT_ALG_NONE;
	/* a critical extension is one this verifier does not know (RFC 7515 4.1.11) */
	if (!a || json_object_get(header, "crit") || (kid && !json_is_string(kid)))
		goto out;
	if (alg == RG_JWT_ALG_NONE) {
		*why = "algorithm not allowed";
		goto out;
	}
	if (!(sig = rg__b64url(d2 + 1, (size_t)(end - d2 - 1), &slen)) || !slen)
		goto out;
	/* the key decides: only keys of the header's algorithm, by kid when it names one
	 * (or keys without a kid) */
	const char *want = kid ? json_string_value(kid) : NULL;
	for (size_t i = 0; i < kr->n && !tried; i++)
		tried = kr->keys[i].alg == alg && want && !strcmp(kr->keys[i].kid, want);
	int by_kid = tried;
	tried = 0;
	for (size_t i = 0; i < kr->n; i++) {
		const struct rg_jwt_key *k = &kr->keys[i];
		if (k->alg != alg || (by_kid ? strcmp(k->kid, want) : k->kid[0] && want))
			continue;
		tried = 1;
		if (rg__signed_by(k, (const unsigned char *)token, (size_t)(d2 - token), sig,
				  slen)) {
			/* the payload is read once its signature holds */
			const char *bad = "malformed";
			if (!(payload = rg__segment_json(d1 + 1, (size_t)(d2 - d1 - 1))) ||
			    (bad = rg__check_claims(payload, check))) {
				*why = bad;
				goto out;
			}
			*claims = payload;
			payload = NULL;
			*why = NULL;
			goto out;
		}
	}
	*why = tried ? "bad signature" : "no key";
out:
	json_decref(header);
	json_decref(payload);
	free(sig);
	return *claims ? 0 : -1;
}
