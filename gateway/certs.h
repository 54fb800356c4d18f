/*
 * A listener's certificate and key, checked as the TLS library loads them at start, so
 * that `--check-config` fails exactly when start would: PEM that parses, a key that is
 * not encrypted and matches the certificate. What start accepts but clients may refuse
 * is a warning: a certificate that has expired or is not yet valid, a chain that does
 * not reach a root this machine trusts (an intermediate missing from the file).
 */
#ifndef RG_CERTS_H
#define RG_CERTS_H

#include <openssl/x509.h>
#include <stddef.h>

/* 0, or -1 with what is wrong in err. warn is "" or what a client may object to. */
int rg_certs_check(const char *cert, const char *key, char *err, size_t errlen, char *warn,
		   size_t warnlen);

/* Reads the certificate (with the chain after it in the file) and the key, and checks
 * that they match, as rg_certs_check does. 0 and the three (the caller frees them:
 * X509_free, sk_X509_pop_free, EVP_PKEY_free), or -1 with err. */
int rg_certs_load(const char *cert, const char *key, X509 **leaf, STACK_OF(X509) * *chain,
		  EVP_PKEY **pkey, char *err, size_t errlen);

#endif
