#include "certs.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <string.h>

static int rg__fail(char *err, size_t errlen, const char *what, const char *file)
{
	/* OpenSSL's reasons ("PEM routines::no start line") say less than what */
	ERR_clear_error();
	snprintf(err, errlen, "\"%s\": %s", file, what);
	return -1;
}

/* The subject's CN, or its whole name, for messages. */
static void rg__name(X509 *x, char *out, size_t cap)
{
	X509_NAME *n = X509_get_subject_name(x);

	if (X509_NAME_get_text_by_NID(n, NID_commonName, out, (int)cap) <= 0)
		X509_NAME_oneline(n, out, (int)cap);
}

/* What a client verifying the chain would find (the file's certificates, then this
 * machine's trusted roots), for a warning; "" when it is complete. */
static void rg__chain(X509 *leaf, STACK_OF(X509) * chain, char *warn, size_t warnlen)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	char name[256];

	if (!store || !ctx || !X509_STORE_set_default_paths(store) ||
	    !X509_STORE_CTX_init(ctx, store, leaf, chain))
		goto out;
	if (X509_verify_cert(ctx) == 1)
		goto out;
	int e = X509_STORE_CTX_get_error(ctx);
	X509 *at = X509_STORE_CTX_get_current_cert(ctx);
	rg__name(at ? at : leaf, name, sizeof(name));
	if (e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
	    e == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN)
		snprintf(warn, warnlen,
			 "self-signed (\"%s\"): clients must be told to trust it, or skip "
			 "verification",
			 name);
	else if ((e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		  e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT) &&
		 X509_STORE_CTX_get_error_depth(ctx) > 0)
		; /* the file has the intermediates; a root this machine lacks (a slim image
		   * has no ca-certificates) is the client's to have */
	else if (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		 e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
		snprintf(warn, warnlen,
			 "the chain is incomplete: the issuer of \"%s\" is neither in the file nor "
			 "a root this machine trusts (put the intermediate certificates after the "
			 "certificate: the full chain)",
			 name);
	else if (e == X509_V_ERR_CERT_HAS_EXPIRED)
		snprintf(warn, warnlen, "\"%s\" has expired", name);
	else if (e == X509_V_ERR_CERT_NOT_YET_VALID)
		snprintf(warn, warnlen, "\"%s\" is not valid yet", name);
	else
		snprintf(warn, warnlen, "a client verifying \"%s\" would refuse it: %s", name,
			 X509_verify_cert_error_string(e));
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
}

int rg_certs_load(const char *cert, const char *key, X509 **leaf_out, STACK_OF(X509) * *chain_out,
		  EVP_PKEY **pkey_out, char *err, size_t errlen)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	X509 *leaf = NULL, *x;
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;

	ERR_clear_error();
	if (!chain || !(bio = BIO_new_file(cert, "r"))) {
		rg__fail(err, errlen, "cannot read it", cert);
		goto fail;
	}
	if (!(leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		rg__fail(err, errlen, "no PEM certificate in it", cert);
		goto fail;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
		if (!sk_X509_push(chain, x)) {
			X509_free(x);
			rg__fail(err, errlen, "out of memory", cert);
			goto fail;
		}
	ERR_clear_error(); /* the end of the file */
	BIO_free(bio);
	if (!(bio = BIO_new_file(key, "r"))) {
		rg__fail(err, errlen, "cannot read it", key);
		goto fail;
	}
	/* lws asks for no passphrase: an encrypted key cannot be loaded at start */
	if (!(pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)""))) {
		ERR_clear_error(); /* OpenSSL's reason for an encrypted key names PKCS12 */
		snprintf(err, errlen,
			 "\"%s\": no PEM private key in it, or one under a passphrase (which "
			 "cannot be given at start)",
			 key);
		goto fail;
	}
	if (X509_check_private_key(leaf, pkey) != 1) {
		char name[256];
		rg__name(leaf, name, sizeof(name));
		ERR_clear_error();
		snprintf(err, errlen, "\"%s\" is not the key of the certificate \"%s\" (\"%s\")",
			 key, name, cert);
		goto fail;
	}
	BIO_free(bio);
	*leaf_out = leaf;
	*chain_out = chain;
	*pkey_out = pkey;
	return 0;
fail:
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	return -1;
}

int rg_certs_check(const char *cert, const char *key, char *err, size_t errlen, char *warn,
		   size_t warnlen)
{
	STACK_OF(X509) * chain;
	X509 *leaf;
	EVP_PKEY *pkey;
	char name[256];

	warn[0] = '\0';
	if (rg_certs_load(cert, key, &leaf, &chain, &pkey, err, errlen))
		return -1;
	/* a certificate out of its dates is the first thing a client will say */
	rg__name(leaf, name, sizeof(name));
	if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0)
		snprintf(warn, warnlen, "\"%s\" has expired", name);
	else if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0)
		snprintf(warn, warnlen, "\"%s\" is not valid yet", name);
	else
		rg__chain(leaf, chain, warn, warnlen);
	EVP_PKEY_free(pkey);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	return 0;
}
