/* Sessions with identities: what each policy lets a session do, the error each refusal
 * carries, the `auth` message (first token, refresh, refusals), presence names from
 * tokens, and expiry (token_expired, the end of a stream). */
#include "../check.h"
#include "drain.h"

#include "../../../gateway/session.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>

static const unsigned char secret[32] = "0123456789abcdef0123456789abcdef";

static struct rg_room_conf rooms[] = {
	{.name = "open", .history = 4},
	{.name = "members",
	 .history = 4,
	 .subscribe = RG_POLICY_AUTHENTICATED,
	 .publish = RG_POLICY_AUTHENTICATED,
	 .history_query = RG_POLICY_AUTHENTICATED},
	{.name = "vip", .history = 4, .subscribe = RG_POLICY_CLAIM, .publish = RG_POLICY_CLAIM},
	{.name = "srv", .history = 4, .publish = RG_POLICY_SERVER},
	{.name = "pres",
	 .history = 4,
	 .presence = 1,
	 .subscribe = RG_POLICY_AUTHENTICATED,
	 .presence_query = RG_POLICY_AUTHENTICATED},
	{.name = "user:", .is_pattern = 1, .history = 4, .bind = RG_BIND_SUB, .idle_seconds = 1},
	{.name = "dm:", .is_pattern = 1, .history = 4, .bind = RG_BIND_MEMBERS, .idle_seconds = 1},
};

static struct rg_config cfg = {
	.max_message_bytes = 8192,
	.max_rooms = 16,
	.max_rooms_per_connection = 8,
	.max_json_depth = 32,
	.max_pending_bytes = 65536,
	.rooms = rooms,
	.nrooms = sizeof(rooms) / sizeof(rooms[0]),
	.auth_leeway_seconds = 0,
};

static struct rg_registry reg;

static void wake(void *owner)
{
	(void)owner;
}

static size_t b64url(const unsigned char *in, size_t len, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) |
			     (i + 2 < len ? in[i + 2] : 0);
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		if (i + 1 < len)
			out[o++] = a[v >> 6 & 63];
		if (i + 2 < len)
			out[o++] = a[v & 63];
	}
	out[o] = '\0';
	return o;
}

/* An HS256 token with these claims (JSON text). */
static const char *token(const char *claims)
{
	static char tok[2048];
	static const char head[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char mac[32];
	unsigned int ml = 0;
	size_t n = b64url((const unsigned char *)head, strlen(head), tok);

	tok[n++] = '.';
	n += b64url((const unsigned char *)claims, strlen(claims), tok + n);
	HMAC(EVP_sha256(), secret, sizeof(secret), (unsigned char *)tok, n, mac, &ml);
	tok[n++] = '.';
	b64url(mac, ml, tok + n);
	return tok;
}

static const char *ask(struct rg_session *s, const char *fmt, const char *arg)
{
	char text[4096];
	snprintf(text, sizeof(text), fmt, arg);
	CHECK(rg_session_handle(s, text, strlen(text)) == 0);
	return drain(s, NULL);
}

static int answered(const char *got, const char *want)
{
	if (strstr(got, want))
		return 1;
	fprintf(stderr, "  got: %s  want: %s\n", got, want);
	return 0;
}

static void authenticate(struct rg_session *s, const char *claims)
{
	char text[2200];
	snprintf(text, sizeof(text), "{\"type\":\"auth\",\"token\":\"%s\"}", token(claims));
	CHECK(rg_session_handle(s, text, strlen(text)) == 0);
	CHECK(answered(drain(s, NULL), "\"type\":\"authenticated\""));
}

static void test_policies(void)
{
	struct rg_session anon, alice, vip, admin;
	static const char join[] = "{\"type\":\"join\",\"room\":\"%s\"}";

	rg_session_init(&anon, &reg, RG_FMT_WS, wake, NULL);
	rg_session_init(&alice, &reg, RG_FMT_WS, wake, NULL);
	rg_session_init(&vip, &reg, RG_FMT_WS, wake, NULL);
	rg_session_init(&admin, &reg, RG_FMT_WS, wake, NULL);
	authenticate(&alice, "{\"sub\":\"alice\"}");
	authenticate(&vip, "{\"sub\":\"val\",\"roomgate\":{\"rooms\":{\"v*\":[\"subscribe\"]}}}");
	authenticate(&admin, "{\"sub\":\"ops\",\"roomgate\":{\"admin\":true}}");

	CHECK(answered(ask(&anon, join, "open"), "\"type\":\"joined\""));
	CHECK(answered(ask(&anon, join, "members"), "\"code\":\"unauthorized\""));
	CHECK(answered(ask(&alice, join, "members"), "\"type\":\"joined\""));
	CHECK(answered(ask(&alice, join, "vip"), "\"code\":\"forbidden\""));
	CHECK(answered(ask(&vip, join, "vip"), "\"type\":\"joined\""));
	CHECK(answered(ask(&admin, join, "vip"), "\"type\":\"joined\""));
	/* a grant of subscribe is not one of publish */
	CHECK(answered(ask(&vip, "{\"type\":\"publish\",\"room\":\"%s\",\"data\":1}", "vip"),
		       "\"code\":\"forbidden\""));
	CHECK(answered(ask(&admin, "{\"type\":\"publish\",\"room\":\"%s\",\"data\":1}", "vip"),
		       "\"type\":\"ack\""));
	/* the policy is judged before membership: a server room says so */
	CHECK(answered(ask(&alice, "{\"type\":\"publish\",\"room\":\"%s\",\"data\":1}", "srv"),
		       "\"code\":\"forbidden\""));
	/* history queries: the room's history_query */
	CHECK(answered(ask(&anon, "{\"type\":\"history\",\"room\":\"%s\"}", "members"),
		       "\"code\":\"unauthorized\""));
	CHECK(answered(ask(&vip, "{\"type\":\"history\",\"room\":\"%s\"}", "vip"),
		       "\"type\":\"history\""));
	/* rooms bound to users: by name, whoever the pattern's policy lets in */
	CHECK(answered(ask(&alice, join, "user:alice"), "\"type\":\"joined\""));
	CHECK(answered(ask(&alice, join, "user:bob"), "\"code\":\"forbidden\""));
	CHECK(answered(ask(&anon, join, "user:alice"), "\"code\":\"unauthorized\""));
	CHECK(answered(ask(&alice, join, "dm:alice:bob"), "\"type\":\"joined\""));
	CHECK(answered(ask(&alice, join, "dm:bob:carol"), "\"code\":\"forbidden\""));
	/* a refused join of a pattern room made no room */
	struct rg_room *r;
	CHECK(rg_registry_get(&reg, "dm:bob:carol", 12, 0, &r) == -ENOENT);
	CHECK(rg_registry_get(&reg, "user:bob", 8, 0, &r) == -ENOENT);

	/* refresh: another user is refused; so is a token that would not allow a room the
	 * connection is in; the same user with the same rights is taken */
	CHECK(answered(
		ask(&alice, "{\"type\":\"auth\",\"token\":\"%s\"}", token("{\"sub\":\"bob\"}")),
		"\"code\":\"forbidden\""));
	CHECK(answered(
		ask(&vip, "{\"type\":\"auth\",\"token\":\"%s\"}", token("{\"sub\":\"val\"}")),
		"does not allow the room vip"));
	CHECK(answered(ask(&alice, "{\"type\":\"auth\",\"token\":\"%s\"}",
			   token("{\"sub\":\"alice\",\"exp\":4000000000}")),
		       "\"exp\":4000000000"));
	CHECK(rg_session_deadline(&alice) == 4000000000);
	/* refusals of the token itself */
	CHECK(answered(ask(&anon, "{\"type\":\"auth\",\"token\":\"%s\"}", "a.b.c"),
		       "\"code\":\"unauthorized\",\"message\":\"malformed\""));
	CHECK(answered(ask(&anon, "{\"type\":\"auth\",\"token\":\"%s\"}",
			   token("{\"sub\":\"x\",\"exp\":1000}")),
		       "\"message\":\"expired\""));
	CHECK(answered(ask(&anon, "{\"type\":\"auth\",\"token\":%s}", "5"),
		       "\"code\":\"bad_request\""));
	CHECK(rg_session_identity(&anon) == &rg_identity_anonymous);
	/* an API key in `auth`, as in a header: a backend */
	CHECK(answered(ask(&anon, "{\"type\":\"auth\",\"token\":\"%s\"}", "the-api-key"),
		       "{\"type\":\"authenticated\"}"));
	CHECK(rg_session_identity(&anon)->server);
	CHECK(answered(ask(&anon, "{\"type\":\"join\",\"room\":\"%s\"}", "srv"),
		       "\"type\":\"joined\""));
	CHECK(answered(ask(&anon, "{\"type\":\"publish\",\"room\":\"%s\",\"data\":1}", "srv"),
		       "\"type\":\"ack\""));

	rg_session_cleanup(&anon);
	rg_session_cleanup(&alice);
	rg_session_cleanup(&vip);
	rg_session_cleanup(&admin);
}

static void test_presence_names(void)
{
	struct rg_session a, b;
	static const char join[] = "{\"type\":\"join\",\"room\":\"pres\",\"name\":\"%s\"}";

	rg_session_init(&a, &reg, RG_FMT_WS, wake, NULL);
	rg_session_init(&b, &reg, RG_FMT_WS, wake, NULL);
	authenticate(&a, "{\"sub\":\"u1\",\"name\":\"Ann\"}");
	authenticate(&b, "{\"sub\":\"u2\"}");
	CHECK(answered(ask(&a, join, "not me"), "\"type\":\"joined\""));
	CHECK(answered(ask(&b, join, "Ann"), "\"type\":\"joined\""));
	/* the token names its bearer: a name asked for is not taken */
	CHECK(answered(drain(&a, NULL), "{\"type\":\"presence\",\"room\":\"pres\",\"event\":"
					"\"join\",\"user\":\"u2\",\"sub\":\"u2\"}"));
	const char *list = ask(&b, "{\"type\":\"presence\",\"room\":\"%s\"}", "pres");
	CHECK(answered(list, "\"Ann\"") && answered(list, "\"u2\"") && !strstr(list, "not me"));
	rg_session_cleanup(&a);
	rg_session_cleanup(&b);
}

static void test_expiry(void)
{
	struct rg_session ws, sse;
	struct rg_identity id = {.authenticated = 1, .sub = "eve", .name = "eve", .exp = 1};
	struct rg_identity id2 = id;
	int flags;

	rg_session_init(&ws, &reg, RG_FMT_WS, wake, NULL);
	rg_session_init(&sse, &reg, RG_FMT_SSE, wake, NULL);
	CHECK(rg_session_authenticate(&ws, &id) == 0 && !id.authenticated);
	CHECK(rg_session_authenticate(&sse, &id2) == 0);
	/* past its deadline the session is anonymous again, and told why it is refused */
	CHECK(rg_session_identity(&ws) == &rg_identity_anonymous);
	CHECK(answered(ask(&ws, "{\"type\":\"join\",\"room\":\"%s\"}", "members"),
		       "\"code\":\"token_expired\""));
	CHECK(rg_session_expire(&ws) == 0);
	CHECK(answered(drain(&ws, &flags), "{\"type\":\"error\",\"code\":\"token_expired\""));
	CHECK(!(flags & RG_FILL_END));
	/* a stream ends once told */
	CHECK(rg_session_expire(&sse) == 0);
	rg_session_end(&sse);
	char *out = drain(&sse, &flags);
	CHECK(answered(out, "event: expired\ndata: {\"code\":\"token_expired\""));
	CHECK(flags & RG_FILL_END);
	rg_session_cleanup(&ws);
	rg_session_cleanup(&sse);
}

int main(void)
{
	struct rg_auth auth = {.check = {.max_bytes = 4096}};
	char err[128];

	CHECK(rg_jwt_keyring_add_secret(&auth.keys, secret, sizeof(secret), NULL, RG_JWT_HS256, err,
					sizeof(err)) == 0);
	/* SHA-256("the-api-key") */
	CHECK(rg_auth_add_api_key_hash(
		      &auth, "8d50189b762a2ceb6ce62f175bdeed3b98da57133c8486a27d65fd5c8ece164f",
		      64) == 0);
	cfg.auth = &auth;
	for (size_t i = 0; i < cfg.nrooms; i++)
		if (rooms[i].presence_query == RG_POLICY_ANYONE)
			rooms[i].presence_query = rooms[i].subscribe;
	CHECK(rg_registry_init(&reg, &cfg) == 0);
	test_policies();
	test_presence_names();
	test_expiry();
	rg_registry_cleanup(&reg);
	rg_jwt_keyring_free(&auth.keys);
	free(auth.api_keys);
	return check_done("session_auth");
}
