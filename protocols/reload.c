#include "reload.h"

#include "../gateway/certs.h"
#include "../gateway/log.h"

#include <stdlib.h>
#include <string.h>

/* The config's lines, as at start: its warnings (a self-signed certificate) too. */
static void rg__config_line(void *ctx, const char *line)
{
	(void)ctx;
	rg_log(strstr(line, ": warning: ") ? RG_LOG_WARN : RG_LOG_ERR, "%s", line);
}

static int rg__same(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* What in cfg needs a restart to change from the running server's, or NULL. */
static const char *rg__needs_restart(const struct rg_config *boot, const struct rg_config *cfg,
				     const struct rg_srv *srv)
{
	if (cfg->nlisten != boot->nlisten)
		return "listen (the number of listeners)";
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct rg_listen_conf *a = &boot->listen[i], *b = &cfg->listen[i];
		if (a->port != b->port || !rg__same(a->host, b->host))
			return "listen (a port or address)";
		if (a->reuse_port != b->reuse_port)
			return "listen[].reuse_port";
		if (!a->cert != !b->cert)
			return "listen (TLS on or off)";
	}
	if (!rg__same(boot->web_root, cfg->web_root))
		return "http.web_root";
	if (!rg__same(boot->redis_address, cfg->redis_address) ||
	    !rg__same(boot->redis_password_file, cfg->redis_password_file) ||
	    !rg__same(boot->redis_prefix, cfg->redis_prefix) ||
	    boot->redis_node_timeout_seconds != cfg->redis_node_timeout_seconds ||
	    !rg__same(boot->redis_tls_ca, cfg->redis_tls_ca) ||
	    !rg__same(boot->redis_tls_cert, cfg->redis_tls_cert) ||
	    !rg__same(boot->redis_tls_key, cfg->redis_tls_key) ||
	    !rg__same(boot->redis_tls_name, cfg->redis_tls_name))
		return "cluster.redis";
	if (boot->handshake_seconds != cfg->handshake_seconds)
		return "limits.handshake_seconds";
	if (boot->max_header_bytes != cfg->max_header_bytes)
		return "limits.max_header_bytes";
	if (rg_srv_scratch_len(cfg) > srv->scratch_len)
		return "limits.max_message_bytes or limits.max_rooms_per_connection (past what "
		       "the write buffer made at start holds)";
	return NULL;
}

int rg_reload_start(struct rg_reload *r)
{
	char err[512];

	for (size_t i = 0; i < r->boot->nlisten; i++) {
		if (!r->tls[i])
			continue;
		if (rg_sni_load(&r->boot->listen[i], &r->sni[i], err, sizeof(err))) {
			rg_err("listen[%zu].tls.sni: %s", i, err);
			return -1;
		}
		rg_sni_attach(r->tls[i], &r->sni[i]);
	}
	return 0;
}

/* One listener's new pair, read and checked before anything changes. */
struct rg__pair {
	X509 *leaf;
	STACK_OF(X509) * chain;
	EVP_PKEY *pkey;
};

static void rg__pair_free(struct rg__pair *p)
{
	EVP_PKEY_free(p->pkey);
	X509_free(p->leaf);
	sk_X509_pop_free(p->chain, X509_free);
	memset(p, 0, sizeof(*p));
}

/* Reads every TLS listener's certificate and key, and SNI certificates, from cfg: 0, or
 * -1 (logged). */
static int rg__read_pairs(const struct rg_reload *r, const struct rg_config *cfg,
			  struct rg__pair *pairs, struct rg_sni **sni)
{
	char err[512];

	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct rg_listen_conf *l = &cfg->listen[i];
		if (!l->cert)
			continue;
		if (!r->tls[i]) {
			rg_err("reload: listen[%zu]: its TLS context is unknown: restart to change "
			       "its certificate",
			       i);
			return -1;
		}
		if (rg_certs_load(l->cert, l->key, &pairs[i].leaf, &pairs[i].chain, &pairs[i].pkey,
				  err, sizeof(err))) {
			rg_err("reload: %s: listen[%zu].tls: %s", cfg->path, i, err);
			return -1;
		}
		if (rg_sni_load(l, &sni[i], err, sizeof(err))) {
			rg_err("reload: %s: listen[%zu].tls.sni: %s", cfg->path, i, err);
			return -1;
		}
		/* OpenSSL keeps a certificate per key type: one of another type would sit
		 * beside the old one, which clients could still be offered */
		X509 *old = SSL_CTX_get0_certificate(r->tls[i]);
		if (old &&
		    EVP_PKEY_base_id(X509_get0_pubkey(old)) != EVP_PKEY_base_id(pairs[i].pkey)) {
			rg_err("reload: %s: listen[%zu].tls: \"%s\" is another type of key than "
			       "the "
			       "running one: restart to change it",
			       cfg->path, i, l->key);
			return -1;
		}
	}
	return 0;
}

/* Makes the pair the one ctx hands out: new handshakes use it, connections made keep
 * theirs. Checked already, so only a lack of memory fails here. 0 or -1. */
static int rg__install(SSL_CTX *ctx, const struct rg__pair *p)
{
	if (SSL_CTX_use_certificate(ctx, p->leaf) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, p->pkey) != 1 || !SSL_CTX_clear_chain_certs(ctx))
		return -1;
	for (int i = 0; i < sk_X509_num(p->chain); i++)
		if (!SSL_CTX_add1_chain_cert(ctx, sk_X509_value(p->chain, i)))
			return -1;
	return 0;
}

void rg_reload_retry(lws_retry_bo_t *retry, const struct rg_config *cfg)
{
	retry->secs_since_valid_ping = (uint16_t)cfg->ws_ping_seconds;
	retry->secs_since_valid_hangup =
		(uint16_t)(cfg->ws_ping_seconds + cfg->ws_ping_timeout_seconds);
}

int rg_reload(struct rg_reload *r, struct rg_srv *srv)
{
	const char *path = r->boot->path, *why;
	struct rg__pair pairs[RG_LISTEN_MAX];
	struct rg_sni *sni[RG_LISTEN_MAX] = {0};
	unsigned closed, added, certs = 0;
	int rc = -1;

	memset(pairs, 0, sizeof(pairs));
	rg_notice("reload: reading %s", path);
	struct rg_config *cfg = rg_config_load(path, rg__config_line, NULL);
	if (!cfg) {
		rg_err("reload: %s: invalid configuration: the running one stays in force", path);
		return -1;
	}
	if ((why = rg__needs_restart(r->boot, cfg, srv))) {
		rg_err("reload: %s: %s changed, which needs a restart: the running configuration "
		       "stays in force",
		       path, why);
		goto out;
	}
	if (rg__read_pairs(r, cfg, pairs, sni)) {
		rg_err("reload: %s: the running configuration stays in force", path);
		goto out;
	}
	for (size_t i = 0; i < cfg->nlisten; i++) {
		if (!pairs[i].leaf)
			continue;
		if (rg__install(r->tls[i], &pairs[i]))
			rg_err("reload: listen[%zu]: out of memory putting \"%s\" in use: TLS "
			       "handshakes on it may fail until the next reload",
			       i, cfg->listen[i].cert);
		else
			certs++;
		/* handshakes under way took their own references (sni.h) */
		rg_sni_free(r->sni[i]);
		r->sni[i] = sni[i];
		sni[i] = NULL;
		certs += (unsigned)cfg->listen[i].nsni;
	}
	srv->cfg = cfg;
	if (rg_registry_reconfigure(&srv->reg, cfg, &closed, &added))
		rg_err("reload: out of memory: some rooms of %s were not made", path);
	rg_srv_limits_set(srv);
	rg_srv_log_set(cfg);
	rg_reload_retry(r->retry, cfg);
	rg_config_free(r->current); /* nothing points into it any more */
	r->current = cfg;
	cfg = NULL;
	rg_notice("reload: %s in force: %u room(s) closed, %u made; %u certificate(s) reloaded",
		  path, closed, added, certs);
	rc = 0;
out:
	for (size_t i = 0; i < RG_LISTEN_MAX; i++) {
		rg__pair_free(&pairs[i]);
		rg_sni_free(sni[i]);
	}
	rg_config_free(cfg);
	return rc;
}

void rg_reload_cleanup(struct rg_reload *r)
{
	for (size_t i = 0; i < RG_LISTEN_MAX; i++) {
		rg_sni_free(r->sni[i]);
		r->sni[i] = NULL;
	}
	rg_config_free(r->current);
	r->current = NULL;
}
