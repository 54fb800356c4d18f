/* JWT verification: the RFC 7515 and RFC 8037 examples, tokens this test signs with
 * OpenSSL for every algorithm, and the refusals (alg none, algorithm confusion, the
 * wrong key, bad encodings, claims out of their window, oversized tokens). */
#include "../check.h"

#include "../../../gateway/jwt.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdlib.h>

/* RFC 7515 A.1: HS256 with an oct JWK. */
static const char a1_jwks[] =
	"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH"
	"75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}]}";
static const char a1_token[] =
	"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAs"
	"DQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1g"
	"FWFOEjXk";
/* RFC 7515 A.2: RS256 (the public part of its JWK). */
static const char a2_jwks[] =
	"{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJc"
	"yQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPE"
	"wOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTB"
	"EMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9i"
	"aGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\"}]}";
static const char a2_token[] =
	"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
	"cGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XO"
	"iZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f"
	"_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDw"
	"usC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWyw"
	"lVmtVrBp0igcN_IoypGlUPQGe77Rw";
/* RFC 7515 A.3: ES256. */
static const char a3_jwks[] =
	"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9"
	"uPHvRVEU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
static const char a3_token[] =
	"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
	"cGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5dj"
	"xLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
/* RFC 8037 A.4: Ed25519. Its payload is text, not claims: the signature holds and the
 * token is then refused as malformed. */
static const char e4_jwks[] =
	"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMl"
	"rwIaaPcHURo\"}]}";
static const char e4_token[] = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0"
			       "il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVs"
			       "Pt9g7sVvpAr_MuM0KAg";

/* 2011-03-22, before the RFC examples' exp (1300819380). */
#define RFC_NOW 1300819000

static const char *verify(const struct rg_jwt_keyring *kr, const char *tok, int64_t now,
			  json_t **claims)
{
	struct rg_jwt_check c = {.now = now, .leeway = 0, .max_bytes = 16384};
	const char *why = NULL;
	json_t *got = NULL;
	int rc = rg_jwt_verify(kr, tok, strlen(tok), &c, &got, &why);

	CHECK((rc == 0) == (why == NULL) && (rc == 0) == (got != NULL));
	if (claims)
		*claims = got;
	else
		json_decref(got);
	return why ? why : "ok";
}

static void test_rfc_examples(void)
{
	static const struct {
		const char *jwks, *token;
	} ex[] = {{a1_jwks, a1_token}, {a2_jwks, a2_token}, {a3_jwks, a3_token}};
	char err[256];

	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		struct rg_jwt_keyring kr = {0};
		json_t *claims;
		CHECK(rg_jwt_keyring_add_jwks(&kr, ex[i].jwks, strlen(ex[i].jwks), err,
					      sizeof(err)) == 0);
		CHECK_STR(verify(&kr, ex[i].token, RFC_NOW, &claims), "ok");
		CHECK_STR(json_string_value(json_object_get(claims, "iss")), "joe");
		json_decref(claims);
		CHECK_STR(verify(&kr, ex[i].token, 1300819380, NULL), "expired");
		/* one bit of the signature, the header or the payload changed */
		char *t = strdup(ex[i].token);
		size_t n = strlen(t);
		t[n - 3] = t[n - 3] == 'A' ? 'B' : 'A';
		CHECK_STR(verify(&kr, t, RFC_NOW, NULL), "bad signature");
		strcpy(t, ex[i].token);
		char *dot = strchr(t, '.');
		dot[3] = dot[3] == 'A' ? 'B' : 'A';
		CHECK(strcmp(verify(&kr, t, RFC_NOW, NULL), "ok"));
		free(t);
		rg_jwt_keyring_free(&kr);
	}
	struct rg_jwt_keyring kr = {0};
	CHECK(rg_jwt_keyring_add_jwks(&kr, e4_jwks, strlen(e4_jwks), err, sizeof(err)) == 0);
	CHECK_STR(verify(&kr, e4_token, RFC_NOW, NULL), "malformed");
	char *t = strdup(e4_token);
	t[strlen(t) - 5] = t[strlen(t) - 5] == 'A' ? 'B' : 'A';
	CHECK_STR(verify(&kr, t, RFC_NOW, NULL), "bad signature");
	free(t);
	rg_jwt_keyring_free(&kr);
}

/* ---- tokens made here -------------------------------------------------------- */

static void b64url(const unsigned char *in, size_t len, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0, i = 0;

	for (; i + 2 < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = a[(v >> 6) & 63];
		out[o++] = a[v & 63];
	}
	if (len - i == 1) {
		out[o++] = a[in[i] >> 2];
		out[o++] = a[(in[i] & 3) << 4];
	} else if (len - i == 2) {
		unsigned v = (unsigned)in[i] << 8 | in[i + 1];
		out[o++] = a[v >> 10];
		out[o++] = a[(v >> 4) & 63];
		out[o++] = a[(v & 15) << 2];
	}
	out[o] = '\0';
}

/* header.payload, signed: with secret (HMAC) when given, else with pkey. A malloc'd
 * token. */
static char *sign(const char *alg, const char *header, const char *payload, EVP_PKEY *pkey,
		  const unsigned char *secret, size_t slen)
{
	static const struct {
		const char *alg, *md;
		int pss, ec;
	} a[] = {{"HS256", "SHA256", 0, 0},  {"HS384", "SHA384", 0, 0},  {"HS512", "SHA512", 0, 0},
		 {"RS256", "SHA256", 0, 0},  {"RS384", "SHA384", 0, 0},  {"RS512", "SHA512", 0, 0},
		 {"PS256", "SHA256", 1, 0},  {"PS384", "SHA384", 1, 0},  {"PS512", "SHA512", 1, 0},
		 {"ES256", "SHA256", 0, 32}, {"ES384", "SHA384", 0, 48}, {"EdDSA", NULL, 0, 0}};
	size_t k = 0;
	while (strcmp(a[k].alg, alg))
		k++;
	char *tok = malloc(8192);
	b64url((const unsigned char *)header, strlen(header), tok);
	size_t n = strlen(tok);
	tok[n++] = '.';
	b64url((const unsigned char *)payload, strlen(payload), tok + n);
	n = strlen(tok);
	unsigned char sig[1024];
	size_t sl = sizeof(sig);
	if (secret) {
		EVP_Q_mac(NULL, "HMAC", NULL, a[k].md, NULL, secret, slen, (unsigned char *)tok, n,
			  sig, sizeof(sig), &sl);
	} else {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		EVP_PKEY_CTX *pctx;
		EVP_DigestSignInit_ex(ctx, &pctx, a[k].md, NULL, NULL, pkey, NULL);
		if (a[k].pss) {
			EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
			EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
		}
		EVP_DigestSign(ctx, sig, &sl, (unsigned char *)tok, n);
		EVP_MD_CTX_free(ctx);
		if (a[k].ec) { /* DER to r || s */
			const unsigned char *p = sig;
			ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sl);
			BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, a[k].ec);
			BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + a[k].ec, a[k].ec);
			ECDSA_SIG_free(es);
			sl = 2 * (size_t)a[k].ec;
		}
	}
	tok[n++] = '.';
	b64url(sig, sl, tok + n);
	return tok;
}

static char *pem_of(EVP_PKEY *pkey)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	PEM_write_bio_PUBKEY(b, pkey);
	long n = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

static const unsigned char secret[64] =
	"a secret of sixty-four bytes, long enough for HS512, too!!!!!!";

static void test_every_algorithm(void)
{
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char err[256], *pem;
	static const struct {
		const char *alg;
		int key; /* 0 secret, 1 rsa, 2 p256, 3 p384, 4 ed25519 */
	} cases[] = {{"HS256", 0}, {"HS384", 0}, {"HS512", 0}, {"RS256", 1},
		     {"RS384", 1}, {"RS512", 1}, {"PS256", 1}, {"PS384", 1},
		     {"PS512", 1}, {"ES256", 2}, {"ES384", 3}, {"EdDSA", 4}};
	EVP_PKEY *keys[] = {NULL, rsa, p256, p384, ed};

	CHECK(rsa && p256 && p384 && ed);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rg_jwt_keyring kr = {0};
		enum rg_jwt_alg alg = rg_jwt_alg_of(cases[i].alg);
		EVP_PKEY *pk = keys[cases[i].key];
		char header[64];
		snprintf(header, sizeof(header), "{\"alg\":\"%s\"}", cases[i].alg);
		if (!pk) {
			CHECK(rg_jwt_keyring_add_secret(&kr, secret, sizeof(secret), NULL, alg, err,
							sizeof(err)) == 0);
		} else {
			pem = pem_of(pk);
			CHECK(rg_jwt_keyring_add_pem(&kr, pem, strlen(pem), NULL,
						     cases[i].key == 1 ? alg : RG_JWT_ALG_NONE, err,
						     sizeof(err)) == 0);
			free(pem);
		}
		char *tok = sign(cases[i].alg, header, "{\"sub\":\"ann\"}", pk, pk ? NULL : secret,
				 sizeof(secret));
		json_t *claims;
		CHECK_STR(verify(&kr, tok, 1000, &claims), "ok");
		CHECK_STR(json_string_value(json_object_get(claims, "sub")), "ann");
		json_decref(claims);
		free(tok);
		/* the same key, another algorithm of its kind, signed properly: refused */
		const char *other = cases[i].key == 1   ? (alg == RG_JWT_RS256 ? "PS256" : "RS256")
				    : cases[i].key == 0 ? (alg == RG_JWT_HS256 ? "HS384" : "HS256")
							: NULL;
		if (other) {
			snprintf(header, sizeof(header), "{\"alg\":\"%s\"}", other);
			tok = sign(other, header, "{}", pk, pk ? NULL : secret, sizeof(secret));
			CHECK_STR(verify(&kr, tok, 1000, NULL), "no key");
			free(tok);
		}
		rg_jwt_keyring_free(&kr);
	}

	/* algorithm confusion: an HS256 token whose secret is the RSA key's PEM text */
	struct rg_jwt_keyring kr = {0};
	pem = pem_of(rsa);
	CHECK(rg_jwt_keyring_add_pem(&kr, pem, strlen(pem), NULL, RG_JWT_ALG_NONE, err,
				     sizeof(err)) == 0);
	char *tok = sign("HS256", "{\"alg\":\"HS256\"}", "{\"admin\":true}", NULL,
			 (const unsigned char *)pem, strlen(pem));
	CHECK_STR(verify(&kr, tok, 1000, NULL), "no key");
	free(tok);
	/* a key given for an algorithm it cannot do */
	CHECK(rg_jwt_keyring_add_pem(&kr, pem, strlen(pem), NULL, RG_JWT_ES256, err, sizeof(err)) ==
	      -1);
	CHECK(rg_jwt_keyring_add_pem(&kr, pem, strlen(pem), NULL, RG_JWT_HS256, err, sizeof(err)) ==
	      -1);
	free(pem);
	pem = pem_of(p256);
	CHECK(rg_jwt_keyring_add_pem(&kr, pem, strlen(pem), NULL, RG_JWT_ES384, err, sizeof(err)) ==
	      -1);
	free(pem);
	rg_jwt_keyring_free(&kr);

	/* an ECDSA signature in DER, as OpenSSL makes it, is not JWS's r || s */
	pem = pem_of(p256);
	CHECK(rg_jwt_keyring_add_pem(&kr, pem, strlen(pem), NULL, RG_JWT_ALG_NONE, err,
				     sizeof(err)) == 0);
	free(pem);
	{
		unsigned char der[128];
		size_t dl = sizeof(der);
		char t[1024], s64[256];
		b64url((const unsigned char *)"{\"alg\":\"ES256\"}", 15, t);
		strcat(t, ".");
		b64url((const unsigned char *)"{}", 2, t + strlen(t));
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, p256, NULL);
		EVP_DigestSign(ctx, der, &dl, (unsigned char *)t, strlen(t));
		EVP_MD_CTX_free(ctx);
		b64url(der, dl, s64);
		strcat(t, ".");
		strcat(t, s64);
		CHECK_STR(verify(&kr, t, 1000, NULL), "bad signature");
	}
	rg_jwt_keyring_free(&kr);

	/* RSA keys under 2048 bits are refused at load */
	EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	pem = pem_of(small);
	CHECK(rg_jwt_keyring_add_pem(&kr, pem, strlen(pem), NULL, RG_JWT_ALG_NONE, err,
				     sizeof(err)) == -1 &&
	      strstr(err, "1024"));
	free(pem);
	EVP_PKEY_free(small);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
}

static void test_claims_and_garbage(void)
{
	struct rg_jwt_keyring kr = {0};
	char err[256];

	CHECK(rg_jwt_keyring_add_secret(&kr, secret, 32, "k1", RG_JWT_HS256, err, sizeof(err)) ==
	      0);
	static const struct {
		const char *header, *payload, *want;
		int64_t now;
	} cases[] = {
		{"{\"alg\":\"HS256\"}", "{}", "ok", 1000},
		{"{\"alg\":\"HS256\",\"kid\":\"k1\"}", "{}", "ok", 1000},
		{"{\"alg\":\"HS256\",\"kid\":\"k2\"}", "{}", "no key", 1000},
		{"{\"alg\":\"HS256\",\"kid\":5}", "{}", "malformed", 1000},
		{"{\"alg\":\"none\"}", "{}", "algorithm not allowed", 1000},
		{"{\"alg\":\"hs256\"}", "{}", "algorithm not allowed", 1000},
		{"{\"alg\":\"ES512\"}", "{}", "algorithm not allowed", 1000},
		{"{\"typ\":\"JWT\"}", "{}", "malformed", 1000},
		{"{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", "{}", "malformed", 1000},
		{"{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}", "malformed", 1000},
		{"[\"HS256\"]", "{}", "malformed", 1000},
		{"{\"alg\":\"HS256\"}", "[]", "malformed", 1000},
		{"{\"alg\":\"HS256\"}", "\"sub\"", "malformed", 1000},
		{"{\"alg\":\"HS256\"}", "{\"sub\":1,\"sub\":2}", "malformed", 1000},
		{"{\"alg\":\"HS256\"}", "{\"exp\":1000}", "expired", 1000},
		{"{\"alg\":\"HS256\"}", "{\"exp\":1001}", "ok", 1000},
		{"{\"alg\":\"HS256\"}", "{\"exp\":1000.5}", "ok", 1000},
		{"{\"alg\":\"HS256\"}", "{\"exp\":\"1001\"}", "malformed", 1000},
		{"{\"alg\":\"HS256\"}", "{\"nbf\":1001}", "not yet valid", 1000},
		{"{\"alg\":\"HS256\"}", "{\"nbf\":1000}", "ok", 1000},
		{"{\"alg\":\"HS256\"}", "{\"iat\":1001}", "issued in the future", 1000},
		{"{\"alg\":\"HS256\"}", "{\"iat\":999}", "ok", 1000},
		{"{\"alg\":\"HS256\"}", "{\"iss\":5}", "malformed", 1000},
		{"{\"alg\":\"HS256\"}", "{\"aud\":{}}", "malformed", 1000},
	};
	struct rg_jwt_check c = {.now = 1000, .max_bytes = 4096};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *tok = sign("HS256", cases[i].header, cases[i].payload, NULL, secret, 32);
		const char *why = NULL;
		json_t *claims = NULL;
		c.now = cases[i].now;
		int rc = rg_jwt_verify(&kr, tok, strlen(tok), &c, &claims, &why);
		CHECK_STR(rc ? why : "ok", cases[i].want);
		if (rc ? strcmp(why, cases[i].want) : strcmp("ok", cases[i].want))
			fprintf(stderr, "  case %zu: %s . %s\n", i, cases[i].header,
				cases[i].payload);
		json_decref(claims);
		free(tok);
	}

	/* leeway, issuer, audience */
	char *tok =
		sign("HS256", "{\"alg\":\"HS256\"}",
		     "{\"exp\":1000,\"nbf\":1010,\"iss\":\"https://idp\",\"aud\":[\"x\",\"gw\"]}",
		     NULL, secret, 32);
	json_t *claims = NULL;
	const char *why;
	c = (struct rg_jwt_check){
		.now = 1005, .leeway = 10, .issuer = "https://idp", .audience = "gw"};
	CHECK(rg_jwt_verify(&kr, tok, strlen(tok), &c, &claims, &why) == 0);
	json_decref(claims);
	c.leeway = 4;
	CHECK(rg_jwt_verify(&kr, tok, strlen(tok), &c, &claims, &why) == -1);
	c.leeway = 10;
	c.issuer = "https://idp2";
	CHECK(rg_jwt_verify(&kr, tok, strlen(tok), &c, &claims, &why) == -1 &&
	      !strcmp(why, "wrong issuer"));
	c.issuer = NULL;
	c.audience = "g";
	CHECK(rg_jwt_verify(&kr, tok, strlen(tok), &c, &claims, &why) == -1 &&
	      !strcmp(why, "wrong audience"));
	c.audience = NULL;
	c.max_bytes = strlen(tok) - 1;
	CHECK(rg_jwt_verify(&kr, tok, strlen(tok), &c, &claims, &why) == -1 &&
	      !strcmp(why, "too long"));
	c.max_bytes = 0;

	/* encodings: padding, the standard alphabet, stray bits, dots */
	static const char *garbage[] = {"",
					".",
					"..",
					"...",
					"a.b",
					"a.b.c.d",
					".e30.sig",
					"eyJhbGciOiJIUzI1NiJ9..c2ln",
					"eyJhbGciOiJIUzI1NiJ9.e30.",
					"eyJhbGciOiJIUzI1NiJ9=.e30.c2ln",
					"eyJhbGciOiJIUzI1NiJ9.e30=.c2ln",
					"eyJhbGciOiJIUzI1NiJ9.e30.c2l+",
					"eyJhbGciOiJIUzI1NiJ9.e30.c2l/",
					"eyJhbGciOiJIUzI1NiJ9.e31.c2ln",
					"eyJhbGciOiJIUzI1NiJ9.e30.c",
					"eyJhbGciOiJIUzI1NiJ9 .e30.c2ln",
					"eyJhbGciOiJIUzI1NiJ9.e30.c2ln\n"};
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		int rc = rg_jwt_verify(&kr, garbage[i], strlen(garbage[i]), &c, &claims, &why);
		CHECK(rc == -1 && claims == NULL);
		if (rc != -1)
			fprintf(stderr, "  accepted: %s\n", garbage[i]);
	}
	/* a NUL inside is not the end of the token */
	free(tok);
	tok = sign("HS256", "{\"alg\":\"HS256\"}", "{}", NULL, secret, 32);
	size_t n = strlen(tok);
	char *with_nul = malloc(n + 3);
	memcpy(with_nul, tok, n);
	memcpy(with_nul + n, "\0x", 3);
	CHECK(rg_jwt_verify(&kr, with_nul, n + 2, &c, &claims, &why) == -1);
	free(with_nul);
	/* a 1 MB token is refused before it is read */
	char *big = malloc(1 << 20);
	memset(big, 'A', 1 << 20);
	c.max_bytes = 8192;
	CHECK(rg_jwt_verify(&kr, big, 1 << 20, &c, &claims, &why) == -1 &&
	      !strcmp(why, "too long"));
	free(big);
	free(tok);
	rg_jwt_keyring_free(&kr);
}

static void test_keyring_refusals(void)
{
	struct rg_jwt_keyring kr = {0};
	char err[256];
	static const char *bad_jwks[] = {
		"",
		"[]",
		"{}",
		"{\"keys\":[]}",
		"{\"keys\":{}}",
		"{\"keys\":[1]}",
		"{\"keys\":[{\"kty\":\"oct\"}]}",
		"{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2hvcnQ\"}]}",
		"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-"
		"1q"
		"S0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\",\"alg\":\"RS256\"}]}",
		"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-"
		"1q"
		"S0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\",\"use\":\"enc\"}]}",
		"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\"}]}",
		"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}",
		"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvP"
		"apiMlrwIaaPcHURo\"}]}",
		"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
		"{\"keys\":[{\"kty\":\"DSA\"}]}",
		"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-"
		"1q"
		"S0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\",\"kid\":7}]}",
	};
	for (size_t i = 0; i < sizeof(bad_jwks) / sizeof(bad_jwks[0]); i++) {
		err[0] = '\0';
		CHECK(rg_jwt_keyring_add_jwks(&kr, bad_jwks[i], strlen(bad_jwks[i]), err,
					      sizeof(err)) == -1 &&
		      err[0] && kr.n == 0);
	}
	/* a JWKS with one bad key adds none of them */
	static const char half[] = "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKOb"
				   "wVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"},"
				   "{\"kty\":\"DSA\"}]}";
	CHECK(rg_jwt_keyring_add_jwks(&kr, half, strlen(half), err, sizeof(err)) == -1 &&
	      kr.n == 0);
	CHECK(rg_jwt_keyring_add_pem(&kr, "not pem", 7, NULL, RG_JWT_ALG_NONE, err, sizeof(err)) ==
	      -1);
	CHECK(rg_jwt_keyring_add_secret(&kr, secret, 31, NULL, RG_JWT_HS256, err, sizeof(err)) ==
	      -1);
	CHECK(rg_jwt_keyring_add_secret(&kr, secret, 64, NULL, RG_JWT_RS256, err, sizeof(err)) ==
	      -1);
	CHECK(kr.n == 0);
	rg_jwt_keyring_free(&kr);
}

int main(void)
{
	test_rfc_examples();
	test_every_algorithm();
	test_claims_and_garbage();
	test_keyring_refusals();
	return check_done("jwt");
}
