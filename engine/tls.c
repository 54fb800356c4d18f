/*
 * The TLS relay to Redis: see tls.h.
 */
#include "tls.h"

#include "../gateway/config.h"
#include "../gateway/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <utlist.h>

#define RG__BUF 16384

struct rg__pipe;

struct rg_tls_relay {
	struct ev_loop *ev;
	SSL_CTX *ctx;
	char host[256], name[256];
	int port;
	char dir[80], path[96];
	int lfd;
	ev_io accept_w;
	ev_timer accept_again; /* out of descriptors: accepting waits a second */
	struct rg__pipe *pipes;
	char said[256]; /* the reason last logged: each new one is logged once */
};

/* One connection a hiredis link made, carried to Redis: hiredis's side in plain
 * (cfd), Redis's over TLS (rfd), a buffer each way. */
struct rg__pipe {
	struct rg_tls_relay *t;
	int cfd, rfd;
	SSL *ssl;
	int connected, handshaken;
	ev_io cw, rw;
	size_t c2r_len, c2r_off, r2c_len, r2c_off;
	struct rg__pipe *prev, *next;
	unsigned char c2r[RG__BUF], r2c[RG__BUF];
};

/* Logs what went wrong, with OpenSSL's reason when it has one, unless it is what was
 * logged last. */
static void rg__say(struct rg_tls_relay *t, const char *what, const char *detail)
{
	char why[256];
	unsigned long e = ERR_peek_last_error();

	if (detail)
		snprintf(why, sizeof(why), "%s: %s", what, detail);
	else if (e)
		snprintf(why, sizeof(why), "%s: %s", what, ERR_reason_error_string(e));
	else
		snprintf(why, sizeof(why), "%s", what);
	ERR_clear_error();
	if (!strcmp(why, t->said))
		return;
	snprintf(t->said, sizeof(t->said), "%s", why);
	rg_warn("redis %s:%d over TLS: %s", t->host, t->port, why);
}

static void rg__close(struct rg__pipe *p)
{
	struct rg_tls_relay *t = p->t;

	ev_io_stop(t->ev, &p->cw);
	ev_io_stop(t->ev, &p->rw);
	if (p->ssl)
		SSL_free(p->ssl);
	close(p->cfd);
	if (p->rfd >= 0)
		close(p->rfd);
	DL_DELETE(t->pipes, p);
	ERR_clear_error();
	free(p);
}

static void rg__watch(struct rg_tls_relay *t, ev_io *w, int fd, int events)
{
	if (ev_is_active(w) && (w->events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(t->ev, w);
	if (events) {
		ev_io_set(w, fd, events);
		ev_io_start(t->ev, w);
	}
}

/* What an SSL call that returned rc waits for (EV_READ or EV_WRITE on rfd), or -1:
 * the connection is over (logged when it is not a plain close). */
static int rg__wants(struct rg__pipe *p, int rc, const char *what)
{
	int e = SSL_get_error(p->ssl, rc);

	if (e == SSL_ERROR_WANT_READ)
		return EV_READ;
	if (e == SSL_ERROR_WANT_WRITE)
		return EV_WRITE;
	if (e != SSL_ERROR_ZERO_RETURN && !(e == SSL_ERROR_SYSCALL && !ERR_peek_error()))
		rg__say(p->t, what, NULL);
	return -1;
}

/* Moves what can move, both ways, then waits for what is missing. May free p. */
static void rg__pump(struct rg__pipe *p)
{
	struct rg_tls_relay *t = p->t;
	int cev, rev, w;

	/* SSL_get_error reads the thread's error queue: what other OpenSSL users of this
	 * thread left there (a token that failed to verify) must not pass for ours */
	ERR_clear_error();
	if (!p->handshaken) {
		int rc = SSL_connect(p->ssl);
		if (rc != 1) {
			long v = SSL_get_verify_result(p->ssl);
			if (v != X509_V_OK) {
				rg__say(t, "the TLS handshake failed",
					X509_verify_cert_error_string(v));
				rg__close(p);
				return;
			}
			if ((w = rg__wants(p, rc, "the TLS handshake failed")) < 0) {
				rg__close(p);
				return;
			}
			/* hiredis's first commands wait in its socket until then */
			rg__watch(t, &p->rw, p->rfd, w);
			return;
		}
		p->handshaken = 1;
	}
	for (;;) {
		int moved = 0;
		cev = rev = 0;
		/* Redis to hiredis */
		if (p->r2c_off < p->r2c_len) {
			ssize_t n = send(p->cfd, p->r2c + p->r2c_off, p->r2c_len - p->r2c_off,
					 MSG_NOSIGNAL);
			if (n > 0) {
				p->r2c_off += (size_t)n;
				moved = 1;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				rg__close(p); /* hiredis dropped its link */
				return;
			}
		}
		if (p->r2c_off == p->r2c_len) {
			ERR_clear_error();
			int n = SSL_read(p->ssl, p->r2c, sizeof(p->r2c));
			p->r2c_off = 0;
			p->r2c_len = n > 0 ? (size_t)n : 0;
			if (n > 0) {
				/* Redis answered (TLS 1.3 refuses a client certificate only
				 * after the handshake): a later failure is news again */
				t->said[0] = '\0';
				moved = 1;
			} else if ((w = rg__wants(p, n, "reading from Redis")) < 0) {
				rg__close(p);
				return;
			} else {
				rev |= w;
			}
		} else {
			cev |= EV_WRITE;
		}
		/* hiredis to Redis */
		if (p->c2r_off < p->c2r_len) {
			ERR_clear_error();
			int n = SSL_write(p->ssl, p->c2r + p->c2r_off,
					  (int)(p->c2r_len - p->c2r_off));
			if (n > 0) {
				p->c2r_off += (size_t)n;
				moved = 1;
			} else if ((w = rg__wants(p, n, "writing to Redis")) < 0) {
				rg__close(p);
				return;
			} else {
				rev |= w;
			}
		}
		if (p->c2r_off == p->c2r_len) {
			ssize_t n = recv(p->cfd, p->c2r, sizeof(p->c2r), 0);
			p->c2r_off = 0;
			p->c2r_len = n > 0 ? (size_t)n : 0;
			if (n > 0) {
				moved = 1;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				rg__close(p); /* hiredis closed its link */
				return;
			} else {
				cev |= EV_READ;
			}
		}
		if (!moved)
			break;
	}
	rg__watch(t, &p->cw, p->cfd, cev);
	rg__watch(t, &p->rw, p->rfd, rev);
}

static void rg__on_client(struct ev_loop *ev, ev_io *w, int revents)
{
	(void)ev;
	(void)revents;
	rg__pump(w->data);
}

static void rg__on_redis(struct ev_loop *ev, ev_io *w, int revents)
{
	struct rg__pipe *p = w->data;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)ev;
	(void)revents;
	if (!p->connected) {
		if (getsockopt(p->rfd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			rg__say(p->t, "cannot connect", strerror(err ? err : errno));
			rg__close(p);
			return;
		}
		p->connected = 1;
	}
	rg__pump(p);
}

/* A non-blocking TCP connection to host:port under way: its socket, or -1 (logged). */
static int rg__dial(struct rg_tls_relay *t)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
	char port[8];
	int fd, rc;

	snprintf(port, sizeof(port), "%d", t->port);
	if ((rc = getaddrinfo(t->host, port, &hints, &ai))) {
		rg__say(t, "cannot resolve the host", gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
		rg__say(t, "cannot connect", strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static int rg__is_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static void rg__on_accept(struct ev_loop *ev, ev_io *w, int revents)
{
	struct rg_tls_relay *t = w->data;
	struct rg__pipe *p;
	int cfd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)revents;
	if (cfd < 0) {
		/* the socket stays readable: without a pause this would spin */
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
			rg__say(t, "cannot accept the link", strerror(errno));
			ev_io_stop(ev, &t->accept_w);
			ev_timer_start(ev, &t->accept_again);
		}
		return;
	}
	if (!(p = calloc(1, sizeof(*p)))) {
		rg_err("out of memory");
		close(cfd);
		return;
	}
	p->t = t;
	p->cfd = cfd;
	p->rfd = -1;
	DL_APPEND(t->pipes, p);
	if ((p->rfd = rg__dial(t)) < 0 || !(p->ssl = SSL_new(t->ctx)) ||
	    !SSL_set_fd(p->ssl, p->rfd)) {
		if (p->rfd >= 0)
			rg__say(t, "cannot set up TLS", NULL);
		rg__close(p);
		return;
	}
	/* the certificate must name what the config says Redis is */
	int named = rg__is_ip(t->name)
			    ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p->ssl), t->name)
			    : SSL_set_tlsext_host_name(p->ssl, t->name) &&
				      SSL_set1_host(p->ssl, t->name);
	if (!named) {
		rg__say(t, "cannot set up TLS", NULL);
		rg__close(p);
		return;
	}
	ev_io_init(&p->cw, rg__on_client, cfd, 0);
	ev_io_init(&p->rw, rg__on_redis, p->rfd, EV_WRITE);
	p->cw.data = p->rw.data = p;
	ev_io_start(t->ev, &p->rw);
}

static void rg__on_accept_again(struct ev_loop *ev, ev_timer *w, int revents)
{
	struct rg_tls_relay *t = w->data;

	(void)revents;
	ev_io_start(ev, &t->accept_w);
}

const char *rg_tls_relay_path(const struct rg_tls_relay *t)
{
	return t->path;
}

void rg_tls_relay_free(struct rg_tls_relay *t)
{
	if (!t)
		return;
	while (t->pipes)
		rg__close(t->pipes);
	ev_timer_stop(t->ev, &t->accept_again);
	if (t->lfd >= 0) {
		ev_io_stop(t->ev, &t->accept_w);
		close(t->lfd);
		unlink(t->path);
	}
	if (t->dir[0])
		rmdir(t->dir);
	SSL_CTX_free(t->ctx);
	free(t);
}

/* The client context: TLS 1.2 or later, Redis's certificate verified against the CA
 * file, the client certificate when there is one. 0, or -1 with the reason in why. */
static int rg__context(struct rg_tls_relay *t, const struct rg_config *cfg, char *why, size_t cap)
{
	const char *bad = NULL, *file = NULL;

	if (!(t->ctx = SSL_CTX_new(TLS_client_method())))
		bad = "cannot make a TLS context";
	else if (!SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION))
		bad = "cannot ask for TLS 1.2";
	else if (SSL_CTX_load_verify_locations(t->ctx, file = cfg->redis_tls_ca, NULL) != 1)
		bad = "cluster.redis.tls.ca_file: no CA certificate loads from";
	else if (cfg->redis_tls_cert &&
		 (SSL_CTX_use_certificate_chain_file(t->ctx, file = cfg->redis_tls_cert) != 1))
		bad = "cluster.redis.tls.cert_file: no certificate loads from";
	else if (cfg->redis_tls_key &&
		 (SSL_CTX_use_PrivateKey_file(t->ctx, file = cfg->redis_tls_key,
					      SSL_FILETYPE_PEM) != 1 ||
		  SSL_CTX_check_private_key(t->ctx) != 1))
		bad = "cluster.redis.tls.key_file: no key for the certificate loads from";
	if (bad) {
		unsigned long e = ERR_peek_last_error();
		snprintf(why, cap, "%s%s%s (%s)", bad, file ? " " : "", file ? file : "",
			 e ? ERR_reason_error_string(e) : "no reason given");
		ERR_clear_error();
		return -1;
	}
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(t->ctx,
			 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return 0;
}

/* The UNIX socket hiredis connects to, in a directory of its own (0700). */
static int rg__listen(struct rg_tls_relay *t, char *why, size_t cap)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *tmp = getenv("TMPDIR");

	snprintf(t->dir, sizeof(t->dir), "%s/roomgate-redis-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (strlen(t->dir) > 60 || !mkdtemp(t->dir)) {
		snprintf(why, cap, "cannot make a directory for the TLS relay's socket in %s (%s)",
			 tmp && *tmp ? tmp : "/tmp", strerror(errno));
		t->dir[0] = '\0';
		return -1;
	}
	snprintf(t->path, sizeof(t->path), "%s/s", t->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t->path);
	t->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->lfd < 0 || bind(t->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(t->lfd, 8)) {
		snprintf(why, cap, "cannot listen on %s (%s)", t->path, strerror(errno));
		if (t->lfd >= 0)
			close(t->lfd);
		t->lfd = -1;
		return -1;
	}
	return 0;
}

struct rg_tls_relay *rg_tls_relay_new(struct ev_loop *loop, const char *host, int port,
				      const struct rg_config *cfg, char *why, size_t cap)
{
	struct rg_tls_relay *t = calloc(1, sizeof(*t));

	if (!t) {
		snprintf(why, cap, "out of memory");
		return NULL;
	}
	t->ev = loop;
	t->lfd = -1;
	t->port = port;
	snprintf(t->host, sizeof(t->host), "%s", host);
	snprintf(t->name, sizeof(t->name), "%s", cfg->redis_tls_name ? cfg->redis_tls_name : host);
	if (rg__context(t, cfg, why, cap) || rg__listen(t, why, cap)) {
		rg_tls_relay_free(t);
		return NULL;
	}
	ev_io_init(&t->accept_w, rg__on_accept, t->lfd, EV_READ);
	t->accept_w.data = t;
	ev_timer_init(&t->accept_again, rg__on_accept_again, 1., 0.);
	t->accept_again.data = t;
	ev_io_start(loop, &t->accept_w);
	return t;
}
