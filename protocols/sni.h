/*
 * More than one certificate on a TLS listener, chosen by the name the client asks for
 * (SNI; listen[].tls.sni). OpenSSL's certificate callback puts the matching pair on
 * the connection itself, so the listener's SSL_CTX, with the ALPN and everything else
 * lws set on it, stays as it is; a client that asks for no name, or for none of them,
 * gets the listener's own certificate. A reload swaps a listener's set; handshakes
 * made keep what they got.
 *
 * Ownership: a set owns its certificates and keys (rg_sni_free); the callback reads
 * the set through the slot given to rg_sni_attach, which must outlive the SSL_CTX.
 */
#ifndef RG_SNI_H
#define RG_SNI_H

#include "../gateway/config.h"

#include <openssl/ssl.h>

struct rg_sni;

/* Reads and checks l's SNI certificates: 0 and *out (NULL when it has none), or -1
 * with what is wrong in err. */
int rg_sni_load(const struct rg_listen_conf *l, struct rg_sni **out, char *err, size_t errlen);
void rg_sni_free(struct rg_sni *set);

/* Makes ctx choose among *slot's certificates at each handshake. */
void rg_sni_attach(SSL_CTX *ctx, struct rg_sni *const *slot);

#endif
