#include "origin.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The authority of an origin (after "scheme://"), and its scheme's default port. */
static int rg__split(const char *o, size_t len, const char **auth, size_t *alen,
		     const char **defport)
{
	if (len > 8 && !strncasecmp(o, "https://", 8)) {
		*auth = o + 8, *alen = len - 8, *defport = "443";
		return 0;
	}
	if (len > 7 && !strncasecmp(o, "http://", 7)) {
		*auth = o + 7, *alen = len - 7, *defport = "80";
		return 0;
	}
	return -1;
}

/* The host part and the port of an authority ("h", "h:p", "[v6]", "[v6]:p"); *port is NULL
 * when there is no colon, so "h:" (an empty port) can be told from "h". */
static void rg__host_port(const char *a, size_t len, size_t *hlen, const char **port, size_t *plen)
{
	const char *colon = NULL;

	if (len && a[0] == '[') {
		const char *end = memchr(a, ']', len);
		if (end && (size_t)(end - a) + 1 < len && end[1] == ':')
			colon = end + 1;
	} else {
		colon = memchr(a, ':', len);
	}
	*hlen = colon ? (size_t)(colon - a) : len;
	*port = colon ? colon + 1 : NULL;
	*plen = colon ? len - *hlen - 1 : 0;
}

/* Same host and port, a missing port being the scheme's default. */
static int rg__same_authority(const char *a, size_t alen, const char *b, size_t blen,
			      const char *defport)
{
	size_t ah, bh, ap, bp;
	const char *apt, *bpt;

	rg__host_port(a, alen, &ah, &apt, &ap);
	rg__host_port(b, blen, &bh, &bpt, &bp);
	if (!ap)
		apt = defport, ap = strlen(defport);
	if (!bp)
		bpt = defport, bp = strlen(defport);
	return ah == bh && !strncasecmp(a, b, ah) && ap == bp && !memcmp(apt, bpt, ap);
}

int rg_origin_allowed(const struct rg_config *cfg, const char *origin, size_t olen,
		      const char *host, size_t hlen)
{
	const char *auth, *defport;
	size_t alen;

	if (!rg__split(origin, olen, &auth, &alen, &defport) && host && hlen &&
	    rg__same_authority(auth, alen, host, hlen, defport))
		return 1;
	for (size_t i = 0; i < cfg->nallowed_origins; i++) {
		const char *a = cfg->allowed_origins[i];
		size_t n = strlen(a);
		if (!strcmp(a, "*"))
			return 1;
		if (n == olen && !strncasecmp(a, origin, n))
			return 1;
		/* a listed origin with its default port written out matches without */
		const char *la, *ldef;
		size_t llen;
		if (!rg__split(a, n, &la, &llen, &ldef) &&
		    !rg__split(origin, olen, &auth, &alen, &defport) && !strcmp(ldef, defport) &&
		    rg__same_authority(la, llen, auth, alen, defport))
			return 1;
	}
	return 0;
}

int rg_origin_valid(const char *s)
{
	const char *auth, *defport, *port;
	size_t alen, hlen, plen, n = strlen(s);

	if (!strcmp(s, "*"))
		return 1;
	if (rg__split(s, n, &auth, &alen, &defport) || !alen)
		return 0;
	rg__host_port(auth, alen, &hlen, &port, &plen);
	if (!hlen || (port && !plen) || plen > 5)
		return 0;
	for (size_t i = 0; i < plen; i++)
		if (!isdigit((unsigned char)port[i]))
			return 0;
	if (plen && (atoi(port) < 1 || atoi(port) > 65535))
		return 0;
	if (auth[0] == '[') {
		if (auth[hlen - 1] != ']' || hlen < 3)
			return 0;
		for (size_t i = 1; i + 1 < hlen; i++)
			if (!isxdigit((unsigned char)auth[i]) && auth[i] != ':' && auth[i] != '.')
				return 0;
		return 1;
	}
	for (size_t i = 0; i < hlen; i++) {
		unsigned char c = (unsigned char)auth[i];
		if (!isalnum(c) && c != '-' && c != '.')
			return 0;
	}
	return 1;
}
