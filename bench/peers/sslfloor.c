/*
 * sslfloor: what OpenSSL alone holds per idle server connection, the floor under any
 * TLS server built on it (bench/run, scenario tls-floor). Not a product.
 *
 * Makes N TLS connections over socketpairs inside one process, with the server side
 * set up as roomgate's is (SSL_MODE_RELEASE_BUFFERS, default TLS version and
 * tickets), completes each handshake, lets the client read its session tickets, frees
 * the clients, and reports the heap still in use per server SSL (glibc mallinfo2,
 * before vs after). Prints one JSON line on stdout.
 *
 * usage: sslfloor CERT KEY [N]   (N defaults to 2000)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static size_t heap_in_use(void)
{
	struct mallinfo2 m = mallinfo2();
	return m.uordblks + m.hblkhd;
}

static int handshake(SSL *s, SSL *c)
{
	char buf[256];

	for (int k = 0; k < 64; k++) {
		int a = SSL_do_handshake(c), b = SSL_do_handshake(s);
		if (a == 1 && b == 1) {
			/* The client takes the server's session tickets, as a real one does. */
			SSL_read(c, buf, sizeof(buf));
			SSL_read(s, buf, sizeof(buf));
			return 0;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: sslfloor CERT KEY [N]\n");
		return 2;
	}
	int n = argc > 3 ? atoi(argv[3]) : 2000;
	SSL_CTX *sc = SSL_CTX_new(TLS_server_method()), *cc = SSL_CTX_new(TLS_client_method());
	if (!sc || !cc || n <= 0 || SSL_CTX_use_certificate_chain_file(sc, argv[1]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sc, argv[2], SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_mode(sc, SSL_MODE_RELEASE_BUFFERS);

	SSL **srv = calloc((size_t)n, sizeof(*srv)), **cli = calloc((size_t)n, sizeof(*cli));
	int *fds = calloc((size_t)n * 2, sizeof(*fds));
	if (!srv || !cli || !fds)
		return 1;
	size_t before = heap_in_use();
	for (int i = 0; i < n; i++) {
		int *fd = fds + 2 * i;
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, fd)) {
			perror("socketpair");
			return 1;
		}
		fcntl(fd[0], F_SETFL, O_NONBLOCK);
		fcntl(fd[1], F_SETFL, O_NONBLOCK);
		srv[i] = SSL_new(sc);
		cli[i] = SSL_new(cc);
		if (!srv[i] || !cli[i] || !SSL_set_fd(srv[i], fd[0]) || !SSL_set_fd(cli[i], fd[1]))
			return 1;
		SSL_set_accept_state(srv[i]);
		SSL_set_connect_state(cli[i]);
		if (handshake(srv[i], cli[i])) {
			fprintf(stderr, "sslfloor: handshake %d did not complete\n", i);
			ERR_print_errors_fp(stderr);
			return 1;
		}
	}
	for (int i = 0; i < n; i++) {
		SSL_free(cli[i]);
		close(fds[2 * i + 1]);
	}
	size_t after = heap_in_use();
	printf("{\"event\":\"tls_floor\",\"conns\":%d,\"protocol\":\"%s\",\"cipher\":\"%s\","
	       "\"openssl\":\"%s\",\"bytes_per_conn\":%zu}\n",
	       n, SSL_get_version(srv[0]), SSL_get_cipher_name(srv[0]),
	       OpenSSL_version(OPENSSL_VERSION), (after - before) / (size_t)n);
	for (int i = 0; i < n; i++) {
		SSL_free(srv[i]);
		close(fds[2 * i]);
	}
	free(srv);
	free(cli);
	free(fds);
	SSL_CTX_free(sc);
	SSL_CTX_free(cc);
	return 0;
}
