/* Identities from claims and API keys, and the rule that decides an action on a room:
 * policies, grants by name and by prefix, rooms bound to their users. */
#include "../check.h"

#include "../../../gateway/auth.h"

#include <openssl/evp.h>
#include <stdlib.h>

static struct rg_identity from(const char *claims_json)
{
	struct rg_identity id;
	const char *why = NULL;
	json_t *claims = json_loads(claims_json, 0, NULL);

	CHECK(claims != NULL);
	if (rg_identity_from_claims(&id, claims, &why)) {
		fprintf(stderr, "  claims refused (%s): %s\n", why, claims_json);
		memset(&id, 0, sizeof(id));
	}
	json_decref(claims);
	return id;
}

static void test_claims(void)
{
	struct rg_identity id = from("{\"sub\":\"alice\",\"exp\":2000.9}");
	CHECK(id.authenticated && !id.server && !id.grants);
	CHECK_STR(id.sub, "alice");
	CHECK_STR(id.name, "alice"); /* no name claim: sub */
	CHECK(id.exp == 2000);
	rg_identity_clear(&id);

	id = from("{\"sub\":\"u-17\",\"name\":\"Alice B.\",\"roomgate\":{\"admin\":true}}");
	CHECK(id.server && id.authenticated);
	CHECK_STR(id.name, "Alice B.");
	rg_identity_clear(&id);

	id = from("{\"roomgate\":{\"rooms\":{\"lobby\":[\"publish\"],\"team:*\":[\"subscribe\"],"
		  "\"*\":[\"history\"]}}}");
	CHECK(id.authenticated && id.grants && !id.sub[0]);
	rg_identity_clear(&id);
	CHECK(id.grants == NULL && !id.authenticated);

	static const char *bad[] = {
		"{\"sub\":5}",
		"{\"sub\":\"\"}",
		"{\"sub\":\"a\\u0001b\"}",
		"{\"sub\":\"a\\u0000b\"}",
		"{\"name\":[]}",
		"{\"sub\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
		"{\"roomgate\":[]}",
		"{\"roomgate\":{\"admin\":1}}",
		"{\"roomgate\":{\"rooms\":[]}}",
		"{\"roomgate\":{\"rooms\":{\"lobby\":\"publish\"}}}",
		"{\"roomgate\":{\"rooms\":{\"lobby\":[\"write\"]}}}",
		"{\"roomgate\":{\"rooms\":{\"lobby\":[1]}}}",
		"{\"roomgate\":{\"rooms\":{\"bad name\":[\"publish\"]}}}",
		"{\"roomgate\":{\"rooms\":{\"a*b\":[\"publish\"]}}}",
		"{\"roomgate\":{\"rooms\":{\"\":[\"publish\"]}}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *c = json_loads(bad[i], JSON_ALLOW_NUL, NULL);
		const char *why = NULL;
		CHECK(c != NULL);
		CHECK(rg_identity_from_claims(&id, c, &why) == -1 && why && !id.authenticated);
		json_decref(c);
	}
}

static void test_api_keys(void)
{
	struct rg_auth auth = {0};
	struct rg_identity id = {0};
	unsigned char h[32];
	unsigned int hl;
	char hex[65];

	EVP_Digest("the backend's key", 17, h, &hl, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02X", h[i]); /* upper case is read too */
	CHECK(rg_auth_add_api_key_hash(&auth, "00", 2) == -1);
	CHECK(rg_auth_add_api_key_hash(
		      &auth, "zz00000000000000000000000000000000000000000000000000000000000000",
		      64) == -1);
	CHECK(rg_auth_add_api_key_hash(
		      &auth, "0000000000000000000000000000000000000000000000000000000000000000",
		      64) == 0);
	CHECK(rg_auth_add_api_key_hash(&auth, hex, 64) == 0 && auth.napi_keys == 2);
	CHECK(rg_auth_api_key(&auth, "the backend's key", 17, &id) == 1 && id.server &&
	      id.authenticated);
	memset(&id, 0, sizeof(id));
	CHECK(rg_auth_api_key(&auth, "the backend's kez", 17, &id) == 0 && !id.server);
	CHECK(rg_auth_api_key(&auth, "the backend's key", 16, &id) == 0);
	CHECK(rg_auth_api_key(&auth, "", 0, &id) == 0);
	rg_jwt_keyring_free(&auth.keys);
	free(auth.api_keys);
}

static void test_allows(void)
{
	struct rg_identity nobody = {0}, server = {.authenticated = 1, .server = 1};
	struct rg_identity alice =
		from("{\"sub\":\"alice\",\"roomgate\":{\"rooms\":{"
		     "\"lobby\":[\"publish\"],\"team:*\":[\"subscribe\",\"history\"]}}}");
	struct rg_identity bob = from("{\"sub\":\"bob\"}");
	const char *why;
	const struct {
		const struct rg_identity *id;
		enum rg_action act;
		enum rg_policy policy;
		enum rg_bind bind;
		const char *room;
		size_t plen;
		int want;
	} cases[] = {
		{&nobody, RG_ACT_SUBSCRIBE, RG_POLICY_ANYONE, RG_BIND_NONE, "lobby", 0, 1},
		{&nobody, RG_ACT_PUBLISH, RG_POLICY_AUTHENTICATED, RG_BIND_NONE, "lobby", 0, 0},
		{&bob, RG_ACT_PUBLISH, RG_POLICY_AUTHENTICATED, RG_BIND_NONE, "lobby", 0, 1},
		{&bob, RG_ACT_PUBLISH, RG_POLICY_CLAIM, RG_BIND_NONE, "lobby", 0, 0},
		{&alice, RG_ACT_PUBLISH, RG_POLICY_CLAIM, RG_BIND_NONE, "lobby", 0, 1},
		{&alice, RG_ACT_SUBSCRIBE, RG_POLICY_CLAIM, RG_BIND_NONE, "lobby", 0, 0},
		{&alice, RG_ACT_SUBSCRIBE, RG_POLICY_CLAIM, RG_BIND_NONE, "team:red", 5, 1},
		{&alice, RG_ACT_HISTORY, RG_POLICY_CLAIM, RG_BIND_NONE, "team:", 5, 1},
		{&alice, RG_ACT_PUBLISH, RG_POLICY_CLAIM, RG_BIND_NONE, "team:red", 5, 0},
		{&alice, RG_ACT_SUBSCRIBE, RG_POLICY_CLAIM, RG_BIND_NONE, "teams", 0, 0},
		{&alice, RG_ACT_PUBLISH, RG_POLICY_CLAIM, RG_BIND_NONE, "lobby2", 0, 0},
		{&alice, RG_ACT_PUBLISH, RG_POLICY_SERVER, RG_BIND_NONE, "news", 0, 0},
		{&server, RG_ACT_PUBLISH, RG_POLICY_SERVER, RG_BIND_NONE, "news", 0, 1},
		{&nobody, RG_ACT_PUBLISH, RG_POLICY_SERVER, RG_BIND_NONE, "news", 0, 0},
		/* user-bound rooms: user:{sub}, and dm: rooms naming both users */
		{&alice, RG_ACT_SUBSCRIBE, RG_POLICY_ANYONE, RG_BIND_SUB, "user:alice", 5, 1},
		{&bob, RG_ACT_SUBSCRIBE, RG_POLICY_ANYONE, RG_BIND_SUB, "user:alice", 5, 0},
		{&nobody, RG_ACT_SUBSCRIBE, RG_POLICY_ANYONE, RG_BIND_SUB, "user:alice", 5, 0},
		{&alice, RG_ACT_SUBSCRIBE, RG_POLICY_ANYONE, RG_BIND_SUB, "user:alice2", 5, 0},
		{&alice, RG_ACT_SUBSCRIBE, RG_POLICY_ANYONE, RG_BIND_SUB, "user:alic", 5, 0},
		{&server, RG_ACT_PUBLISH, RG_POLICY_ANYONE, RG_BIND_SUB, "user:alice", 5, 1},
		{&alice, RG_ACT_PUBLISH, RG_POLICY_ANYONE, RG_BIND_MEMBERS, "dm:alice:bob", 3, 1},
		{&bob, RG_ACT_PUBLISH, RG_POLICY_ANYONE, RG_BIND_MEMBERS, "dm:alice:bob", 3, 1},
		{&bob, RG_ACT_PUBLISH, RG_POLICY_ANYONE, RG_BIND_MEMBERS, "dm:alice:bobby", 3, 0},
		{&bob, RG_ACT_PUBLISH, RG_POLICY_ANYONE, RG_BIND_MEMBERS, "dm:alice:ob", 3, 0},
		{&bob, RG_ACT_PUBLISH, RG_POLICY_ANYONE, RG_BIND_MEMBERS, "dm:bob", 3, 1},
		{&bob, RG_ACT_PUBLISH, RG_POLICY_ANYONE, RG_BIND_MEMBERS, "dm:", 3, 0},
		{&bob, RG_ACT_PUBLISH, RG_POLICY_ANYONE, RG_BIND_MEMBERS, "dm:alice::carol", 3, 0},
		{&nobody, RG_ACT_PUBLISH, RG_POLICY_ANYONE, RG_BIND_MEMBERS, "dm:alice:bob", 3, 0},
		/* a binding and a policy both hold */
		{&bob, RG_ACT_PUBLISH, RG_POLICY_CLAIM, RG_BIND_MEMBERS, "dm:alice:bob", 3, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why = NULL;
		int got = rg_auth_allows(cases[i].id, cases[i].act, cases[i].policy, cases[i].bind,
					 cases[i].room, cases[i].plen, &why);
		CHECK(got == cases[i].want && (got || why));
		if (got != cases[i].want)
			fprintf(stderr, "  case %zu (%s): got %d\n", i, cases[i].room, got);
	}
	rg_identity_clear(&alice);
	rg_identity_clear(&bob);
}

/* A token all the way to an identity: RFC 7515 A.1 (HS256, iss "joe"). */
static void test_token(void)
{
	static const char jwks[] =
		"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQL"
		"r_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}]}";
	static const char token[] =
		"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkz"
		"ODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1"
		"p1r_wW1gFWFOEjXk";
	struct rg_auth auth = {.check = {.issuer = "joe", .max_bytes = 8192}};
	struct rg_identity id;
	const char *why = NULL;
	char err[128];

	CHECK(rg_jwt_keyring_add_jwks(&auth.keys, jwks, strlen(jwks), err, sizeof(err)) == 0);
	CHECK(rg_auth_token(&auth, token, strlen(token), 1300819000, &id, &why) == 0);
	CHECK(id.authenticated && !id.server && id.exp == 1300819380 && !id.sub[0]);
	rg_identity_clear(&id);
	CHECK(rg_auth_token(&auth, token, strlen(token), 1300819380, &id, &why) == -1 &&
	      !strcmp(why, "expired") && !id.authenticated);
	auth.check.issuer = "jane";
	CHECK(rg_auth_token(&auth, token, strlen(token), 1300819000, &id, &why) == -1 &&
	      !strcmp(why, "wrong issuer"));
	rg_jwt_keyring_free(&auth.keys);
	free(auth.api_keys);
}

int main(void)
{
	test_claims();
	test_token();
	test_api_keys();
	test_allows();
	return check_done("auth");
}
