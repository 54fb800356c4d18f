/*
 * rawfanout: the "raw epoll C, batched" reference from the issue, used by bench/run to
 * calibrate the load generator (how many deliveries/s it can absorb on this machine).
 * Not a product: one thread, epoll, WebSocket (RFC 6455) with roomgate's protocol
 * subset (join -> joined, publish -> ack + message to every member). Published frames
 * are appended to each member's output buffer and every buffer that got data is sent
 * once per event-loop iteration: one send() per subscriber per batch.
 *
 * usage: rawfanout PORT   (listens on 127.0.0.1)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../wsframe.h"

#define MAX_OUT (32u << 20) /* a subscriber this far behind is dropped */

struct conn {
	int fd, ws, dirty, dead;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off, out_cap;
	int room; /* one room per connection is enough for the calibration */
	size_t slot;
	int ev;
};

struct room {
	char name[132];
	unsigned long long seq;
	struct conn **m;
	size_t n, cap;
};

static struct room rooms[1024];
static int nrooms, ep;
static struct conn **dirty;
static size_t ndirty, dirty_cap;

static void grow(char **p, size_t *cap, size_t need)
{
	if (*cap >= need)
		return;
	size_t c = *cap ? *cap : 4096;
	while (c < need)
		c *= 2;
	*p = realloc(*p, c);
	if (!*p)
		abort();
	*cap = c;
}

static void out_add(struct conn *c, const void *d, size_t n)
{
	if (c->dead)
		return;
	if (c->out_len - c->out_off + n > MAX_OUT) {
		c->dead = 1;
		return;
	}
	if (c->out_off && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	grow(&c->out, &c->out_cap, c->out_len + n);
	memcpy(c->out + c->out_len, d, n);
	c->out_len += n;
	if (!c->dirty) {
		c->dirty = 1;
		if (ndirty == dirty_cap) {
			dirty_cap = dirty_cap ? dirty_cap * 2 : 1024;
			dirty = realloc(dirty, dirty_cap * sizeof(*dirty));
		}
		dirty[ndirty++] = c;
	}
}

static size_t ws_header(unsigned char *h, size_t len)
{
	h[0] = 0x81;
	if (len < 126) {
		h[1] = (unsigned char)len;
		return 2;
	}
	if (len < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
		return 4;
	}
	h[1] = 127;
	for (int i = 0; i < 8; i++)
		h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	return 10;
}

static void ws_text(struct conn *c, const char *s, size_t n)
{
	unsigned char h[10];
	out_add(c, h, ws_header(h, n));
	out_add(c, s, n);
}

static int room_of(const char *name, size_t n)
{
	for (int i = 0; i < nrooms; i++)
		if (strlen(rooms[i].name) == n && !memcmp(rooms[i].name, name, n))
			return i;
	if (nrooms == 1024 || n > 128)
		return -1;
	memcpy(rooms[nrooms].name, name, n);
	rooms[nrooms].name[n] = 0;
	return nrooms++;
}

static void leave(struct conn *c)
{
	if (c->room < 0)
		return;
	struct room *r = &rooms[c->room];
	r->m[c->slot] = r->m[--r->n];
	r->m[c->slot]->slot = c->slot;
	c->room = -1;
}

/* "key":"value" -> value (no escapes in the bench's names) */
static const char *str_field(const char *p, size_t len, const char *key, size_t *vn)
{
	const char *k = memmem(p, len, key, strlen(key));
	if (!k)
		return NULL;
	const char *v = k + strlen(key), *e = memchr(v, '"', (size_t)(p + len - v));
	if (!e)
		return NULL;
	*vn = (size_t)(e - v);
	return v;
}

static void on_message(struct conn *c, const char *p, size_t len)
{
	char buf[512];
	size_t rn;
	const char *room = str_field(p, len, "\"room\":\"", &rn);
	if (!room)
		return;
	int ri = room_of(room, rn);
	if (ri < 0)
		return;
	struct room *r = &rooms[ri];
	if (memmem(p, len, "\"type\":\"join\"", 13)) {
		leave(c);
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 64;
			r->m = realloc(r->m, r->cap * sizeof(*r->m));
		}
		c->room = ri;
		c->slot = r->n;
		r->m[r->n++] = c;
		int n = snprintf(buf, sizeof(buf), "{\"type\":\"joined\",\"room\":\"%s\",\"seq\":%llu}",
				 r->name, r->seq);
		ws_text(c, buf, (size_t)n);
	} else if (memmem(p, len, "\"type\":\"publish\"", 16)) {
		const char *d = memmem(p, len, "\"data\":", 7);
		if (!d)
			return;
		d += 7;
		const char *end = p + len - 1; /* the closing brace of the envelope */
		while (end > d && *end != '}')
			end--;
		size_t dn = (size_t)(end - d);
		r->seq++;
		char msg[8192];
		int hn = snprintf(msg + 10, 400, "{\"type\":\"message\",\"room\":\"%s\",\"seq\":%llu,\"ts\":0,\"data\":",
				  r->name, r->seq);
		if (dn > sizeof(msg) - 420)
			return;
		memcpy(msg + 10 + hn, d, dn);
		msg[10 + hn + dn] = '}';
		size_t jl = (size_t)hn + dn + 1;
		unsigned char h[10];
		size_t hl = ws_header(h, jl);
		memcpy(msg + 10 - hl, h, hl); /* frame built once, copied to every member */
		for (size_t i = 0; i < r->n; i++)
			out_add(r->m[i], msg + 10 - hl, hl + jl);
		int n = snprintf(buf, sizeof(buf), "{\"type\":\"ack\",\"room\":\"%s\",\"seq\":%llu}", r->name,
				 r->seq);
		ws_text(c, buf, (size_t)n);
	}
}

static void handshake(struct conn *c)
{
	char *e = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	if (!e)
		return;
	size_t hl = (size_t)(e + 4 - c->in);
	char key[128] = "";
	for (char *l = c->in; l < e; l = strstr(l, "\r\n") + 2) {
		if (!strncasecmp(l, "Sec-WebSocket-Key:", 18)) {
			char *v = l + 18;
			while (*v == ' ')
				v++;
			size_t n = strcspn(v, "\r\n");
			if (n < 100) {
				memcpy(key, v, n);
				key[n] = 0;
			}
		}
		if (!strstr(l, "\r\n"))
			break;
	}
	strcat(key, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
	unsigned char sha[20], acc[64];
	SHA1((unsigned char *)key, strlen(key), sha);
	EVP_EncodeBlock(acc, sha, 20);
	char resp[256];
	int n = snprintf(resp, sizeof(resp),
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: roomgate.v1\r\n\r\n",
			 acc);
	out_add(c, resp, (size_t)n);
	memmove(c->in, c->in + hl, c->in_len - hl);
	c->in_len -= hl;
	c->ws = 1;
}

static void frames(struct conn *c)
{
	size_t pos = 0;
	unsigned char *p = (unsigned char *)c->in;
	while (c->in_len - pos >= 2) {
		unsigned char *f = p + pos;
		size_t avail = c->in_len - pos, hl;
		uint64_t pl;
		if (ws_frame_head(f, avail, &hl, &pl) || avail < hl + pl)
			break;
		char *d = (char *)f + hl;
		ws_frame_unmask(f, hl, pl);
		int op = f[0] & 0x0f;
		if (op == 1)
			on_message(c, d, pl);
		else if (op == 8)
			c->dead = 1;
		else if (op == 9) {
			unsigned char h[2] = {0x8A, (unsigned char)(pl < 126 ? pl : 0)};
			out_add(c, h, 2);
			out_add(c, d, pl < 126 ? pl : 0);
		}
		pos += hl + pl;
	}
	memmove(c->in, c->in + pos, c->in_len - pos);
	c->in_len -= pos;
}

static void drop(struct conn *c)
{
	leave(c);
	close(c->fd);
	c->fd = -1;
	c->dead = 1;
}

static void flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			drop(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	int want = c->out_off < c->out_len ? EPOLLIN | EPOLLOUT : EPOLLIN;
	if (want != c->ev) {
		struct epoll_event e = {.events = (uint32_t)want, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
		c->ev = want;
	}
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 9301, one = 1;
	signal(SIGPIPE, SIG_IGN);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 4096)) {
		perror("rawfanout: listen");
		return 1;
	}
	ep = epoll_create1(0);
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e);
	struct epoll_event evs[1024];
	char buf[65536];
	for (;;) {
		int n = epoll_wait(ep, evs, 1024, -1);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				int fd;
				while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					c = calloc(1, sizeof(*c));
					c->fd = fd;
					c->room = -1;
					c->ev = EPOLLIN;
					struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
				}
				continue;
			}
			if (c->fd < 0)
				continue;
			if (evs[i].events & EPOLLOUT)
				flush(c);
			if (c->fd >= 0 && evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
				if (r == 0 || (r < 0 && errno != EAGAIN)) {
					drop(c);
					continue;
				}
				if (r > 0) {
					grow(&c->in, &c->in_cap, c->in_len + (size_t)r);
					memcpy(c->in + c->in_len, buf, (size_t)r);
					c->in_len += (size_t)r;
					if (!c->ws)
						handshake(c);
					if (c->ws)
						frames(c);
				}
			}
		}
		/* the batch: one send per connection that got data in this iteration */
		for (size_t i = 0; i < ndirty; i++) {
			struct conn *c = dirty[i];
			c->dirty = 0;
			if (c->fd < 0)
				continue;
			if (c->dead) {
				drop(c);
				continue;
			}
			flush(c);
		}
		ndirty = 0;
	}
}
