#include "limits.h"

#include "log.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void rg_conn_limits_init(struct rg_conn_limits *l, unsigned max_total, unsigned max_per_peer)
{
	memset(l, 0, sizeof(*l));
	l->max_total = max_total;
	l->max_per_peer = max_per_peer;
}

int rg_conn_limits_check(const struct rg_conn_limits *l, const unsigned char addr[16],
			 const char **why)
{
	struct rg_peer *p;

	if (l->max_total && l->total >= l->max_total) {
		*why = "limits.max_connections reached";
		return -1;
	}
	HASH_FIND(hh, l->peers, addr, 16, p);
	if (p && l->max_per_peer && p->conns >= l->max_per_peer) {
		*why = "limits.max_connections_per_address reached for this address";
		return -1;
	}
	return 0;
}

int rg_conn_limits_admit(struct rg_conn_limits *l, const unsigned char addr[16],
			 struct rg_peer **peer, const char **why)
{
	struct rg_peer *p;

	if (rg_conn_limits_check(l, addr, why))
		return -1;
	HASH_FIND(hh, l->peers, addr, 16, p);
	if (!p) {
		if (!(p = calloc(1, sizeof(*p)))) {
			*why = "out of memory";
			return -1;
		}
		memcpy(p->addr, addr, 16);
		HASH_ADD(hh, l->peers, addr, 16, p);
	}
	p->conns++;
	l->total++;
	*peer = p;
	return 0;
}

void rg_conn_limits_release(struct rg_conn_limits *l, struct rg_peer *peer)
{
	l->total--;
	/* an address that published keeps its bucket until the sweep finds it full again:
	 * a client that reconnects for every request gets no fresh one */
	if (--peer->conns || peer->publishes.last_us || peer->rooms.last_us)
		return;
	HASH_DEL(l->peers, peer);
	free(peer);
}

unsigned rg_conn_limits_sweep(struct rg_conn_limits *l, int64_t now_us)
{
	struct rg_peer *p, *tmp;
	unsigned n = 0;

	HASH_ITER(hh, l->peers, p, tmp) {
		if (p->conns || (p->publishes.last_us && now_us - p->publishes.last_us < 1000000) ||
		    (p->rooms.last_us && now_us - p->rooms.last_us < RG_ROOMS_PERIOD_US))
			continue;
		HASH_DEL(l->peers, p);
		free(p);
		n++;
	}
	return n;
}

void rg_conn_limits_cleanup(struct rg_conn_limits *l)
{
	struct rg_peer *p, *tmp;

	HASH_ITER(hh, l->peers, p, tmp) {
		HASH_DEL(l->peers, p);
		free(p);
	}
	l->total = 0;
}

void rg_peer_addr_text(const unsigned char addr[16], char *out, size_t cap)
{
	static const unsigned char v4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	/* an IPv4 client as an operator knows it, not as ::ffff:a.b.c.d */
	if (!memcmp(addr, v4, 12) ? !inet_ntop(AF_INET, addr + 12, out, (socklen_t)cap)
				  : !inet_ntop(AF_INET6, addr, out, (socklen_t)cap))
		snprintf(out, cap, "?");
}

void rg_limit_log(uint64_t *refusals, struct rg_peer *peer, unsigned *once, enum rg_limit k,
		  uint64_t conn, const char *key, const char *code)
{
	int64_t now = rg_mono_us();
	char addr[INET6_ADDRSTRLEN] = "?";

	if (refusals)
		refusals[k]++;
	if (once && (*once & (1u << k)))
		return;
	if (once)
		*once |= 1u << k;
	if (peer) {
		if (peer->logged_us[k] && now - peer->logged_us[k] < 60 * 1000000LL)
			return;
		peer->logged_us[k] = now;
		rg_peer_addr_text(peer->addr, addr, sizeof(addr));
	}
	rg_log_conn(RG_LOG_NOTICE, conn,
		    "limits: %s: %s reached: answered %s (logged once per connection, and at most "
		    "once a minute per address)",
		    addr, key, code);
}

int64_t rg_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int rg_bucket_take_per(struct rg_bucket *b, uint32_t rate, int64_t period_us, int64_t now_us,
		       uint32_t *retry_ms)
{
	if (!rate)
		return 1;
	if (!b->last_us || now_us - b->last_us >= period_us)
		b->tokens = rate;
	else if (now_us > b->last_us)
		b->tokens += (double)(now_us - b->last_us) * rate / (double)period_us;
	if (b->tokens > rate)
		b->tokens = rate;
	b->last_us = now_us;
	if (b->tokens >= 1) {
		b->tokens -= 1;
		return 1;
	}
	*retry_ms = (uint32_t)((1 - b->tokens) * (double)period_us / 1000 / rate) + 1;
	return 0;
}

int rg_bucket_take(struct rg_bucket *b, uint32_t rate, int64_t now_us, uint32_t *retry_ms)
{
	return rg_bucket_take_per(b, rate, 1000000, now_us, retry_ms);
}
