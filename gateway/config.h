/*
 * The gateway's configuration: one JSON file, validated as a whole (docs/CONFIG.md).
 *
 * rg_config_load() reports every problem it finds through the error callback, one
 * line each, in the form "FILE: json.path: what was expected", and returns NULL when
 * there was any. Every key is a row of one table (gateway/config_keys.c). The
 * returned config is owned by the caller: rg_config_free().
 */
#ifndef RG_CONFIG_H
#define RG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define RG_ROOM_NAME_MAX 128
#define RG_LISTEN_MAX    16
/* The most limits.max_header_bytes allows: what one request's line and headers hold. */
#define RG_HEADER_BYTES_MAX 16384

/* Who may do an action in a room (gateway/auth.h decides). */
enum rg_policy {
	RG_POLICY_ANYONE,        /* every client */
	RG_POLICY_AUTHENTICATED, /* a valid token or API key */
	RG_POLICY_CLAIM,         /* a token that grants it for this room, or a backend */
	RG_POLICY_SERVER,        /* backends only: an API key, or a token with admin */
};

/* How a pattern room's name binds it to users (the part after the pattern's prefix). */
enum rg_bind {
	RG_BIND_NONE,
	RG_BIND_SUB,     /* is the user's sub: "user:*" makes user:alice alice's alone */
	RG_BIND_MEMBERS, /* is users joined by ':', the sub among them: dm:alice:bob */
};
/* What happens to a subscriber that falls off the ring. */
enum rg_on_lag { RG_LAG_DISCONNECT, RG_LAG_SKIP };

struct rg_room_conf {
	char *name; /* exact name, or the prefix before '*' for a pattern */
	int is_pattern;
	uint32_t history;       /* ring size: history kept and lag tolerance */
	uint32_t history_bytes; /* and at most this many bytes of it (rg_msg_weight); 0: no cap */
	enum rg_policy subscribe, publish;
	enum rg_policy history_query, presence_query; /* absent: subscribe's */
	enum rg_bind bind;                            /* pattern rooms only */
	enum rg_on_lag on_lag;
	int presence;          /* members see each other join and leave */
	uint32_t idle_seconds; /* pattern rooms only */
};

#define RG_SNI_MAX 16

/* A certificate served to TLS clients that ask for one of its names (SNI). */
struct rg_sni_conf {
	char *cert;
	char *key;
};

struct rg_listen_conf {
	uint32_t port;
	char *host; /* NULL: all interfaces */
	char *cert; /* both NULL: plain */
	char *key;
	struct rg_sni_conf *sni; /* more certificates, chosen by name; cert is the default */
	size_t nsni;
	int reuse_port; /* other processes may listen on the same port (SO_REUSEPORT) */
};

/* A key tokens are verified with: a PEM public key or JWKS document, or an HMAC secret. */
struct rg_key_conf {
	char *file;        /* PEM (public key or certificate) or JWKS, by its content */
	char *secret_file; /* HMAC secret: the file's bytes, without a final newline */
	char *kid;         /* NULL: matches tokens without a kid, and any kid */
	char *alg;         /* NULL: the key's own (jwt.h) */
};

struct rg_auth;

struct rg_config {
	char *path;
	struct rg_listen_conf *listen;
	size_t nlisten;
	char *web_root;
	/* web origins besides the gateway's own that may use it from a browser (origin.h) */
	char **allowed_origins;
	size_t nallowed_origins;
	uint32_t sse_keepalive_seconds;
	uint32_t sse_retry_ms;
	uint32_t ws_ping_seconds;
	uint32_t ws_ping_timeout_seconds;
	uint32_t max_message_bytes;
	uint32_t max_batch_bytes;    /* a batch publish's body (POST /messages) */
	uint32_t max_batch_messages; /* the messages of one batch publish */
	uint32_t max_rooms;
	uint32_t max_rooms_per_connection;
	uint32_t max_json_depth;  /* nesting of arrays and objects in a message's data */
	uint32_t max_connections; /* 0: the open-files limit minus a margin */
	uint32_t max_connections_per_address; /* 0: no limit */
	uint32_t publish_rate_per_connection; /* messages a second; 0: no limit */
	uint32_t publish_rate_per_address;    /* messages a second; 0: no limit */
	uint32_t room_rate_per_connection;    /* new pattern rooms a minute; 0: no limit */
	uint32_t room_rate_per_address;       /* new pattern rooms a minute; 0: no limit */
	/* What one connection may be owed (answers and room messages it has not been able
	 * to write) before it is judged slow; also how far past `history` a room keeps a
	 * message for a subscriber that still needs it. */
	uint32_t max_pending_bytes;
	uint32_t memory_mb;         /* the memory budget (budget.h); 0: none */
	uint32_t handshake_seconds; /* for the TLS handshake, then for the request headers */
	uint32_t max_header_bytes;  /* a request's line and headers, together */
	uint32_t drain_ms;          /* on SIGTERM: how long open connections get to close */
	uint32_t coalesce_us;       /* wakes within this window share one write turn */
	unsigned log_format;        /* enum rg_log_format */
	unsigned log_level;         /* enum rg_log_level */
	unsigned log_lws_level;     /* libwebsockets' lines: 0 none, 1 errors, 2 and warnings,
				       3 and notices */
	int log_access;             /* an access line per request and per stream */
	struct rg_room_conf *rooms;
	size_t nrooms;
	/* auth: on when it names keys or an API key file (docs/CONFIG.md) */
	struct rg_key_conf *auth_keys;
	size_t nauth_keys;
	char *auth_issuer, *auth_audience, *auth_api_keys_file;
	uint32_t auth_leeway_seconds, auth_max_token_bytes, auth_grace_seconds;
	/* cluster.redis: NULL address, one process on its own (engine.h) */
	char *redis_address, *redis_password_file, *redis_prefix;
	uint32_t redis_node_timeout_seconds; /* silent this long: its presence members leave */
	/* cluster.redis.tls: NULL CA file, plain TCP (engine/tls.h) */
	char *redis_tls_ca, *redis_tls_cert, *redis_tls_key, *redis_tls_name;
	/* the keys and API key hashes loaded from those files; NULL when auth is off */
	struct rg_auth *auth;
};

typedef void (*rg_config_err_fn)(void *ctx, const char *line);

/* Load and validate the file at path. */
struct rg_config *rg_config_load(const char *path, rg_config_err_fn err, void *ctx);
/* The same, from text in memory; name is used in the error lines. */
struct rg_config *rg_config_parse(const char *name, const char *text, size_t len,
				  rg_config_err_fn err, void *ctx);
void rg_config_free(struct rg_config *cfg);

/* The key table of docs/CONFIG.md (Markdown, one row per key, from the table the parser
 * walks), malloc'd; NULL when out of memory. */
char *rg_config_doc(void);

/* The config's names of a policy and a binding ("claim", "members"). */
const char *rg_policy_name(enum rg_policy p);
const char *rg_bind_name(enum rg_bind b);

/* 1 if s is a valid room name (also used for names from clients). */
int rg_room_name_valid(const char *s, size_t len);

#endif
