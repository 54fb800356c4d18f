#include "sni.h"

#include "../gateway/certs.h"

#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rg_sni {
	size_t n;
	struct rg__sni_pair {
		X509 *leaf;
		STACK_OF(X509) * chain;
		EVP_PKEY *pkey;
	} pairs[RG_SNI_MAX];
};

void rg_sni_free(struct rg_sni *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++) {
		X509_free(set->pairs[i].leaf);
		sk_X509_pop_free(set->pairs[i].chain, X509_free);
		EVP_PKEY_free(set->pairs[i].pkey);
	}
	free(set);
}

int rg_sni_load(const struct rg_listen_conf *l, struct rg_sni **out, char *err, size_t errlen)
{
	struct rg_sni *set;

	*out = NULL;
	if (!l->nsni)
		return 0;
	if (!(set = calloc(1, sizeof(*set)))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < l->nsni && i < RG_SNI_MAX; i++) {
		struct rg__sni_pair *p = &set->pairs[i];
		if (rg_certs_load(l->sni[i].cert, l->sni[i].key, &p->leaf, &p->chain, &p->pkey, err,
				  errlen)) {
			rg_sni_free(set);
			return -1;
		}
		set->n++;
	}
	*out = set;
	return 0;
}

/* OpenSSL's certificate callback, once the client's hello (with its SNI) is read: the
 * first pair whose certificate holds the name asked for (X509_check_host: subjectAltName
 * DNS names, wildcards as browsers take them) goes on the connection. 1: go on. */
static int rg__choose(SSL *ssl, void *arg)
{
	const struct rg_sni *set = *(struct rg_sni *const *)arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	if (!set || !name)
		return 1;
	for (size_t i = 0; i < set->n; i++) {
		const struct rg__sni_pair *p = &set->pairs[i];
		if (X509_check_host(p->leaf, name, 0, 0, NULL) != 1)
			continue;
		/* the connection takes its own references: a reload may free the set */
		return SSL_use_cert_and_key(ssl, p->leaf, p->pkey, p->chain, 1) == 1 ? 1 : 0;
	}
	return 1;
}

void rg_sni_attach(SSL_CTX *ctx, struct rg_sni *const *slot)
{
	SSL_CTX_set_cert_cb(ctx, rg__choose, (void *)slot);
}
