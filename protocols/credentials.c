#include "credentials.h"

#include "../gateway/log.h"

#include <string.h>
#include <strings.h>

/* The longest credential read: past auth.max_token_bytes (at most 65536), a token is
 * refused unread by the verifier; one byte more tells it so. */
#define RG__CRED_MAX (65536 + 1)

/* The token= argument into buf: its length, 0 when there is none, -1 when it does not
 * fit. */
static int rg__query_token(struct lws *wsi, char *buf, size_t cap)
{
	for (int i = 0; lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0; i++) {
		int len = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
		if (len < 6)
			continue;
		int n = lws_hdr_copy_fragment(wsi, buf, (int)cap, WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n < 0)
			return -1;
		if (strncmp(buf, "token=", 6))
			continue;
		memmove(buf, buf + 6, (size_t)n - 5);
		return n - 6;
	}
	return 0;
}

static int rg__refuse(struct rg_srv *srv, struct lws *wsi, const char *why, const char **out)
{
	char peer[64] = "?";

	srv->reg.metrics.auth_failures[rg_auth_fail_of(why)]++;
	lws_get_peer_simple(lws_get_network_wsi(wsi), peer, sizeof(peer));
	rg_log_conn(RG_LOG_NOTICE, rg_conn_id(wsi), "auth: refused credentials from %s: %s", peer,
		    why);
	*out = why;
	return -1;
}

int rg_credentials(struct rg_srv *srv, struct lws *wsi, int query, struct rg_identity *id,
		   const char **why)
{
	static char buf[RG__CRED_MAX + 8];
	const struct rg_auth *auth = srv->cfg->auth;
	const char *cred = buf;
	int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);

	memset(id, 0, sizeof(*id));
	if (n > 0) {
		if (n > RG__CRED_MAX ||
		    lws_hdr_copy(wsi, buf, (int)sizeof(buf), WSI_TOKEN_HTTP_AUTHORIZATION) != n)
			return rg__refuse(srv, wsi, "Authorization: too long", why);
		if (n < 7 || strncasecmp(buf, "Bearer ", 7))
			return rg__refuse(srv, wsi, "Authorization: expected Bearer TOKEN", why);
		cred += 7;
		n -= 7;
		while (n && *cred == ' ')
			cred++, n--;
	} else if (query && (n = rg__query_token(wsi, buf, sizeof(buf))) < 0) {
		return rg__refuse(srv, wsi, "token: too long", why);
	}
	if (n <= 0)
		return 0;
	if (!auth)
		return rg__refuse(srv, wsi, "this gateway takes no credentials (no auth section)",
				  why);
	if (auth->napi_keys && rg_auth_api_key(auth, cred, (size_t)n, id))
		return 1;
	if (!auth->keys.n || !memchr(cred, '.', (size_t)n))
		return rg__refuse(srv, wsi, "neither a token nor an API key of this gateway", why);
	if (rg_auth_token(auth, cred, (size_t)n, rg_unix_s(), id, why))
		return rg__refuse(srv, wsi, *why, why);
	return 1;
}

int rg_credentials_caller(struct rg_srv *srv, struct lws *wsi, struct rg_identity *id,
			  const char **why)
{
	int c = rg_credentials(srv, wsi, 0, id, why);

	if (c < 0)
		return -1;
	if (!c && !srv->cfg->auth && rg_credentials_loopback(wsi))
		id->authenticated = id->server = 1;
	return 0;
}

int rg_credentials_loopback(struct lws *wsi)
{
	struct rg_conn *c = rg_conn_of(wsi);
	char peer[64];

	if (c) /* known since its accept: no getpeername() per request */
		return c->loopback;
	if (!lws_get_peer_simple(lws_get_network_wsi(wsi), peer, sizeof(peer)))
		return 0;
	return !strncmp(peer, "127.", 4) || !strcmp(peer, "::1") ||
	       !strncmp(peer, "::ffff:127.", 11);
}
