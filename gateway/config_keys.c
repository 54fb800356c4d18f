/*
 * Every key of the config, one row each: what gateway/config.c parses, defaults and
 * documents (docs/CONFIG.md's key table is this table, printed by
 * `roomgate --config-keys`; unit_config fails when they differ). A new key is a new row.
 */
#include "auth.h"
#include "certs.h"
#include "config_table.h"
#include "log.h"
#include "origin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RG__CONF(f)   offsetof(struct rg_config, f)
#define RG__LISTEN(f) offsetof(struct rg_listen_conf, f)
#define RG__ROOM(f)   offsetof(struct rg_room_conf, f)
#define RG__KEY(f)    offsetof(struct rg_key_conf, f)

_Static_assert(sizeof(enum rg_policy) == sizeof(unsigned) &&
		       sizeof(enum rg_bind) == sizeof(unsigned) &&
		       sizeof(enum rg_on_lag) == sizeof(unsigned),
	       "ENUM rows store an unsigned");

static const char *const rg__policy[] = {[RG_POLICY_ANYONE] = "anyone",
					 [RG_POLICY_AUTHENTICATED] = "authenticated",
					 [RG_POLICY_CLAIM] = "claim",
					 [RG_POLICY_SERVER] = "server",
					 NULL};
static const char *const rg__bind[] = {
	[RG_BIND_NONE] = "none", [RG_BIND_SUB] = "sub", [RG_BIND_MEMBERS] = "members", NULL};
const char *rg_policy_name(enum rg_policy p)
{
	return rg__policy[p];
}

const char *rg_bind_name(enum rg_bind b)
{
	return rg__bind[b];
}

static const char *const rg__log_formats[] = {"text", "json", NULL};
static const char *const rg__log_levels[] = {"error", "warn", "notice", "info", NULL};
static const char *const rg__lws_levels[] = {"off", "error", "warn", "notice", NULL};

static const char *const rg__on_lag[] = {
	[RG_LAG_DISCONNECT] = "disconnect", [RG_LAG_SKIP] = "skip", NULL};

static const char *rg__str(const struct rg_conf_key *k, void *obj)
{
	return *(char **)(void *)((char *)obj + k->offset);
}

static void rg__host(struct rg_conf_parse *p, const struct rg_conf_key *k, void *obj)
{
	unsigned char addr[16];
	const char *s = rg__str(k, obj);

	if (inet_pton(AF_INET, s, addr) != 1 && inet_pton(AF_INET6, s, addr) != 1)
		rg_conf_fail(p, NULL, "expected %s", k->what);
}

/* host:port, the host an address or a name: what a TCP connect is given. */
static void rg__host_port(struct rg_conf_parse *p, const struct rg_conf_key *k, void *obj)
{
	const char *s = rg__str(k, obj), *colon = strrchr(s, ':');
	char *end;

	errno = 0;
	long port = colon ? strtol(colon + 1, &end, 10) : 0;
	if (!colon || colon == s || !colon[1] || *end || errno || port < 1 || port > 65535 ||
	    (s[0] == '[') != (colon[-1] == ']'))
		rg_conf_fail(p, NULL, "expected %s", k->what);
}

/* A DNS name or an IP address, as a certificate carries it. */
static void rg__host_name(struct rg_conf_parse *p, const struct rg_conf_key *k, void *obj)
{
	const char *s = rg__str(k, obj);
	size_t n = strlen(s);

	if (!n || n > 253 ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:") != n)
		rg_conf_fail(p, NULL, "expected %s", k->what);
}

static void rg__key_prefix(struct rg_conf_parse *p, const struct rg_conf_key *k, void *obj)
{
	const char *s = rg__str(k, obj);
	size_t n = strlen(s);

	if (n > 64 ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") != n)
		rg_conf_fail(p, NULL, "expected %s", k->what);
}

static void rg__readable_file(struct rg_conf_parse *p, const struct rg_conf_key *k, void *obj)
{
	const char *file = rg__str(k, obj), *why = NULL;
	struct stat st;

	if (stat(file, &st))
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (access(file, R_OK))
		why = strerror(errno);
	if (!why)
		return;
	if (!strncmp(k->path, "cluster.", 8))
		rg_conf_fail(p, NULL, "cannot read \"%s\" (%s)", file, why);
	else
		rg_conf_fail(p, NULL, "cannot read \"%s\" (%s); make %s", file, why,
			     strncmp(k->path, "auth.", 5)
				     ? "a dev certificate with scripts/dev-cert.sh"
				     : "dev keys with scripts/dev-auth.sh");
}

static void rg__room_name(struct rg_conf_parse *p, const struct rg_conf_key *k, void *obj)
{
	const char *s = rg__str(k, obj);

	if (!rg_room_name_valid(s, strlen(s)))
		rg_conf_fail(p, NULL, "expected %s", k->what);
}

/* Keeps the prefix before the '*'. */
static void rg__pattern(struct rg_conf_parse *p, const struct rg_conf_key *k, void *obj)
{
	char *s = *(char **)(void *)((char *)obj + k->offset);
	size_t n = strlen(s);

	if (s[n - 1] != '*' || n - 1 > RG_ROOM_NAME_MAX || (n > 1 && !rg_room_name_valid(s, n - 1)))
		rg_conf_fail(p, NULL, "expected %s", k->what);
	s[n - 1] = '\0';
}

static void rg__listener(struct rg_conf_parse *p, json_t *elem, void *arr, size_t i)
{
	struct rg_listen_conf *l = arr;

	(void)elem;
	for (size_t j = 0; l[i].port && j < i; j++)
		if (l[j].port == l[i].port)
			rg_conf_fail(p, "port", "port %u is already used by listen[%zu]", l[i].port,
				     j);
}

static void rg__room(struct rg_conf_parse *p, json_t *elem, void *arr, size_t i)
{
	struct rg_room_conf *r = arr, *rc = &r[i];
	int has_pattern = json_object_get(elem, "pattern") != NULL;

	if (!json_object_get(elem, "name") == !has_pattern) {
		rg_conf_fail(p, NULL, "expected exactly one of \"name\" or \"pattern\"");
		return;
	}
	rc->is_pattern = has_pattern;
	if (!has_pattern && json_object_get(elem, "idle_seconds"))
		rg_conf_fail(p, "idle_seconds", "only pattern rooms are dropped when idle");
	if (!has_pattern && rc->bind != RG_BIND_NONE)
		rg_conf_fail(p, "bind", "only pattern rooms are bound to users by their names");
	/* who may subscribe may, unless told otherwise, read what subscribing shows */
	if (!json_object_get(elem, "history_query"))
		rc->history_query = rc->subscribe;
	if (!json_object_get(elem, "presence_query"))
		rc->presence_query = rc->subscribe;
	for (size_t j = 0; rc->name && j < i; j++)
		if (r[j].name && r[j].is_pattern == rc->is_pattern && !strcmp(r[j].name, rc->name))
			rg_conf_fail(p, NULL, "the same %s as rooms[%zu]",
				     rc->is_pattern ? "pattern" : "name", j);
}

static void rg__key(struct rg_conf_parse *p, json_t *elem, void *arr, size_t i)
{
	const struct rg_key_conf *k = &((const struct rg_key_conf *)arr)[i];

	if (!json_object_get(elem, "file") == !json_object_get(elem, "secret_file"))
		rg_conf_fail(p, NULL, "expected exactly one of \"file\" or \"secret_file\"");
	else if (k->alg && rg_jwt_alg_of(k->alg) == RG_JWT_ALG_NONE)
		rg_conf_fail(p, "alg",
			     "expected one of HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 "
			     "PS512 ES256 ES384 EdDSA");
}

static void rg__auth_fail(void *ctx, const char *where, const char *what)
{
	rg_conf_fail(ctx, where, "%s", what);
}

/* A policy no client can meet without a token: refused when there are no keys. */
static void rg__room_auth(struct rg_conf_parse *p, const struct rg_config *cfg, size_t i)
{
	static const char *const acts[] = {"subscribe", "publish", "history_query",
					   "presence_query"};
	const struct rg_room_conf *rc = &cfg->rooms[i];
	const enum rg_policy pol[] = {rc->subscribe, rc->publish, rc->history_query,
				      rc->presence_query};
	char where[64];

	if (cfg->nauth_keys)
		return;
	for (size_t a = 0; a < 4; a++) {
		/* a query policy the same as subscribe's is said once, at subscribe */
		if ((pol[a] != RG_POLICY_AUTHENTICATED && pol[a] != RG_POLICY_CLAIM) ||
		    (a >= 2 && pol[a] == rc->subscribe))
			continue;
		snprintf(where, sizeof(where), "rooms[%zu].%s", i, acts[a]);
		rg_conf_fail(p, where, "\"%s\" needs tokens: name their keys in auth.keys",
			     rg__policy[pol[a]]);
	}
	if (rc->bind != RG_BIND_NONE) {
		snprintf(where, sizeof(where), "rooms[%zu].bind", i);
		rg_conf_fail(p, where,
			     "binding rooms to users needs tokens: name their keys in "
			     "auth.keys");
	}
}

void rg_conf_check_whole(struct rg_conf_parse *p, struct rg_config *cfg)
{
	struct stat st;

	if (cfg->web_root && (stat(cfg->web_root, &st) || !S_ISDIR(st.st_mode)))
		rg_conf_fail(p, "http.web_root", "\"%s\" is not a directory", cfg->web_root);
	/* A connection must be able to owe a few of the largest messages without being
	 * judged slow for it. */
	if ((uint64_t)cfg->max_pending_bytes < 4 * (uint64_t)cfg->max_message_bytes)
		rg_conf_fail(p, "limits.max_pending_bytes",
			     "expected at least 4 x limits.max_message_bytes (%llu)",
			     4ULL * cfg->max_message_bytes);
	size_t exact = 0;
	for (size_t i = 0; i < cfg->nrooms; i++)
		exact += cfg->rooms[i].name && !cfg->rooms[i].is_pattern;
	if (exact > cfg->max_rooms)
		rg_conf_fail(p, "limits.max_rooms",
			     "%u is less than the %zu rooms named in \"rooms\"", cfg->max_rooms,
			     exact);
	for (size_t i = 0; i < cfg->nrooms; i++)
		rg__room_auth(p, cfg, i);
	if (!cfg->redis_tls_cert != !cfg->redis_tls_key)
		rg_conf_fail(p,
			     cfg->redis_tls_cert ? "cluster.redis.tls.key_file"
						 : "cluster.redis.tls.cert_file",
			     "missing: cert_file and key_file go together");
	/* keys are read once the files named are there to read */
	if (rg_conf_failed(p))
		return;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct rg_listen_conf *l = &cfg->listen[i];
		char err[512], warn[512], where[64];
		if (!l->cert)
			continue;
		snprintf(where, sizeof(where), "listen[%zu].tls", i);
		if (rg_certs_check(l->cert, l->key, err, sizeof(err), warn, sizeof(warn)))
			rg_conf_fail(p, where, "%s", err);
		else if (warn[0])
			rg_conf_warn(p, where, "%s", warn);
		for (size_t j = 0; j < l->nsni; j++) {
			snprintf(where, sizeof(where), "listen[%zu].tls.sni[%zu]", i, j);
			if (rg_certs_check(l->sni[j].cert, l->sni[j].key, err, sizeof(err), warn,
					   sizeof(warn)))
				rg_conf_fail(p, where, "%s", err);
			else if (warn[0])
				rg_conf_warn(p, where, "%s", warn);
		}
	}
	cfg->auth = rg_auth_load(cfg, rg__auth_fail, p);
}

#define RG__ROOM_NAME "a room name (1..128 of A-Z a-z 0-9 _ . : @ ~ -)"

const struct rg_conf_key rg_conf_keys[] = {
	{.path = "listen",
	 .type = RG_CONF_ARRAY,
	 .flags = RG_CONF_REQUIRED,
	 .min = 1,
	 .max = RG_LISTEN_MAX,
	 .offset = RG__CONF(listen),
	 .count_offset = RG__CONF(nlisten),
	 .elem_size = sizeof(struct rg_listen_conf),
	 .what = "listeners",
	 .each = rg__listener,
	 .doc = "the ports to serve; every listener serves everything"},
	{.path = "listen[].port",
	 .type = RG_CONF_UINT,
	 .flags = RG_CONF_REQUIRED,
	 .min = 1,
	 .max = 65535,
	 .offset = RG__LISTEN(port),
	 .what = "unique",
	 .doc = "TCP port"},
	{.path = "listen[].host",
	 .type = RG_CONF_STRING,
	 .offset = RG__LISTEN(host),
	 .what = "an IPv4 or IPv6 address",
	 .check = rg__host,
	 .def_doc = "all interfaces",
	 .doc = "bind to one address only (`127.0.0.1` for local tests)"},
	{.path = "listen[].reuse_port",
	 .type = RG_CONF_BOOL,
	 .def = 0,
	 .offset = RG__LISTEN(reuse_port),
	 .doc = "let other gateway processes on this host listen on the same port "
		"(SO_REUSEPORT): the kernel spreads new connections between them, one process "
		"per core, each with this set (and `cluster.redis`, so that they share rooms; "
		"[OPERATIONS.md](OPERATIONS.md#several-gateways)). Off, a second process on the "
		"port fails to start"},
	{.path = "listen[].tls",
	 .type = RG_CONF_OBJECT,
	 .def_doc = "none: plain, with a warning in the log",
	 .doc = "serve TLS (HTTP/1.1 and HTTP/2 by ALPN)"},
	{.path = "listen[].tls.cert",
	 .type = RG_CONF_STRING,
	 .flags = RG_CONF_REQUIRED,
	 .offset = RG__LISTEN(cert),
	 .what = "a certificate file path",
	 .check = rg__readable_file,
	 .def_doc = "required in `tls`",
	 .doc = "PEM certificate (chain)"},
	{.path = "listen[].tls.key",
	 .type = RG_CONF_STRING,
	 .flags = RG_CONF_REQUIRED,
	 .offset = RG__LISTEN(key),
	 .what = "a private key file path",
	 .check = rg__readable_file,
	 .def_doc = "required in `tls`",
	 .doc = "PEM private key"},
	{.path = "listen[].tls.sni",
	 .type = RG_CONF_ARRAY,
	 .min = 1,
	 .max = RG_SNI_MAX,
	 .offset = RG__LISTEN(sni),
	 .count_offset = RG__LISTEN(nsni),
	 .elem_size = sizeof(struct rg_sni_conf),
	 .what = "certificates",
	 .def_doc = "none",
	 .doc = "more certificates on this port: a client that asks for a name (TLS SNI) one of "
		"them holds (its subjectAltName DNS names, wildcards included) is served that "
		"one, the first that matches; every other client gets `cert`"},
	{.path = "listen[].tls.sni[].cert",
	 .type = RG_CONF_STRING,
	 .flags = RG_CONF_REQUIRED,
	 .offset = offsetof(struct rg_sni_conf, cert),
	 .what = "a certificate file path",
	 .check = rg__readable_file,
	 .def_doc = "required",
	 .doc = "PEM certificate (chain)"},
	{.path = "listen[].tls.sni[].key",
	 .type = RG_CONF_STRING,
	 .flags = RG_CONF_REQUIRED,
	 .offset = offsetof(struct rg_sni_conf, key),
	 .what = "a private key file path",
	 .check = rg__readable_file,
	 .def_doc = "required",
	 .doc = "PEM private key"},

	{.path = "http", .type = RG_CONF_OBJECT},
	{.path = "http.web_root",
	 .type = RG_CONF_STRING,
	 .offset = RG__CONF(web_root),
	 .what = "a directory path",
	 .def_str = "web",
	 .doc = "static files served at `/` (`index.html` for a directory); nothing outside it "
		"is reachable"},
	{.path = "http.allowed_origins",
	 .type = RG_CONF_STRINGS,
	 .min = 0,
	 .max = 64,
	 .offset = RG__CONF(allowed_origins),
	 .count_offset = RG__CONF(nallowed_origins),
	 .what = "an origin, scheme://host[:port] with scheme http or https, or \"*\"",
	 .valid = rg_origin_valid,
	 .def_doc = "`[]`: the gateway's own origin only",
	 .doc = "web pages on these origins may use the gateway from a browser: WebSocket (an "
		"upgrade from any other `Origin` is refused 403), SSE and the HTTP API (CORS: "
		"`Access-Control-Allow-Origin` and preflight; any other `Origin` is refused 403 "
		"`forbidden`, so no page elsewhere can publish). A page the gateway serves itself "
		"(the `Origin` names the host it was sent to) is always allowed, and requests "
		"without `Origin` (curl, servers) are not judged. `*`: any origin"},

	{.path = "sse", .type = RG_CONF_OBJECT},
	{.path = "sse.keepalive_seconds",
	 .type = RG_CONF_UINT,
	 .min = 1,
	 .max = 3600,
	 .def = 15,
	 .offset = RG__CONF(sse_keepalive_seconds),
	 .doc = "interval of the `: keepalive` comment on every SSE stream"},
	{.path = "sse.retry_ms",
	 .type = RG_CONF_UINT,
	 .min = 0,
	 .max = 600000,
	 .def = 3000,
	 .offset = RG__CONF(sse_retry_ms),
	 .doc = "the `retry:` sent on connect (EventSource's reconnect delay)"},

	{.path = "ws", .type = RG_CONF_OBJECT},
	{.path = "ws.ping_seconds",
	 .type = RG_CONF_UINT,
	 .min = 1,
	 .max = 3600,
	 .def = 30,
	 .offset = RG__CONF(ws_ping_seconds),
	 .doc = "a connection (WS, or the HTTP/2 connection) with no traffic for this long is "
		"pinged"},
	{.path = "ws.ping_timeout_seconds",
	 .type = RG_CONF_UINT,
	 .min = 1,
	 .max = 3600,
	 .def = 10,
	 .offset = RG__CONF(ws_ping_timeout_seconds),
	 .doc = "it is closed when nothing arrives for this long after the ping was due"},

	{.path = "limits", .type = RG_CONF_OBJECT},
	{.path = "limits.max_message_bytes",
	 .type = RG_CONF_UINT,
	 .min = 16,
	 .max = 16 * 1024 * 1024,
	 .def = 65536,
	 .offset = RG__CONF(max_message_bytes),
	 .doc = "the largest WebSocket message and HTTP body accepted"},
	{.path = "limits.max_batch_bytes",
	 .type = RG_CONF_UINT,
	 .min = 1024,
	 .max = 64 * 1024 * 1024,
	 .def = 1024 * 1024,
	 .offset = RG__CONF(max_batch_bytes),
	 .doc = "the largest body of a batch publish (`POST /messages`); each of its messages' "
		"`data` is still held to `max_message_bytes`"},
	{.path = "limits.max_batch_messages",
	 .type = RG_CONF_UINT,
	 .min = 1,
	 .max = 100000,
	 .def = 1000,
	 .offset = RG__CONF(max_batch_messages),
	 .doc = "the most messages one batch publish may carry"},
	{.path = "limits.handshake_seconds",
	 .type = RG_CONF_UINT,
	 .min = 1,
	 .max = 300,
	 .def = 10,
	 .offset = RG__CONF(handshake_seconds),
	 .doc = "a connection that has not completed its TLS handshake in this long is "
		"closed (a plain one: has not sent its request). After the handshake, the "
		"request headers must be complete within 5 s (libwebsockets' own timer, which "
		"this may shorten but not lengthen), so a slowloris is closed. Needs a restart "
		"to change"},
	{.path = "limits.max_header_bytes",
	 .type = RG_CONF_UINT,
	 .min = 1024,
	 .max = RG_HEADER_BYTES_MAX,
	 .def = 4096,
	 .offset = RG__CONF(max_header_bytes),
	 .doc = "what one HTTP request's line and headers may hold together (HTTP/2: its "
		"decoded header list); past it, `414` while the request line is still being read "
		"(a URL that long), `431` in the headers, and the connection is closed. A token "
		"in a header or the URL must fit in it. Needs a restart to change"},
	{.path = "limits.max_json_depth",
	 .type = RG_CONF_UINT,
	 .min = 1,
	 .max = 1000,
	 .def = 32,
	 .offset = RG__CONF(max_json_depth),
	 .doc = "the deepest nesting of arrays and objects in a message's `data` (an HTTP "
		"body; in a WebSocket message, not counting the message object around it); "
		"deeper is refused with `bad_request` and never reaches a subscriber's parser"},
	{.path = "limits.max_rooms",
	 .type = RG_CONF_UINT,
	 .min = 1,
	 .max = 1000000,
	 .def = 10000,
	 .offset = RG__CONF(max_rooms),
	 .doc = "the most rooms alive at once (configured + pattern rooms). At the limit, the "
		"pattern room without subscribers that was used least recently is dropped (its "
		"history with it) to make way for a new one; only when every pattern room has a "
		"subscriber is a new one refused with `limit_exceeded`. A pattern room that never "
		"held a message is dropped as soon as its last subscriber leaves"},
	{.path = "limits.max_rooms_per_connection",
	 .type = RG_CONF_UINT,
	 .min = 1,
	 .max = 1024,
	 .def = 64,
	 .offset = RG__CONF(max_rooms_per_connection),
	 .doc = "the most rooms one WebSocket joins, or one SSE stream names"},
	{.path = "limits.max_connections",
	 .type = RG_CONF_UINT,
	 .min = 0,
	 .max = 10000000,
	 .def = 0,
	 .offset = RG__CONF(max_connections),
	 .def_doc = "0: the open-files limit (`ulimit -n`) minus 64",
	 .doc = "the most connections held at once (TCP connections, whatever they carry); one "
		"past it is closed as it is accepted, unanswered, and logged. Above the "
		"open-files limit it cannot be reached: the start log says so"},
	{.path = "limits.max_connections_per_address",
	 .type = RG_CONF_UINT,
	 .min = 0,
	 .max = 10000000,
	 .def = 1000,
	 .offset = RG__CONF(max_connections_per_address),
	 .doc = "the most connections one client address holds at once; one past it is closed as "
		"it is accepted, and logged. Raise it where many users share an address (a "
		"carrier's NAT, an office); 0: no limit"},
	{.path = "limits.publish_rate_per_connection",
	 .type = RG_CONF_UINT,
	 .min = 0,
	 .max = 10000000,
	 .def = 1000,
	 .offset = RG__CONF(publish_rate_per_connection),
	 .doc = "messages a second one WebSocket connection may publish, with a second's worth "
		"as a burst (a token bucket); past it a publish is answered `rate_limited` with "
		"`retry_after_ms` and not stored. Backends are not limited; 0: no limit"},
	{.path = "limits.publish_rate_per_address",
	 .type = RG_CONF_UINT,
	 .min = 0,
	 .max = 10000000,
	 .def = 10000,
	 .offset = RG__CONF(publish_rate_per_address),
	 .doc = "messages a second all of one client address's connections and HTTP requests "
		"may publish, as one bucket; past it `rate_limited` (HTTP 429 with "
		"`Retry-After`). Backends are not limited; 0: no limit"},
	{.path = "limits.room_creation_rate_per_connection",
	 .type = RG_CONF_UINT,
	 .min = 0,
	 .max = 10000000,
	 .def = 120,
	 .offset = RG__CONF(room_rate_per_connection),
	 .doc = "pattern rooms a minute one connection may bring into being (by joining or "
		"subscribing to one that is not alive), with a minute's worth as a burst; past "
		"it the join is answered `rate_limited` with `retry_after_ms`, so no one client "
		"sweeps the idle rooms of `max_rooms` away. Joining rooms that are alive is not "
		"counted; backends are not limited; 0: no limit"},
	{.path = "limits.room_creation_rate_per_address",
	 .type = RG_CONF_UINT,
	 .min = 0,
	 .max = 10000000,
	 .def = 600,
	 .offset = RG__CONF(room_rate_per_address),
	 .doc = "the same for all of one client address's connections together; 0: no limit"},
	{.path = "limits.max_pending_bytes",
	 .type = RG_CONF_UINT,
	 .min = 65536,
	 .max = 1024 * 1024 * 1024,
	 .def = 1024 * 1024,
	 .offset = RG__CONF(max_pending_bytes),
	 .what = "at least 4 × `max_message_bytes`",
	 .doc = "what one connection may be owed before it is judged too slow: room messages it "
		"has not been able to write beyond the room's `history` (a room keeps a message "
		"past its `history` while a subscriber still needs it, up to this many bytes "
		"back), and events it did not ask for (presence). Past it: `on_lag` (disconnect "
		"as `lagged`, or `gap`). A client's answers to its own requests are not counted: "
		"it is paused instead (docs/PROTOCOL.md)"},

	{.path = "limits.memory_mb",
	 .type = RG_CONF_UINT,
	 .min = 0,
	 .max = 4 * 1024 * 1024,
	 .def = 1024,
	 .offset = RG__CONF(memory_mb),
	 .doc = "the memory budget, in MiB: what clients make the gateway hold (stored "
		"messages, rooms, subscriptions, queued answers, input buffers), counted as it "
		"is allocated. Past it, pattern rooms without subscribers are dropped, least "
		"recently used first; while it is still past, a publish that would grow a room "
		"is answered `overloaded` (HTTP 503), new connections are refused (HTTP 503, "
		"WebSocket close 1013) and `/readyz` answers 503. Connections themselves are "
		"bounded by `max_connections` (docs/OPERATIONS.md, \"Sizing\"); 0: no budget"},

	{.path = "cluster", .type = RG_CONF_OBJECT},
	{.path = "cluster.redis",
	 .type = RG_CONF_OBJECT,
	 .def_doc = "none: one gateway process, rooms in memory",
	 .doc = "share rooms with every gateway on the same Redis (7 or later): each room's "
		"messages are ordered and kept in a Redis stream, so a message published on any "
		"node reaches the subscribers of every node with the same seq, and idempotency "
		"keys and the epoch are shared ([OPERATIONS.md](OPERATIONS.md#several-gateways))"},
	{.path = "cluster.redis.address",
	 .type = RG_CONF_STRING,
	 .flags = RG_CONF_REQUIRED,
	 .offset = RG__CONF(redis_address),
	 .what = "host:port (an IPv4 address, [IPv6] or a host name)",
	 .check = rg__host_port,
	 .def_doc = "required in `cluster.redis`",
	 .doc = "where Redis listens (TCP)"},
	{.path = "cluster.redis.password_file",
	 .type = RG_CONF_STRING,
	 .offset = RG__CONF(redis_password_file),
	 .what = "a file path",
	 .check = rg__readable_file,
	 .def_doc = "none: no AUTH",
	 .doc = "a file holding the password Redis asks for (`requirepass`; one line), sent "
		"with AUTH on each connection"},
	{.path = "cluster.redis.key_prefix",
	 .type = RG_CONF_STRING,
	 .offset = RG__CONF(redis_prefix),
	 .what = "1..64 characters of A-Z a-z 0-9 _ . : -",
	 .check = rg__key_prefix,
	 .def_str = "roomgate:",
	 .doc = "the start of every key and channel name the gateways use: gateways that share "
		"rooms share it; other applications (or other clusters) on the same Redis use "
		"another"},
	{.path = "cluster.redis.tls",
	 .type = RG_CONF_OBJECT,
	 .def_doc = "none: plain TCP",
	 .doc = "reach Redis over TLS (Redis 6 or later with `tls-port`): TLS 1.2 or later, "
		"Redis's certificate verified against `ca_file` and `server_name`, a client "
		"certificate for `tls-auth-clients` when `cert_file` and `key_file` are given"},
	{.path = "cluster.redis.tls.ca_file",
	 .type = RG_CONF_STRING,
	 .flags = RG_CONF_REQUIRED,
	 .offset = RG__CONF(redis_tls_ca),
	 .what = "a file path",
	 .check = rg__readable_file,
	 .def_doc = "required in `cluster.redis.tls`",
	 .doc = "the CA certificate(s), PEM, that Redis's certificate must chain to"},
	{.path = "cluster.redis.tls.cert_file",
	 .type = RG_CONF_STRING,
	 .offset = RG__CONF(redis_tls_cert),
	 .what = "a file path",
	 .check = rg__readable_file,
	 .def_doc = "none: no client certificate",
	 .doc = "this gateway's certificate chain, PEM, for a Redis that asks for one "
		"(`tls-auth-clients yes`); with `key_file`"},
	{.path = "cluster.redis.tls.key_file",
	 .type = RG_CONF_STRING,
	 .offset = RG__CONF(redis_tls_key),
	 .what = "a file path",
	 .check = rg__readable_file,
	 .def_doc = "none",
	 .doc = "the private key of `cert_file`, PEM"},
	{.path = "cluster.redis.tls.server_name",
	 .type = RG_CONF_STRING,
	 .offset = RG__CONF(redis_tls_name),
	 .what = "a host name or an IP address",
	 .check = rg__host_name,
	 .def_doc = "the host of `address`",
	 .doc = "the name (or IP address) Redis's certificate must carry; a name is also sent "
		"as SNI"},
	{.path = "cluster.redis.node_timeout_seconds",
	 .type = RG_CONF_UINT,
	 .min = 2,
	 .max = 3600,
	 .def = 10,
	 .offset = RG__CONF(redis_node_timeout_seconds),
	 .doc = "each gateway tells Redis it is alive once a second; one not heard from for "
		"this long (killed, its host lost, cut off from Redis) is taken as gone: another "
		"node removes its members from presence rooms, whose members everywhere get "
		"their `leave`. A gateway that stops cleanly removes its own at once"},

	{.path = "shutdown", .type = RG_CONF_OBJECT},
	{.path = "shutdown.drain_ms",
	 .type = RG_CONF_UINT,
	 .min = 0,
	 .max = 60000,
	 .def = 1000,
	 .offset = RG__CONF(drain_ms),
	 .doc = "on SIGTERM/SIGINT: WebSocket connections are closed with 1001 and SSE streams "
		"ended; the gateway waits at most this long for them to go, then exits"},

	{.path = "delivery", .type = RG_CONF_OBJECT},
	{.path = "delivery.coalesce_us",
	 .type = RG_CONF_UINT,
	 .min = 0,
	 .max = 100000,
	 .def = 0,
	 .offset = RG__CONF(coalesce_us),
	 .doc = "connections that have something to write within this window (microseconds) are "
		"given their write turn together at its end, so that under load each write "
		"carries more messages (fewer system calls and TLS records), at the cost of up to "
		"this much added latency (at least 1 ms in practice: the event loop's timers have "
		"millisecond resolution). 0: a connection writes in the loop pass after its "
		"messages arrived, every message pending by then in one write "
		"([OPERATIONS.md](OPERATIONS.md#limits) has the measured trade-off)"},

	{.path = "log", .type = RG_CONF_OBJECT},
	{.path = "log.format",
	 .type = RG_CONF_ENUM,
	 .choices = rg__log_formats,
	 .def = RG_LOG_TEXT,
	 .offset = RG__CONF(log_format),
	 .doc = "lines on stderr as text, or as one JSON object each "
		"([OPERATIONS.md](OPERATIONS.md#logs) lists the fields)"},
	{.path = "log.level",
	 .type = RG_CONF_ENUM,
	 .choices = rg__log_levels,
	 .def = RG_LOG_NOTICE,
	 .offset = RG__CONF(log_level),
	 .doc = "the least severe of the gateway's lines written: `info` adds each lagged or "
		"expired connection and each idle room dropped (`--verbose` sets `info` "
		"whatever the config says)"},
	{.path = "log.lws_level",
	 .type = RG_CONF_ENUM,
	 .choices = rg__lws_levels,
	 .def = 2,
	 .offset = RG__CONF(log_lws_level),
	 .doc = "the least severe of libwebsockets' own lines written (source `lws`)"},
	{.path = "log.access",
	 .type = RG_CONF_BOOL,
	 .def = 1,
	 .offset = RG__CONF(log_access),
	 .doc = "one access line per HTTP request answered and per WebSocket or SSE stream "
		"ended (address, path, status or close code, rooms, user, bytes, duration), "
		"whatever `level` is"},

	{.path = "auth",
	 .type = RG_CONF_OBJECT,
	 .def_doc = "none: no tokens; the HTTP API is a backend from loopback addresses only",
	 .doc = "who clients are: tokens (JWT) verified with `keys`, and backends' API keys "
		"([OPERATIONS.md](OPERATIONS.md#security) makes and rotates them)"},
	{.path = "auth.keys",
	 .type = RG_CONF_ARRAY,
	 .min = 0,
	 .max = 64,
	 .offset = RG__CONF(auth_keys),
	 .count_offset = RG__CONF(nauth_keys),
	 .elem_size = sizeof(struct rg_key_conf),
	 .what = "keys",
	 .each = rg__key,
	 .def_doc = "`[]`: no token is valid",
	 .doc = "the keys tokens are verified with, several at once for rotation; a token is "
		"tried with the keys of its header's `alg` (and `kid`, when both name one). The "
		"key fixes the algorithm: `alg: none` and a public key used as an HMAC secret "
		"find no key"},
	{.path = "auth.keys[].file",
	 .type = RG_CONF_STRING,
	 .offset = RG__KEY(file),
	 .what = "a file path",
	 .check = rg__readable_file,
	 .def_doc = "one of `file` / `secret_file`",
	 .doc = "a PEM public key or certificate (RSA of 2048 bits or more, EC P-256 or P-384, "
		"Ed25519), or a JWKS document (`{\"keys\": [...]}`, public keys and `oct` "
		"secrets, each with its own `kid` and `alg`)"},
	{.path = "auth.keys[].secret_file",
	 .type = RG_CONF_STRING,
	 .offset = RG__KEY(secret_file),
	 .what = "a file path",
	 .check = rg__readable_file,
	 .def_doc = "one of `file` / `secret_file`",
	 .doc = "an HMAC secret: the file's bytes, a final newline cut; at least as long as the "
		"hash (32 bytes for HS256, 48, 64)"},
	{.path = "auth.keys[].kid",
	 .type = RG_CONF_STRING,
	 .offset = RG__KEY(kid),
	 .what = "a key id",
	 .def_doc = "none: the key is tried for every `kid`",
	 .doc = "the `kid` tokens signed with this key carry"},
	{.path = "auth.keys[].alg",
	 .type = RG_CONF_STRING,
	 .offset = RG__KEY(alg),
	 .what = "an algorithm name",
	 .def_doc = "the key's: `HS256` for a secret, `RS256`, `ES256`, `ES384`, `EdDSA`",
	 .doc = "the one algorithm the key verifies: `HS256` `HS384` `HS512` for a secret; "
		"`RS256` `RS384` `RS512` `PS256` `PS384` `PS512` for an RSA key"},
	{.path = "auth.issuer",
	 .type = RG_CONF_STRING,
	 .offset = RG__CONF(auth_issuer),
	 .what = "a string",
	 .def_doc = "none: not checked",
	 .doc = "the `iss` every token must carry"},
	{.path = "auth.audience",
	 .type = RG_CONF_STRING,
	 .offset = RG__CONF(auth_audience),
	 .what = "a string",
	 .def_doc = "none: not checked",
	 .doc = "an `aud` every token must carry (its `aud` string, or one of its array)"},
	{.path = "auth.leeway_seconds",
	 .type = RG_CONF_UINT,
	 .min = 0,
	 .max = 600,
	 .def = 30,
	 .offset = RG__CONF(auth_leeway_seconds),
	 .doc = "clock skew allowed when checking `exp`, `nbf` and `iat`"},
	{.path = "auth.max_token_bytes",
	 .type = RG_CONF_UINT,
	 .min = 256,
	 .max = 65536,
	 .def = 4096,
	 .offset = RG__CONF(auth_max_token_bytes),
	 .doc = "longer tokens are refused unread. A token in a header or the URL is bounded "
		"by what a request's headers may hold as well (4 KB in all: 431 past it); the "
		"WebSocket `auth` message takes up to this"},
	{.path = "auth.expiry_grace_seconds",
	 .type = RG_CONF_UINT,
	 .min = 0,
	 .max = 3600,
	 .def = 10,
	 .offset = RG__CONF(auth_grace_seconds),
	 .doc = "when a WebSocket client's token expires it is told `token_expired`, and closed "
		"(4001) this long after unless it sent a new one (`auth`) meanwhile"},
	{.path = "auth.api_keys_file",
	 .type = RG_CONF_STRING,
	 .offset = RG__CONF(auth_api_keys_file),
	 .what = "a file path",
	 .check = rg__readable_file,
	 .def_doc = "none",
	 .doc = "backends' API keys, as the SHA-256 of each in hex, one per line (`sha256sum` "
		"output; `#` comments); a key is sent as `Authorization: Bearer KEY`. With it, "
		"loopback addresses are nothing special"},

	{.path = "rooms",
	 .type = RG_CONF_ARRAY,
	 .flags = RG_CONF_REQUIRED,
	 .min = 1,
	 .max = 10000,
	 .offset = RG__CONF(rooms),
	 .count_offset = RG__CONF(nrooms),
	 .elem_size = sizeof(struct rg_room_conf),
	 .what = "rooms",
	 .each = rg__room,
	 .doc = "the rooms (by `name`) and room families (by `pattern`)"},
	{.path = "rooms[].name",
	 .type = RG_CONF_STRING,
	 .offset = RG__ROOM(name),
	 .what = RG__ROOM_NAME,
	 .check = rg__room_name,
	 .def_doc = "one of `name` / `pattern`",
	 .doc = "a room that always exists"},
	{.path = "rooms[].pattern",
	 .type = RG_CONF_STRING,
	 .offset = RG__ROOM(name),
	 .what = "a pattern (room-name characters ending in one '*')",
	 .check = rg__pattern,
	 .def_doc = "one of `name` / `pattern`",
	 .doc = "rooms created on first use whose name starts with the part before `*`"},
	{.path = "rooms[].history",
	 .type = RG_CONF_UINT,
	 .min = 1,
	 .max = 1000000,
	 .def = 100,
	 .offset = RG__ROOM(history),
	 .doc = "messages kept per room: what `history` and resuming reach back to, and the "
		"window in which publish ids are deduplicated. A subscriber may fall this far "
		"behind, and further while it is owed less than `limits.max_pending_bytes`, "
		"before `on_lag` applies"},
	{.path = "rooms[].history_bytes",
	 .type = RG_CONF_UINT,
	 .min = 0,
	 .max = 1024 * 1024 * 1024,
	 .def = 1024 * 1024,
	 .offset = RG__ROOM(history_bytes),
	 .doc = "and at most this many bytes of them: a message counts as its SSE event (its "
		"data, the message envelope and the event lines, about 100 bytes more); the "
		"newest is always kept. A room holds each message framed for WebSocket and for "
		"SSE, so its memory is about twice this. 0: only `history` counts"},
	{.path = "rooms[].subscribe",
	 .type = RG_CONF_ENUM,
	 .choices = rg__policy,
	 .def = RG_POLICY_ANYONE,
	 .offset = RG__ROOM(subscribe),
	 .doc = "who joins the room (WebSocket `join`, an SSE stream's `room=`), and so reads "
		"its messages and, with `since`, its history: `anyone`; `authenticated` = a "
		"client with a valid token; `claim` = a token whose `roomgate.rooms` grants "
		"`subscribe` here; `server` = backends only (an API key, or a token with "
		"`roomgate.admin`). All but `anyone` need `auth.keys` "
		"([PROTOCOL.md](PROTOCOL.md#authentication))"},
	{.path = "rooms[].publish",
	 .type = RG_CONF_ENUM,
	 .choices = rg__policy,
	 .def = RG_POLICY_ANYONE,
	 .offset = RG__ROOM(publish),
	 .doc = "who publishes, over WebSocket (after joining) or the HTTP API: as `subscribe`. "
		"Backends publish to every room; without `auth`, the HTTP API is a backend when "
		"it is called from a loopback address, and `server` rooms take no publish from "
		"anywhere else"},
	{.path = "rooms[].history_query",
	 .type = RG_CONF_ENUM,
	 .choices = rg__policy,
	 .def_doc = "the room's `subscribe`",
	 .offset = RG__ROOM(history_query),
	 .doc = "who reads the room's history without joining it (WebSocket `history`, `GET "
		"/rooms/{room}/messages`): as `subscribe`; a `claim` is met by a grant of "
		"`history` or `subscribe`"},
	{.path = "rooms[].presence_query",
	 .type = RG_CONF_ENUM,
	 .choices = rg__policy,
	 .def_doc = "the room's `subscribe`",
	 .offset = RG__ROOM(presence_query),
	 .doc = "who reads the member list without joining (WebSocket `presence`, `GET "
		"/rooms/{room}/presence`): as `subscribe`; a `claim` is met by a grant of "
		"`presence` or `subscribe`"},
	{.path = "rooms[].bind",
	 .type = RG_CONF_ENUM,
	 .choices = rg__bind,
	 .def = RG_BIND_NONE,
	 .offset = RG__ROOM(bind),
	 .what = "`pattern` entries only",
	 .doc = "binds each room of the pattern to users by its name, the part after the "
		"pattern's prefix: `sub` = it is a token's `sub` (`user:*`: `user:alice` is "
		"alice's alone); `members` = it is `sub`s joined by `:`, and the token's is one "
		"of them (`dm:*`: `dm:alice:bob` is alice's and bob's). On top of the room's "
		"policies, for every action; backends are not bound. Needs `auth.keys`"},
	{.path = "rooms[].presence",
	 .type = RG_CONF_BOOL,
	 .def = 0,
	 .offset = RG__ROOM(presence),
	 .doc = "members see each other join and leave; `presence` queries answer the member "
		"list"},
	{.path = "rooms[].on_lag",
	 .type = RG_CONF_ENUM,
	 .choices = rg__on_lag,
	 .def = RG_LAG_DISCONNECT,
	 .offset = RG__ROOM(on_lag),
	 .doc = "a subscriber that falls behind the room's `history` and "
		"`limits.max_pending_bytes` is disconnected as lagged (it resumes with `since` / "
		"Last-Event-ID), or told about the `gap` and moved to the oldest stored message"},
	{.path = "rooms[].idle_seconds",
	 .type = RG_CONF_UINT,
	 .min = 1,
	 .max = 86400,
	 .def = 300,
	 .offset = RG__ROOM(idle_seconds),
	 .what = "`pattern` entries only",
	 .doc = "a pattern room with no subscriber for this long is dropped (its history and seq "
		"with it)"},
};
const size_t rg_conf_nkeys = sizeof(rg_conf_keys) / sizeof(rg_conf_keys[0]);
