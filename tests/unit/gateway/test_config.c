/* Config loading: the default file, a valid file with every key, and a table of bad
 * files with the exact lines each must print. Runs in the source tree (ctest sets
 * the working directory) so that "web" and the stand-in cert files exist. */
#include "../check.h"

#include "../../../gateway/auth.h"
#include "../../../gateway/config.h"
#include "../../../gateway/log.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <stdlib.h>

static char errs[8192];

static char warns[4096];

/* Errors into errs, warnings (lines that are not errors) into warns. */
static void collect(void *ctx, const char *line)
{
	char *to = strstr(line, ": warning: ") ? warns : errs;

	(void)ctx;
	strncat(to, line, sizeof(errs) - strlen(to) - 2);
	strcat(to, "\n");
}

static struct rg_config *parse(const char *text)
{
	errs[0] = warns[0] = '\0';
	return rg_config_parse("t.json", text, strlen(text), collect, NULL);
}

/* test material: tests/unit/gateway/tls/README.md */
#define TLSDIR "tests/unit/gateway/tls/"
#define TLS    "\"tls\":{\"cert\":\"" TLSDIR "unit.crt\",\"key\":\"" TLSDIR "unit.key\"}"
#define LISTEN "\"listen\":[{\"port\":8443," TLS "}]"
#define ROOMS  "\"rooms\":[{\"name\":\"lobby\"}]"

static const struct {
	const char *text;
	const char *want;
} bad[] = {
	{"", "t.json: the file is empty, expected a JSON object\n"},
	{"nope", "t.json: line 1, column 4: '[' or '{' expected near 'nope'\n"},
	{"{\"listen\": [}", "t.json: line 1, column 13: unexpected token near '}'\n"},
	{"[]", "t.json: expected a JSON object at the top\n"},
	{"{}", "t.json: listen: missing, expected an array of 1..16 listeners\n"
	       "t.json: rooms: missing, expected an array of 1..10000 rooms\n"},
	{"{" LISTEN "," ROOMS ",\"lissten\":1}", "t.json: lissten: unknown key\n"},
	{"{\"listen\":{}," ROOMS "}", "t.json: listen: expected an array of 1..16 listeners\n"},
	{"{\"listen\":[]," ROOMS "}", "t.json: listen: expected an array of 1..16 listeners\n"},
	{"{\"listen\":[8443]," ROOMS "}", "t.json: listen[0]: expected an object\n"},
	{"{\"listen\":[{" TLS "}]," ROOMS "}",
	 "t.json: listen[0].port: missing, expected an integer 1..65535\n"},
	{"{\"listen\":[{\"port\":8443,\"tls\":{\"cert\":\"" TLSDIR "unit.crt\",\"key\":\"" TLSDIR
	 "unit.key\",\"sni\":[{\"cert\":\"" TLSDIR "leaf.crt\"},{\"cert\":\"" TLSDIR
	 "unit.crt\",\"key\":\"" TLSDIR "other.key\"}]}}]," ROOMS "}",
	 "t.json: listen[0].tls.sni[0].key: missing, expected a private key file path\n"},
	{"{\"listen\":[{\"port\":8443,\"tls\":{\"cert\":\"" TLSDIR "unit.crt\",\"key\":\"" TLSDIR
	 "unit.key\",\"sni\":[{\"cert\":\"" TLSDIR "unit.crt\",\"key\":\"" TLSDIR
	 "other.key\"}]}}]," ROOMS "}",
	 "t.json: listen[0].tls.sni[0]: \"" TLSDIR "other.key\" is not the key of the certificate "
	 "\"unit.test\" (\"" TLSDIR "unit.crt\")\n"},
	{"{\"listen\":[{\"port\":0}]," ROOMS "}",
	 "t.json: listen[0].port: expected an integer 1..65535\n"},
	{"{\"listen\":[{\"port\":\"80\"}]," ROOMS "}",
	 "t.json: listen[0].port: expected an integer 1..65535\n"},
	{"{\"listen\":[{\"port\":70000}]," ROOMS "}",
	 "t.json: listen[0].port: expected an integer 1..65535\n"},
	{"{\"listen\":[{\"port\":80},{\"port\":80}]," ROOMS "}",
	 "t.json: listen[1].port: port 80 is already used by listen[0]\n"},
	{"{\"listen\":[{\"port\":80,\"tls\":true}]," ROOMS "}",
	 "t.json: listen[0].tls: expected an object\n"},
	{"{\"listen\":[{\"port\":80,\"tls\":{\"key\":\"CMakeLists.txt\"}}]," ROOMS "}",
	 "t.json: listen[0].tls.cert: missing, expected a certificate file path\n"},
	{"{\"listen\":[{\"port\":80,\"tls\":{\"cert\":\"no/"
	 "such.crt\",\"key\":\"CMakeLists.txt\"}}]," ROOMS "}",
	 "t.json: listen[0].tls.cert: cannot read \"no/such.crt\" (No such file or directory); "
	 "make "
	 "a dev certificate with scripts/dev-cert.sh\n"},
	{"{\"listen\":[{\"port\":80,\"tls\":{\"cert\":\"web\",\"key\":\"CMakeLists.txt\"}}]," ROOMS
	 "}",
	 "t.json: listen[0].tls.cert: cannot read \"web\" (not a regular file); make a dev "
	 "certificate with scripts/dev-cert.sh\n"},
	{"{\"listen\":[{\"port\":80,\"tls\":{\"cert\":\"CMakeLists.txt\",\"key\":\"CMakeLists."
	 "txt\","
	 "\"ca\":1}}]," ROOMS "}",
	 "t.json: listen[0].tls.ca: unknown key\n"},
	{"{\"listen\":[{\"port\":80,\"host\":5}]," ROOMS "}",
	 "t.json: listen[0].host: expected an IPv4 or IPv6 address\n"},
	{"{\"listen\":[{\"port\":80,\"host\":\"localhost\"}]," ROOMS "}",
	 "t.json: listen[0].host: expected an IPv4 or IPv6 address\n"},
	{"{" LISTEN "," ROOMS ",\"http\":{\"web_root\":\"CMakeLists.txt\"}}",
	 "t.json: http.web_root: \"CMakeLists.txt\" is not a directory\n"},
	{"{" LISTEN "," ROOMS ",\"http\":[]}", "t.json: http: expected an object\n"},
	{"{" LISTEN "," ROOMS ",\"http\":{\"allowed_origins\":\"*\"}}",
	 "t.json: http.allowed_origins: expected an array of 0..64 strings\n"},
	{"{" LISTEN "," ROOMS
	 ",\"http\":{\"allowed_origins\":[\"https://a.example\",\"https://b.example/\",5,\"\"]}}",
	 "t.json: http.allowed_origins[1]: expected an origin, scheme://host[:port] with scheme "
	 "http or https, or \"*\"\n"
	 "t.json: http.allowed_origins[2]: expected an origin, scheme://host[:port] with scheme "
	 "http or https, or \"*\"\n"
	 "t.json: http.allowed_origins[3]: expected an origin, scheme://host[:port] with scheme "
	 "http or https, or \"*\"\n"},
	{"{" LISTEN "," ROOMS ",\"sse\":{\"keepalive_seconds\":0}}",
	 "t.json: sse.keepalive_seconds: expected an integer 1..3600\n"},
	{"{" LISTEN "," ROOMS ",\"sse\":{\"retry_ms\":-1}}",
	 "t.json: sse.retry_ms: expected an integer 0..600000\n"},
	{"{" LISTEN "," ROOMS ",\"ws\":{\"ping_seconds\":\"30\"}}",
	 "t.json: ws.ping_seconds: expected an integer 1..3600\n"},
	{"{" LISTEN "," ROOMS ",\"ws\":{\"ping_timeout_seconds\":1.5}}",
	 "t.json: ws.ping_timeout_seconds: expected an integer 1..3600\n"},
	{"{" LISTEN "," ROOMS ",\"limits\":{\"max_message_bytes\":10}}",
	 "t.json: limits.max_message_bytes: expected an integer 16..16777216\n"},
	{"{" LISTEN "," ROOMS ",\"limits\":{\"max_mesage_bytes\":100}}",
	 "t.json: limits.max_mesage_bytes: unknown key\n"},
	{"{" LISTEN "," ROOMS ",\"limits\":{\"max_rooms_per_connection\":0}}",
	 "t.json: limits.max_rooms_per_connection: expected an integer 1..1024\n"},
	{"{" LISTEN "," ROOMS ",\"limits\":{\"memory_mb\":-1}}",
	 "t.json: limits.memory_mb: expected an integer 0..4194304\n"},
	{"{" LISTEN ",\"rooms\":[{\"name\":\"a\",\"history_bytes\":\"1M\"}]}",
	 "t.json: rooms[0].history_bytes: expected an integer 0..1073741824\n"},
	{"{" LISTEN "," ROOMS ",\"limits\":{\"max_pending_bytes\":1000}}",
	 "t.json: limits.max_pending_bytes: expected an integer 65536..1073741824\n"},
	{"{" LISTEN "," ROOMS ",\"limits\":{\"max_message_bytes\":1048576}}",
	 "t.json: limits.max_pending_bytes: expected at least 4 x limits.max_message_bytes "
	 "(4194304)\n"},
	{"{" LISTEN ",\"rooms\":{}}", "t.json: rooms: expected an array of 1..10000 rooms\n"},
	{"{" LISTEN ",\"rooms\":[]}", "t.json: rooms: expected an array of 1..10000 rooms\n"},
	{"{" LISTEN ",\"rooms\":[\"lobby\"]}", "t.json: rooms[0]: expected an object\n"},
	{"{" LISTEN ",\"rooms\":[{\"name\":\"a\",\"pattern\":\"b*\"}]}",
	 "t.json: rooms[0]: expected exactly one of \"name\" or \"pattern\"\n"},
	{"{" LISTEN ",\"rooms\":[{\"history\":5}]}",
	 "t.json: rooms[0]: expected exactly one of \"name\" or \"pattern\"\n"},
	{"{" LISTEN ",\"rooms\":[{\"name\":\"bad name\"}]}",
	 "t.json: rooms[0].name: expected a room name (1..128 of A-Z a-z 0-9 _ . : @ ~ -)\n"},
	{"{" LISTEN ",\"rooms\":[{\"name\":\"\"}]}",
	 "t.json: rooms[0].name: expected a room name (1..128 of A-Z a-z 0-9 _ . : @ ~ -)\n"},
	{"{" LISTEN ",\"rooms\":[{\"name\":\"lobby\",\"history\":0}]}",
	 "t.json: rooms[0].history: expected an integer 1..1000000\n"},
	{"{" LISTEN ",\"rooms\":[{\"name\":\"lobby\",\"history\":1000001}]}",
	 "t.json: rooms[0].history: expected an integer 1..1000000\n"},
	{"{" LISTEN ",\"rooms\":[{\"name\":\"lobby\",\"publish\":\"everyone\"}]}",
	 "t.json: rooms[0].publish: expected \"anyone\", \"authenticated\", \"claim\" or "
	 "\"server\"\n"},
	{"{" LISTEN ",\"rooms\":[{\"pattern\":\"dm:\"}]}",
	 "t.json: rooms[0].pattern: expected a pattern (room-name characters ending in one '*')\n"},
	{"{" LISTEN ",\"rooms\":[{\"pattern\":\"a*b*\"}]}",
	 "t.json: rooms[0].pattern: expected a pattern (room-name characters ending in one '*')\n"},
	{"{" LISTEN ",\"rooms\":[{\"name\":\"lobby\",\"idle_seconds\":5}]}",
	 "t.json: rooms[0].idle_seconds: only pattern rooms are dropped when idle\n"},
	{"{" LISTEN ",\"rooms\":[{\"pattern\":\"dm:*\",\"idle_seconds\":0}]}",
	 "t.json: rooms[0].idle_seconds: expected an integer 1..86400\n"},
	{"{" LISTEN ",\"rooms\":[{\"name\":\"a\"},{\"name\":\"a\"}]}",
	 "t.json: rooms[1]: the same name as rooms[0]\n"},
	{"{" LISTEN ",\"rooms\":[{\"name\":\"a\",\"nmae\":\"b\"}]}",
	 "t.json: rooms[0].nmae: unknown key\n"},
	{"{" LISTEN ",\"rooms\":[{\"name\":\"a\"},{\"name\":\"b\"}],\"limits\":{\"max_rooms\":1}}",
	 "t.json: limits.max_rooms: 1 is less than the 2 rooms named in \"rooms\"\n"},
	{"{" LISTEN "," ROOMS "," ROOMS "}",
	 "t.json: line 1, column 149: duplicate object key near '\"rooms\"'\n"},
	{"{" LISTEN ",\"rooms\":[{\"name\":\"a\",\"presence\":\"yes\"}]}",
	 "t.json: rooms[0].presence: expected true or false\n"},
	{"{" LISTEN ",\"rooms\":[{\"name\":\"a\",\"on_lag\":\"drop\"}]}",
	 "t.json: rooms[0].on_lag: expected \"disconnect\" or \"skip\"\n"},
	{"{" LISTEN "," ROOMS ",\"shutdown\":{\"drain_ms\":60001}}",
	 "t.json: shutdown.drain_ms: expected an integer 0..60000\n"},
	{"{" LISTEN "," ROOMS ",\"delivery\":{\"coalesce_us\":100001}}",
	 "t.json: delivery.coalesce_us: expected an integer 0..100000\n"},
	{"{" LISTEN "," ROOMS ",\"log\":{\"format\":\"xml\",\"level\":\"debug\",\"lws_level\":"
	 "\"info\",\"access\":1,\"color\":true}}",
	 "t.json: log.color: unknown key\n"
	 "t.json: log.format: expected \"text\" or \"json\"\n"
	 "t.json: log.level: expected \"error\", \"warn\", \"notice\" or \"info\"\n"
	 "t.json: log.lws_level: expected \"off\", \"error\", \"warn\" or \"notice\"\n"
	 "t.json: log.access: expected true or false\n"},
	{"{" LISTEN "," ROOMS ",\"delivery\":{\"batch\":1}}",
	 "t.json: delivery.batch: unknown key\n"},
	/* auth: policies that need tokens need keys; keys are loaded and checked at load */
	{"{" LISTEN ",\"rooms\":[{\"name\":\"a\",\"subscribe\":\"claim\"}]}",
	 "t.json: rooms[0].subscribe: \"claim\" needs tokens: name their keys in auth.keys\n"},
	{"{" LISTEN ",\"rooms\":[{\"pattern\":\"dm:*\",\"bind\":\"members\"}]}",
	 "t.json: rooms[0].bind: binding rooms to users needs tokens: name their keys in "
	 "auth.keys\n"},
	{"{" LISTEN ",\"rooms\":[{\"name\":\"a\",\"bind\":\"sub\"}]}",
	 "t.json: rooms[0].bind: only pattern rooms are bound to users by their names\n"
	 "t.json: rooms[0].bind: binding rooms to users needs tokens: name their keys in "
	 "auth.keys\n"},
	{"{" LISTEN "," ROOMS ",\"auth\":{\"keys\":[{\"kid\":\"k\"}]}}",
	 "t.json: auth.keys[0]: expected exactly one of \"file\" or \"secret_file\"\n"},
	{"{" LISTEN "," ROOMS
	 ",\"auth\":{\"keys\":[{\"file\":\"CMakeLists.txt\",\"secret_file\":\"CMakeLists.txt\"}]}}",
	 "t.json: auth.keys[0]: expected exactly one of \"file\" or \"secret_file\"\n"},
	{"{" LISTEN "," ROOMS
	 ",\"auth\":{\"keys\":[{\"secret_file\":\"CMakeLists.txt\",\"alg\":\"none\"}]}}",
	 "t.json: auth.keys[0].alg: expected one of HS256 HS384 HS512 RS256 RS384 RS512 PS256 "
	 "PS384 PS512 ES256 ES384 EdDSA\n"},
	{"{" LISTEN "," ROOMS ",\"auth\":{\"keys\":[{\"file\":\"CMakeLists.txt\"}]}}",
	 "t.json: auth.keys[0].file: no PEM public key or certificate (\"BEGIN PUBLIC KEY\" or "
	 "\"BEGIN CERTIFICATE\")\n"},
	{"{" LISTEN "," ROOMS ",\"auth\":{\"keys\":[{\"file\":\"no/such.pem\"}]}}",
	 "t.json: auth.keys[0].file: cannot read \"no/such.pem\" (No such file or directory); "
	 "make dev keys with scripts/dev-auth.sh\n"},
	{"{" LISTEN "," ROOMS ",\"auth\":{\"api_keys_file\":\"CMakeLists.txt\"}}",
	 "t.json: auth.api_keys_file: \"CMakeLists.txt\" line 1: expected a SHA-256 in hex (64 "
	 "digits), as `sha256sum` prints it\n"},
	{"{" LISTEN "," ROOMS ",\"auth\":{\"leeway_seconds\":601}}",
	 "t.json: auth.leeway_seconds: expected an integer 0..600\n"},
	/* cluster.redis (docs/OPERATIONS.md, "Several gateways") */
	{"{" LISTEN "," ROOMS ",\"cluster\":{\"redis\":{}}}",
	 "t.json: cluster.redis.address: missing, expected host:port (an IPv4 address, [IPv6] "
	 "or a host name)\n"},
	{"{" LISTEN "," ROOMS ",\"cluster\":{\"redis\":\"127.0.0.1:6379\"}}",
	 "t.json: cluster.redis: expected an object\n"},
	{"{" LISTEN "," ROOMS ",\"cluster\":{\"nats\":{}}}", "t.json: cluster.nats: unknown key\n"},
	{"{" LISTEN "," ROOMS ",\"cluster\":{\"redis\":{\"address\":\"h:6379\",\"tls\":true}}}",
	 "t.json: cluster.redis.tls: expected an object\n"},
	{"{" LISTEN "," ROOMS ",\"cluster\":{\"redis\":{\"address\":\"h:6379\",\"tls\":{}}}}",
	 "t.json: cluster.redis.tls.ca_file: missing, expected a file path\n"},
	{"{" LISTEN "," ROOMS
	 ",\"cluster\":{\"redis\":{\"address\":\"h:6379\",\"tls\":{\"ca_file\":\"CMakeLists.txt\","
	 "\"cert_file\":\"CMakeLists.txt\"}}}}",
	 "t.json: cluster.redis.tls.key_file: missing: cert_file and key_file go together\n"},
	{"{" LISTEN "," ROOMS
	 ",\"cluster\":{\"redis\":{\"address\":\"h:6379\",\"tls\":{\"ca_file\":\"CMakeLists.txt\","
	 "\"server_name\":\"a b\"}}}}",
	 "t.json: cluster.redis.tls.server_name: expected a host name or an IP address\n"},
	{"{" LISTEN "," ROOMS ",\"cluster\":{\"redis\":{\"address\":\"nope\"}}}",
	 "t.json: cluster.redis.address: expected host:port (an IPv4 address, [IPv6] or a host "
	 "name)\n"},
	{"{" LISTEN "," ROOMS ",\"cluster\":{\"redis\":{\"address\":\"h:65536\"}}}",
	 "t.json: cluster.redis.address: expected host:port (an IPv4 address, [IPv6] or a host "
	 "name)\n"},
	{"{" LISTEN "," ROOMS ",\"cluster\":{\"redis\":{\"address\":\"[::1:6379\"}}}",
	 "t.json: cluster.redis.address: expected host:port (an IPv4 address, [IPv6] or a host "
	 "name)\n"},
	{"{" LISTEN "," ROOMS ",\"cluster\":{\"redis\":{\"address\":\":6379\"}}}",
	 "t.json: cluster.redis.address: expected host:port (an IPv4 address, [IPv6] or a host "
	 "name)\n"},
	{"{" LISTEN "," ROOMS
	 ",\"cluster\":{\"redis\":{\"address\":\"[::1]:6379\",\"key_prefix\":\"a b\"}}}",
	 "t.json: cluster.redis.key_prefix: expected 1..64 characters of A-Z a-z 0-9 _ . : -\n"},
	{"{" LISTEN "," ROOMS ",\"cluster\":{\"redis\":{\"address\":\"h:1\",\"key_prefix\":\"\"}}}",
	 "t.json: cluster.redis.key_prefix: expected 1..64 characters of A-Z a-z 0-9 _ . : -\n"},
	{"{" LISTEN "," ROOMS
	 ",\"cluster\":{\"redis\":{\"address\":\"h:1\",\"password_file\":\"no/such\"}}}",
	 "t.json: cluster.redis.password_file: cannot read \"no/such\" (No such file or "
	 "directory)\n"},
	{"{" LISTEN "," ROOMS
	 ",\"cluster\":{\"redis\":{\"address\":\"h:1\",\"node_timeout_seconds\":1}}}",
	 "t.json: cluster.redis.node_timeout_seconds: expected an integer 2..3600\n"},
	{"{\"listen\":[{\"port\":8443,\"reuse_port\":1}]," ROOMS "}",
	 "t.json: listen[0].reuse_port: expected true or false\n"},
	/* every error of a file, not just the first */
	{"{\"listen\":[{\"port\":0}],\"rooms\":[{\"name\":\"a b\",\"history\":-3}],\"x\":1}",
	 "t.json: x: unknown key\n"
	 "t.json: listen[0].port: expected an integer 1..65535\n"
	 "t.json: rooms[0].name: expected a room name (1..128 of A-Z a-z 0-9 _ . : @ ~ -)\n"
	 "t.json: rooms[0].history: expected an integer 1..1000000\n"},
};

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rg_config *cfg = parse(bad[i].text);
		CHECK(cfg == NULL);
		if (strcmp(errs, bad[i].want))
			fprintf(stderr, "case %zu: %s\n", i, bad[i].text);
		CHECK_STR(errs, bad[i].want);
		rg_config_free(cfg);
	}
}

/* cluster.redis read: its address as written, the key prefix's default. */
static void test_cluster(void)
{
	struct rg_config *cfg = parse("{" LISTEN "," ROOMS "}");
	CHECK(cfg && !cfg->redis_address && !cfg->redis_password_file &&
	      !cfg->listen[0].reuse_port);
	rg_config_free(cfg);
	cfg = parse("{\"listen\":[{\"port\":8443,\"reuse_port\":true," TLS "}]," ROOMS "}");
	CHECK(cfg && cfg->listen[0].reuse_port);
	rg_config_free(cfg);
	cfg = parse("{" LISTEN "," ROOMS ",\"cluster\":{\"redis\":{\"address\":\"[::1]:6380\"}}}");
	CHECK(cfg && !strcmp(cfg->redis_address, "[::1]:6380") &&
	      !strcmp(cfg->redis_prefix, "roomgate:") && !cfg->redis_password_file &&
	      cfg->redis_node_timeout_seconds == 10);
	rg_config_free(cfg);
	cfg = parse("{" LISTEN "," ROOMS
		    ",\"cluster\":{\"redis\":{\"address\":\"redis.internal:6379\","
		    "\"password_file\":\"CMakeLists.txt\",\"key_prefix\":\"app-1:rg.\","
		    "\"node_timeout_seconds\":2}}}");
	CHECK(cfg && cfg->redis_node_timeout_seconds == 2 && !cfg->redis_tls_ca &&
	      !strcmp(cfg->redis_address, "redis.internal:6379") &&
	      !strcmp(cfg->redis_prefix, "app-1:rg.") &&
	      !strcmp(cfg->redis_password_file, "CMakeLists.txt"));
	rg_config_free(cfg);
}

/* cluster.redis.tls read: its files and name as written. */
static void test_cluster_tls(void)
{
	struct rg_config *cfg = parse(
		"{" LISTEN "," ROOMS ",\"cluster\":{\"redis\":{\"address\":\"r:6380\",\"tls\":{"
		"\"ca_file\":\"CMakeLists.txt\",\"cert_file\":\"README.md\",\"key_file\":"
		"\"CMakeLists.txt\",\"server_name\":\"redis.internal\"}}}}");
	CHECK(cfg && !strcmp(cfg->redis_tls_ca, "CMakeLists.txt") &&
	      !strcmp(cfg->redis_tls_cert, "README.md") &&
	      !strcmp(cfg->redis_tls_key, "CMakeLists.txt") &&
	      !strcmp(cfg->redis_tls_name, "redis.internal"));
	rg_config_free(cfg);
}

static void test_long_name(void)
{
	char text[512], name[130];
	memset(name, 'a', 129);
	name[129] = '\0';
	snprintf(text, sizeof(text), "{" LISTEN ",\"rooms\":[{\"name\":\"%s\"}]}", name);
	CHECK(parse(text) == NULL);
	CHECK_STR(errs,
		  "t.json: rooms[0].name: expected a room name (1..128 of A-Z a-z 0-9 _ . : @ ~ "
		  "-)\n");
	name[128] = '\0';
	snprintf(text, sizeof(text), "{" LISTEN ",\"rooms\":[{\"name\":\"%s\"}]}", name);
	struct rg_config *cfg = parse(text);
	CHECK(cfg != NULL);
	rg_config_free(cfg);
}

static void test_full(void)
{
	struct rg_config *cfg = parse(
		"{\"listen\":[{\"port\":1,\"host\":\"127.0.0.1\"},{\"port\":2,\"host\":\"::1\"," TLS
		"}],"
		"\"http\":{\"web_root\":\"docs\",\"allowed_origins\":[\"https://a.example:8443\","
		"\"*\"]},"
		"\"sse\":{\"keepalive_seconds\":2,\"retry_ms\":0},"
		"\"ws\":{\"ping_seconds\":3,\"ping_timeout_seconds\":4},"
		"\"limits\":{\"max_message_bytes\":16,\"max_rooms\":7,\"max_rooms_per_connection\":"
		"9,\"max_pending_bytes\":65536},"
		"\"shutdown\":{\"drain_ms\":0},\"delivery\":{\"coalesce_us\":0},"
		"\"log\":{\"format\":\"json\",\"level\":\"info\",\"lws_level\":\"off\","
		"\"access\":false},"
		"\"rooms\":[{\"name\":\"n\",\"history\":1,\"publish\":\"server\",\"presence\":true,"
		"\"on_lag\":\"skip\"},"
		"{\"pattern\":\"*\",\"idle_seconds\":5}]}");
	CHECK_STR(errs, "");
	if (!cfg)
		return;
	CHECK(cfg->nlisten == 2);
	CHECK(cfg->listen[0].port == 1 && !strcmp(cfg->listen[0].host, "127.0.0.1"));
	CHECK(!cfg->listen[0].cert && !cfg->listen[0].key);
	CHECK(cfg->listen[1].port == 2 && !strcmp(cfg->listen[1].host, "::1") &&
	      cfg->listen[1].cert);
	CHECK_STR(cfg->web_root, "docs");
	CHECK(cfg->nallowed_origins == 2 &&
	      !strcmp(cfg->allowed_origins[0], "https://a.example:8443") &&
	      !strcmp(cfg->allowed_origins[1], "*"));
	CHECK(cfg->sse_keepalive_seconds == 2 && cfg->sse_retry_ms == 0);
	CHECK(cfg->ws_ping_seconds == 3 && cfg->ws_ping_timeout_seconds == 4);
	CHECK(cfg->max_message_bytes == 16 && cfg->max_rooms == 7);
	CHECK(cfg->max_rooms_per_connection == 9 && cfg->drain_ms == 0 && cfg->coalesce_us == 0);
	CHECK(cfg->max_pending_bytes == 65536);
	CHECK(cfg->log_format == RG_LOG_JSON && cfg->log_level == RG_LOG_INFO);
	CHECK(cfg->log_lws_level == 0 && !cfg->log_access);
	CHECK(cfg->nrooms == 2);
	CHECK(!strcmp(cfg->rooms[0].name, "n") && !cfg->rooms[0].is_pattern);
	CHECK(cfg->rooms[0].history == 1 && cfg->rooms[0].publish == RG_POLICY_SERVER);
	CHECK(cfg->rooms[0].presence && cfg->rooms[0].on_lag == RG_LAG_SKIP);
	CHECK(!cfg->rooms[1].presence && cfg->rooms[1].on_lag == RG_LAG_DISCONNECT);
	CHECK(!strcmp(cfg->rooms[1].name, "") && cfg->rooms[1].is_pattern);
	CHECK(cfg->rooms[1].history == 100 && cfg->rooms[1].publish == RG_POLICY_ANYONE);
	CHECK(cfg->rooms[1].idle_seconds == 5);
	rg_config_free(cfg);
}

/* Replaces the first from in text (room to grow: 64 KB) with to. */
static int replace(char *text, size_t *len, const char *from, const char *to)
{
	char *p = strstr(text, from);
	size_t fl = strlen(from), tl = strlen(to);

	if (!p || *len + tl - fl >= (1 << 16) - 1)
		return -1;
	memmove(p + tl, p + fl, strlen(p + fl) + 1);
	memcpy(p, to, tl);
	*len = *len + tl - fl;
	return 0;
}

/* A listener's certificate and key are loaded as start will load them: what start would
 * refuse is an error, what clients may refuse a warning. */
static void test_tls_files(void)
{
	static const struct {
		const char *cert, *key, *err, *warn;
	} cases[] = {
		{"unit.crt", "unit.key", "", "self-signed (\"unit.test\")"},
		{"unit.crt", "other.key",
		 "\"" TLSDIR "other.key\" is not the key of the certificate "
		 "\"unit.test\" (\"" TLSDIR "unit.crt\")",
		 ""},
		{"unit.crt", "encrypted.key", "one under a passphrase", ""},
		{"unit.key", "unit.key", "\"" TLSDIR "unit.key\": no PEM certificate in it", ""},
		{"unit.crt", "unit.crt", "no PEM private key in it", ""},
		{"leaf.crt", "leaf.key", "",
		 "the chain is incomplete: the issuer of \"leaf.test\" is neither in the file"},
		{"expired.crt", "unit.key", "", "\"expired.test\" has expired"},
		/* the intermediate is in the file: the root is the client's to have */
		{"chain.crt", "chain.key", "", ""},
	};
	char text[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text),
			 "{\"listen\":[{\"port\":1,\"tls\":{\"cert\":\"" TLSDIR
			 "%s\",\"key\":\"" TLSDIR "%s\"}}]," ROOMS "}",
			 cases[i].cert, cases[i].key);
		struct rg_config *cfg = parse(text);
		int ok = cases[i].err[0] ? !cfg && strstr(errs, cases[i].err) &&
						   !strncmp(errs, "t.json: listen[0].tls: ", 23)
					 : cfg && !errs[0];
		ok = ok && (cases[i].warn[0] ? strstr(warns, cases[i].warn) != NULL : !warns[0]);
		if (!ok)
			fprintf(stderr, "case %zu: errors:\n%swarnings:\n%s", i, errs, warns);
		CHECK(ok);
		rg_config_free(cfg);
	}
}

/* A file with this text, made for the test: its path in path (a mkstemp template). */
static int temp_file(char *path, const char *text)
{
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* The default config's text with the files it names pointed at files every checkout
 * has, or that the test makes: the dev certificate and dev credentials are made by
 * scripts/dev-cert.sh and dev-auth.sh, and ctest on a fresh clone comes before that. */
static char *default_text(size_t *len, char *pub, char *hashes)
{
	FILE *f = fopen("config/roomgate.json", "rb");
	char *text = calloc(1, 1 << 16), pem[512] = "";
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	BIO *bio = BIO_new(BIO_s_mem());

	CHECK(f && text && key && bio);
	if (!f || !text || !key || !bio) {
		free(text);
		text = NULL;
		goto out;
	}
	*len = fread(text, 1, (1 << 16) - 1, f);
	CHECK(PEM_write_bio_PUBKEY(bio, key) == 1 && BIO_read(bio, pem, sizeof(pem) - 1) > 0);
	CHECK(temp_file(pub, pem) == 0);
	CHECK(temp_file(hashes, "0123456789abcdef0123456789abcdef"
				"0123456789abcdef0123456789abcdef  a key\n") == 0);
	CHECK(replace(text, len, "certs/dev.crt", TLSDIR "unit.crt") == 0);
	CHECK(replace(text, len, "certs/dev.key", TLSDIR "unit.key") == 0);
	CHECK(replace(text, len, "certs/dev-jwt.pub.pem", pub) == 0);
	CHECK(replace(text, len, "certs/dev-api-keys.sha256", hashes) == 0);
out:
	if (f)
		fclose(f);
	EVP_PKEY_free(key);
	BIO_free(bio);
	return text;
}

static void test_default_file(void)
{
	char pub[] = "/tmp/rg-unit-pub-XXXXXX", hashes[] = "/tmp/rg-unit-keys-XXXXXX";
	size_t len = 0;
	char *text = default_text(&len, pub, hashes);

	errs[0] = '\0';
	struct rg_config *cfg =
		text ? rg_config_parse("config/roomgate.json", text, len, collect, NULL) : NULL;
	free(text);
	unlink(pub);
	unlink(hashes);
	CHECK_STR(errs, "");
	if (!cfg)
		return;
	CHECK(cfg->nlisten == 1 && cfg->listen[0].port == 8443 && cfg->listen[0].cert);
	CHECK(cfg->nrooms == 3);
	CHECK(!strcmp(cfg->rooms[0].name, "lobby") && cfg->rooms[0].publish == RG_POLICY_ANYONE);
	CHECK(!strcmp(cfg->rooms[1].name, "news") && cfg->rooms[1].publish == RG_POLICY_SERVER);
	CHECK(!strcmp(cfg->rooms[2].name, "dm:") && cfg->rooms[2].is_pattern);
	/* the shipped config is a safe example: private rooms are their members' */
	CHECK(cfg->rooms[1].subscribe == RG_POLICY_ANYONE);
	CHECK(cfg->rooms[2].bind == RG_BIND_MEMBERS &&
	      cfg->rooms[2].subscribe == RG_POLICY_AUTHENTICATED &&
	      cfg->rooms[2].history_query == RG_POLICY_AUTHENTICATED);
	CHECK(cfg->auth && cfg->auth->keys.n == 1 && cfg->auth->napi_keys == 1);
	CHECK(cfg->max_message_bytes == 65536 && cfg->sse_keepalive_seconds == 15);
	CHECK(cfg->max_pending_bytes == 1048576 && cfg->memory_mb == 1024);
	CHECK(cfg->rooms[0].history_bytes == 1048576);
	CHECK(cfg->drain_ms == 1000 && cfg->coalesce_us == 0);
	rg_config_free(cfg);

	errs[0] = '\0';
	CHECK(rg_config_load("no/such/file.json", collect, NULL) == NULL);
	CHECK_STR(errs, "no/such/file.json: cannot open: No such file or directory\n");
}

/* docs/CONFIG.md's key table is the parser's table, row for row: from its header line
 * to the first line that is not a table row. */
static void test_doc_matches_table(void)
{
	static const char head[] = "| key | type, range | default | meaning |\n";
	FILE *f = fopen("docs/CONFIG.md", "rb");
	char *doc = calloc(1, 1 << 20), *want = rg_config_doc(), *start, *end;
	size_t n;

	CHECK(f && doc && want);
	if (!f || !doc || !want)
		goto out;
	n = fread(doc, 1, (1 << 20) - 1, f);
	doc[n] = '\0';
	CHECK((start = strstr(doc, head)) != NULL);
	if (!start)
		goto out;
	for (end = start; *end == '|';)
		end = strchr(end, '\n') ? strchr(end, '\n') + 1 : end + strlen(end);
	*end = '\0';
	if (strcmp(start, want)) {
		/* the first row that differs, to say what to fix */
		size_t i = 0, row = 0;
		while (start[i] && start[i] == want[i])
			row += start[i++] == '\n';
		while (i && start[i - 1] != '\n')
			i--;
		fprintf(stderr,
			"docs/CONFIG.md: the key table differs from gateway/config_keys.c at row "
			"%zu (`roomgate --config-keys` prints the table)\ndoc:   %.*s\ntable: "
			"%.*s\n",
			row, (int)strcspn(start + i, "\n"), start + i, (int)strcspn(want + i, "\n"),
			want + i);
	}
	CHECK(!strcmp(start, want));
	/* and the table covers what the parser reads */
	CHECK(strstr(want, "| `limits.max_rooms` | integer 1..1000000 | 10000 |") != NULL);
	CHECK(strstr(want, "| `rooms[].publish` | `\"anyone\"`, `\"authenticated\"`, "
			   "`\"claim\"` or `\"server\"` | `\"anyone\"` |") != NULL);
	CHECK(strstr(want, "| `auth.keys[].file` |") != NULL);
out:
	if (f)
		fclose(f);
	free(doc);
	free(want);
}

int main(void)
{
	test_doc_matches_table();
	test_bad();
	test_cluster();
	test_cluster_tls();
	test_long_name();
	test_full();
	test_default_file();
	test_tls_files();
	return check_done("config");
}
