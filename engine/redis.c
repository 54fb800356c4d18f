/*
 * The Redis engine: see redis.h for the contract, docs/OPERATIONS.md ("Several
 * gateways") for the keys it keeps.
 */
#include "redis.h"
#include "tls.h"

#include "../gateway/log.h"
#include "../gateway/registry.h"
#include "../gateway/request.h"
#include "../gateway/session.h"

#include <errno.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <utlist.h>

#define RG__BACKOFF_MIN 0.1
#define RG__BACKOFF_MAX 5.0
#define RG__STALL_S     3.0 /* a command without a reply this long: the link is dropped */
#define RG__SETUP_S     5.0 /* a link not set up this long after connecting: dropped */
#define RG__WATCH_S     1.0
#define RG__KEY_TTL     "86400" /* idempotency keys: a day, while their message is kept */
#define RG__NAME_MAX    (64 + RG_ROOM_NAME_MAX + 3 + RG_ID_MAX + 1)
#define RG__HELD_MAX    100000 /* messages held during one catch-up; past it they are gaps */
#define RG__SCAN_COUNT  "1000"
#define RG__FIELD_MAX   (RG_EPOCH_LEN + 1 + 24) /* a member's field: "<node> conn-N" */

/*
 * One publish: KEYS[1] the room's stream (also its channel), KEYS[2] the idempotency
 * key if any; ARGV: the stream's length to keep, the time (ms), the key ("" when
 * none), the data. The stream's IDs are 0-<seq>: XADD's 0-* gives the next seq, and
 * the stream keeps its last ID when it is trimmed. A key counts while its message is
 * still in the stream, as on one node. {0|1|2, seq}: stored, a duplicate, a conflict.
 */
static const char rg__publish_lua[] =
	"local seen = #KEYS > 1 and redis.call('GET', KEYS[2])\n"
	"if seen then\n"
	"  local seq, hash = string.match(seen, '^(%d+) (%x+)$')\n"
	"  if seq and #redis.call('XRANGE', KEYS[1], '0-' .. seq, '0-' .. seq) > 0 then\n"
	"    if hash == redis.sha1hex(ARGV[4]) then return {1, tonumber(seq)} end\n"
	"    return {2, tonumber(seq)}\n"
	"  end\n"
	"end\n"
	"local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '0-*', 't', ARGV[2],\n"
	"  'k', ARGV[3], 'd', ARGV[4])\n"
	"local seq = string.sub(id, 3)\n"
	"if #KEYS > 1 then\n"
	"  redis.call('SET', KEYS[2], seq .. ' ' .. redis.sha1hex(ARGV[4]), 'EX', " RG__KEY_TTL
	")\n"
	"end\n"
	"redis.call('PUBLISH', KEYS[1], seq .. ' ' .. ARGV[2] .. ' ' .. #ARGV[3] .. '\\n' ..\n"
	"  ARGV[3] .. ARGV[4])\n"
	"return {0, tonumber(seq)}\n";

/*
 * A presence member joins ('+') or leaves ('-'): KEYS the room's member hash
 * (<prefix>{room}:m, field "<node> <id>", value {"user","sub"}), the node's set of
 * rooms (<prefix>node:<node>) and the room's channel; ARGV '+' or '-', the field, the
 * value, the room, and '1' when a leave is the node's last member of the room (the
 * room leaves the node's set). The other nodes hear "+<field>\n<value>" or "-<field>"
 * on the channel, once: a join already there (a node registering again) says nothing.
 */
static const char rg__member_lua[] =
	"if ARGV[1] == '+' then\n"
	"  redis.call('SADD', KEYS[2], ARGV[4])\n"
	"  if redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) == 1 then\n"
	"    redis.call('PUBLISH', KEYS[3], '+' .. ARGV[2] .. '\\n' .. ARGV[3])\n"
	"  end\n"
	"else\n"
	"  if redis.call('HDEL', KEYS[1], ARGV[2]) == 1 then\n"
	"    redis.call('PUBLISH', KEYS[3], '-' .. ARGV[2])\n"
	"  end\n"
	"  if ARGV[5] == '1' then redis.call('SREM', KEYS[2], ARGV[4]) end\n"
	"end\n"
	"return 0\n";

/*
 * A node's heartbeat ('beat') or its clean exit ('gone'): ARGV the key prefix, the
 * node, its timeout (ms), the mode. <prefix>nodes holds each node's deadline in
 * Redis's own clock (so the nodes' clocks need not agree). A beat moves the node's
 * deadline and removes the members of a node past its own, as if each had left: at
 * most about 10,000 steps (a room, a page of its hash, a member) a beat, the rest at
 * the next, so that no script holds Redis long; a clean exit removes up to 100,000
 * and leaves the rest to the others. A beat returns 1 when this node had been taken
 * as gone (or was not known): it registers its members again.
 */
static const char rg__beat_lua[] =
	"local P, me = ARGV[1], ARGV[2]\n"
	"local nodes = P .. 'nodes'\n"
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"local budget = ARGV[4] == 'gone' and 100000 or 10000\n"
	"local function reap(node)\n"
	"  local set = P .. 'node:' .. node\n"
	"  while budget > 0 do\n"
	"    local room = redis.call('SPOP', set)\n"
	"    if not room then\n"
	"      redis.call('ZREM', nodes, node)\n"
	"      return\n"
	"    end\n"
	"    local h, chan = P .. '{' .. room .. '}:m', P .. '{' .. room .. '}'\n"
	"    local cur = '0'\n"
	"    budget = budget - 1\n"
	"    repeat\n"
	"      local r = redis.call('HSCAN', h, cur, 'MATCH', node .. ' *', 'COUNT', 1000)\n"
	"      cur = r[1]\n"
	"      budget = budget - 1\n"
	"      for i = 1, #r[2], 2 do\n"
	"        redis.call('HDEL', h, r[2][i])\n"
	"        redis.call('PUBLISH', chan, '-' .. r[2][i])\n"
	"        budget = budget - 1\n"
	"      end\n"
	"    until cur == '0'\n"
	"  end\n"
	"end\n"
	"if ARGV[4] == 'gone' then\n"
	"  reap(me)\n"
	"  return 0\n"
	"end\n"
	"local was = tonumber(redis.call('ZSCORE', nodes, me) or '0')\n"
	"redis.call('ZADD', nodes, now + tonumber(ARGV[3]), me)\n"
	"for _, node in ipairs(redis.call('ZRANGEBYSCORE', nodes, '-inf', now, 'LIMIT', 0, 8)) do\n"
	"  reap(node)\n"
	"end\n"
	"if was <= now then return 1 end\n"
	"return 0\n";

enum { RG__LUA_PUBLISH, RG__LUA_MEMBER, RG__LUA_BEAT, RG__LUA_N };
static const char *const rg__lua[RG__LUA_N] = {rg__publish_lua, rg__member_lua, rg__beat_lua};

struct rg_redis;

/* What pub/sub brought while the streams are read back: room name, then payload. */
struct rg__held {
	struct rg__held *next;
	size_t nlen, len;
	char text[];
};

/* A member of a presence room: one of this node's (keyed by its id) or another
 * node's (by its field in Redis, "<node> <id>"), with its name and its token's sub. */
struct rg__member {
	UT_hash_handle hh;
	unsigned gen;           /* another node's: the catch-up that last saw it */
	const char *user, *sub; /* sub: NULL when none; both in key's allocation */
	char key[];
};

/* A presence room as this node knows it: its members here, those of the other nodes,
 * and those that left here while Redis could not be told (told when it is back). */
struct rg__proom {
	UT_hash_handle hh;
	struct rg__member *mine, *others, *left;
	char name[];
};

/* One of the two connections. up: usable (authenticated, set up). */
struct rg__link {
	struct rg_redis *r;
	redisAsyncContext *ac;
	const char *name;
	int up;
	ev_tstamp since; /* when it began to connect */
};

/* A command in flight on the command link, oldest first: a publish (p, until it is
 * cancelled) or the watchdog's PING (p NULL). */
struct rg__call {
	struct rg_redis *r;
	struct rg_pub *p;
	ev_tstamp sent;
	struct rg__call *prev, *next;
};

struct rg_redis {
	struct rg_engine base;
	struct ev_loop *ev;
	struct rg_registry *reg;
	char host[256];
	int port;
	char *password; /* or NULL */
	char prefix[65];
	size_t prefix_len;
	char pattern[80]; /* <prefix>{*}: every room's channel */
	struct rg__link cmd, sub;
	char sha[RG__LUA_N][41]; /* the scripts', once loaded on this command link */
	ev_timer retry;          /* reconnects what is down, after backoff seconds */
	double backoff;
	ev_timer watch; /* stalls */
	struct rg__call *calls;
	int said_down;      /* "unavailable" logged since it was last up */
	char said_why[200]; /* with this reason: another one is logged too */
	int closing;        /* being freed: nothing reconnects */
	/* Catching up (rg__sync): after each (re)subscribe the streams are read back,
	 * while what pub/sub brings meanwhile is held, then delivered after them. */
	int need_sync, syncing, sync_failed;
	unsigned sync_calls; /* SCANs and XREVRANGEs in flight */
	struct rg__held *held, **held_tail;
	size_t nheld;
	unsigned long long dropped; /* held messages past RG__HELD_MAX, this catch-up */
	unsigned long long junk;    /* stream entries no gateway wrote, this catch-up */
	/* Presence: this process's name among the nodes (fresh at each start), its
	 * timeout, the presence rooms with members anywhere, and the catch-up counter
	 * that tells members still in Redis from those gone while the links were down. */
	char node[RG_EPOCH_LEN + 1];
	char timeout_ms[16];
	struct rg__proom *prooms;
	unsigned gen;
	unsigned beats;           /* heartbeats answered since the command link came up */
	int registered;           /* this node's members were ever sent: removed at exit */
	int gone;                 /* at exit: 1 once Redis removed them, -1 if it could not */
	struct rg_tls_relay *tls; /* cluster.redis.tls: the links go through it */
	int telling;              /* members here are being told of a change (rg__tell) */
};

static struct rg_redis *rg__of(const struct rg_engine *e)
{
	return (struct rg_redis *)(void *)e;
}

static int rg__ready(const struct rg_engine *e)
{
	const struct rg_redis *r = rg__of(e);

	return r->cmd.up && r->sub.up && !r->need_sync && !r->syncing;
}

static void rg__connect(struct rg_redis *r, struct rg__link *l);
static void rg__sync(struct rg_redis *r);
static void rg__sync_step(struct rg_redis *r, int ok);
static void rg__call_done(struct rg__call *c, struct rg_pub **p);
static void rg__presence_up(struct rg_redis *r);

static void rg__schedule(struct rg_redis *r)
{
	if (ev_is_active(&r->retry))
		return;
	ev_timer_set(&r->retry, r->backoff, 0.);
	ev_timer_start(r->ev, &r->retry);
	r->backoff = r->backoff * 2 > RG__BACKOFF_MAX ? RG__BACKOFF_MAX : r->backoff * 2;
}

static void rg__on_retry(struct ev_loop *ev, ev_timer *w, int revents)
{
	struct rg_redis *r = w->data;

	(void)ev;
	(void)revents;
	if (!r->cmd.ac)
		rg__connect(r, &r->cmd);
	if (!r->sub.ac)
		rg__connect(r, &r->sub);
}

/* A link went down or could not come up: said once until both are up again. */
static void rg__down(struct rg__link *l, const char *why)
{
	struct rg_redis *r = l->r;

	l->up = 0;
	if (r->closing)
		return;
	/* once per reason until it is back: a lasting one (a wrong password, a key of
	 * another program) is not hidden behind the first "connection closed" */
	if (!r->said_down)
		r->reg->metrics.cluster_outages++;
	if (!r->said_down || strncmp(r->said_why, why, sizeof(r->said_why) - 1)) {
		rg_warn("redis %s:%d: %s (%s link); publishes are answered `unavailable` until "
			"it is back",
			r->host, r->port, why, l->name);
		r->said_down = 1;
		snprintf(r->said_why, sizeof(r->said_why), "%s", why);
	}
	rg__schedule(r);
}

static void rg__maybe_up(struct rg_redis *r)
{
	if (r->cmd.up && r->sub.up && r->need_sync && !r->syncing)
		rg__sync(r);
	if (!rg__ready(&r->base))
		return;
	r->backoff = RG__BACKOFF_MIN;
	if (r->said_down)
		rg_notice("redis %s:%d: connected; publishing again", r->host, r->port);
	r->said_down = 0;
}

/* Drops a link (its pending replies come back NULL, then rg__on_disconnect). */
static void rg__drop(struct rg__link *l)
{
	if (l->ac)
		redisAsyncFree(l->ac);
}

static void rg__on_connect(const redisAsyncContext *ac, int status)
{
	struct rg__link *l = ac->data;

	if (status != REDIS_OK) {
		/* hiredis frees the context after this */
		l->ac = NULL;
		rg__down(l, ac->errstr[0] ? ac->errstr : "cannot connect");
	}
}

static void rg__on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rg__link *l = ac->data;

	(void)status;
	l->ac = NULL;
	/* already said down (often by us, dropping it for a reason logged then) */
	if (!l->up && l->r->said_down) {
		if (!l->r->closing)
			rg__schedule(l->r);
		return;
	}
	rg__down(l, ac->err ? ac->errstr : "connection closed");
}

/* A reply that is an error, or none (the link is gone): the link is dropped and said
 * down. 1 then, else 0. */
static int rg__failed(redisAsyncContext *ac, redisReply *reply, const char *what)
{
	struct rg__link *l = ac->data;
	char why[200];

	if (reply && reply->type != REDIS_REPLY_ERROR)
		return 0;
	if (reply) {
		snprintf(why, sizeof(why), "%s: %.*s", what, (int)reply->len, reply->str);
		rg__down(l, why);
		redisAsyncFree(ac);
	}
	return 1;
}

static void rg__on_auth(redisAsyncContext *ac, void *reply, void *priv)
{
	(void)priv;
	rg__failed(ac, reply, "AUTH");
}

/* priv: where the script's SHA1 goes. */
static void rg__on_script(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rg_redis *r = ((struct rg__link *)ac->data)->r;
	char *sha = priv;
	redisReply *rep = reply;

	if (rg__failed(ac, reply, "SCRIPT LOAD"))
		return;
	if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
		rg__down(&r->cmd, "SCRIPT LOAD: an unexpected reply");
		redisAsyncFree(ac);
		return;
	}
	memcpy(sha, rep->str, 40);
	sha[40] = '\0';
}

/* The cluster's epoch, set by the first node to reach this Redis: it changes only when
 * Redis loses its data, and then every room starts over (rg_registry_rebase). */
static void rg__on_epoch(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rg_redis *r = priv;
	redisReply *rep = reply;

	if (rg__failed(ac, reply, "GET epoch"))
		return;
	if (rep->type != REDIS_REPLY_STRING || rep->len != RG_EPOCH_LEN ||
	    strspn(rep->str, "0123456789abcdefghijklmnopqrstuv") != RG_EPOCH_LEN) {
		rg__down(&r->cmd, "the epoch key holds something else (another program's key?)");
		redisAsyncFree(ac);
		return;
	}
	if (strcmp(rep->str, r->reg->epoch)) {
		if (rg_registry_rebase(r->reg, rep->str))
			rg_warn("redis %s:%d: a new epoch (%s): Redis lost the rooms' messages; "
				"subscribers start over",
				r->host, r->port, rep->str);
	}
	r->cmd.up = 1;
	rg__presence_up(r);
	rg__maybe_up(r);
}

/* One message of room name (nlen bytes) in the cluster's order: stored and delivered.
 * A room this node does not hold yet is made (its config permitting) so that a client
 * resuming here finds what it missed. */
static void rg__deliver(struct rg_redis *r, const char *name, size_t nlen, uint64_t seq, int64_t ts,
			const char *key, size_t klen, const char *data, size_t len)
{
	struct rg_room *room;
	char k[RG_ID_MAX + 1];

	if (rg_registry_get(r->reg, name, nlen, 1, &room))
		return; /* not a room of this config, or no room for it (limits, budget) */
	memcpy(k, key, klen);
	k[klen] = '\0';
	if (rg_registry_deliver(r->reg, room, seq, ts, data, len, klen ? k : NULL) < 0)
		rg_err("room %s: out of memory storing seq %" PRIu64, room->name, seq);
}

/* Holds what pub/sub brought during a catch-up, to take after the streams' own. */
static void rg__hold(struct rg_redis *r, const char *name, size_t nlen, const char *payload,
		     size_t len)
{
	struct rg__held *h;

	if (r->nheld >= RG__HELD_MAX || !(h = malloc(sizeof(*h) + nlen + len))) {
		r->dropped++; /* a gap the room counts when the next one comes */
		return;
	}
	h->next = NULL;
	h->nlen = nlen;
	h->len = len;
	memcpy(h->text, name, nlen);
	memcpy(h->text + nlen, payload, len);
	*r->held_tail = h;
	r->held_tail = &h->next;
	r->nheld++;
}

/* A number of 1..19 decimal digits at p (before end), nothing else: no sign, no
 * blank, no overflow (strtoull takes "-1" for 2^64 - 1). The byte after it in *next.
 * 0, or -1. */
static int rg__digits(const char *p, const char *end, uint64_t *v, const char **next)
{
	uint64_t n = 0;
	const char *q = p;

	while (q < end && q - p < 19 && *q >= '0' && *q <= '9')
		n = n * 10 + (uint64_t)(*q++ - '0');
	if (q == p || (q < end && *q >= '0' && *q <= '9'))
		return -1;
	*v = n;
	*next = q;
	return 0;
}

/* ---- presence ----------------------------------------------------------------- */

/* One allocation: key, user and sub (NULL: none). */
static struct rg__member *rg__member_new(const char *key, size_t klen, const char *user,
					 size_t ulen, const char *sub, size_t slen)
{
	struct rg__member *m = malloc(sizeof(*m) + klen + ulen + slen + 3);
	char *p;

	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	p = m->key;
	memcpy(p, key, klen);
	p[klen] = '\0';
	p += klen + 1;
	memcpy(p, user, ulen);
	p[ulen] = '\0';
	m->user = p;
	p += ulen + 1;
	memcpy(p, sub ? sub : "", slen);
	p[slen] = '\0';
	m->sub = sub ? p : NULL;
	return m;
}

static void rg__members_free(struct rg__member **head)
{
	struct rg__member *m, *tmp;

	HASH_ITER(hh, *head, m, tmp) {
		HASH_DEL(*head, m);
		free(m);
	}
}

static struct rg__proom *rg__proom(struct rg_redis *r, const char *name, size_t nlen, int create)
{
	struct rg__proom *pr;

	HASH_FIND(hh, r->prooms, name, nlen, pr);
	if (pr || !create)
		return pr;
	if (!(pr = calloc(1, sizeof(*pr) + nlen + 1)))
		return NULL;
	memcpy(pr->name, name, nlen);
	HASH_ADD_KEYPTR(hh, r->prooms, pr->name, nlen, pr);
	return pr;
}

/* Drops pr once nobody is in it; not while members are being told something (what
 * they are told may close one, which leaves its rooms). */
static void rg__proom_gc(struct rg_redis *r, struct rg__proom *pr)
{
	if (r->telling || pr->mine || pr->others || pr->left)
		return;
	HASH_DEL(r->prooms, pr);
	free(pr);
}

/* Tells room name's members here that m, of another node, joined or left. */
static void rg__tell(struct rg_redis *r, const char *name, size_t nlen, const char *event,
		     const struct rg__member *m)
{
	struct rg_room *room;

	if (rg_registry_get(r->reg, name, nlen, 0, &room))
		return; /* nobody here to tell */
	r->telling++;
	rg_session_presence_tell(room, event, m->user, m->sub);
	r->telling--;
}

static int rg__can_send(const struct rg_redis *r)
{
	return r->cmd.ac && r->cmd.up && r->sha[RG__LUA_MEMBER][0];
}

/* A leave in flight: room name, then the member's id; kept to send again when Redis
 * did not take it. */
struct rg__leave {
	struct rg_redis *r;
	size_t nlen;
	char text[];
};

static void rg__on_member(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rg__leave *lv = priv;

	/* a join that did not happen is sent again with the others when the link is back */
	if (rg__failed(ac, reply, "a presence update") && lv && !lv->r->closing) {
		struct rg__proom *pr = rg__proom(lv->r, lv->text, lv->nlen, 1);
		const char *id = lv->text + lv->nlen;
		size_t ilen = strlen(id);
		struct rg__member *m;
		if (pr && (m = rg__member_new(id, ilen, "", 0, NULL, 0)))
			HASH_ADD_KEYPTR(hh, pr->left, m->key, ilen, m);
	}
	free(lv);
}

/* Sends the join ('+') or leave ('-') of m, a member here of pr (a leave once m is out
 * of pr->mine: the last one takes the room out of the node's set). 0, or -1. */
static int rg__send_member(struct rg_redis *r, const struct rg__proom *pr,
			   const struct rg__member *m, char op)
{
	char hash[RG__NAME_MAX], set[RG__NAME_MAX], chan[RG__NAME_MAX], field[RG__FIELD_MAX + 1];
	size_t nlen = strlen(pr->name);
	struct rg__leave *lv = NULL;
	char *value = NULL;

	int hl = snprintf(hash, sizeof(hash), "%s{%s}:m", r->prefix, pr->name);
	int sl = snprintf(set, sizeof(set), "%snode:%s", r->prefix, r->node);
	int cl = snprintf(chan, sizeof(chan), "%s{%s}", r->prefix, pr->name);
	int fl = snprintf(field, sizeof(field), "%s %s", r->node, m->key);
	if (op == '+') {
		json_t *v = json_pack("{s:s}", "user", m->user);
		if (v && m->sub && json_object_set_new(v, "sub", json_string(m->sub)))
			v = (json_decref(v), NULL);
		value = v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		json_decref(v);
		if (!value)
			return -1;
	} else {
		size_t ilen = strlen(m->key);
		if (!(lv = malloc(sizeof(*lv) + nlen + ilen + 1)))
			return -1;
		lv->r = r;
		lv->nlen = nlen;
		memcpy(lv->text, pr->name, nlen);
		memcpy(lv->text + nlen, m->key, ilen + 1);
	}
	const char *last = op == '-' && !pr->mine ? "1" : "0";
	const char *argv[] = {
		"EVALSHA", r->sha[RG__LUA_MEMBER], "3",      hash, set, chan, op == '+' ? "+" : "-",
		field,     value ? value : "",     pr->name, last};
	size_t lens[] = {7,          40,         1,
			 (size_t)hl, (size_t)sl, (size_t)cl,
			 1,          (size_t)fl, value ? strlen(value) : 0,
			 nlen,       1};
	int rc = redisAsyncCommandArgv(r->cmd.ac, rg__on_member, lv, 11, argv, lens);
	free(value);
	if (rc != REDIS_OK) {
		free(lv);
		return -1;
	}
	r->registered = 1;
	return 0;
}

static void rg__on_beat(redisAsyncContext *ac, void *reply, void *priv);

/* Sends a heartbeat, which the watchdog also times. */
static void rg__beat(struct rg_redis *r)
{
	struct rg__call *c;

	if (!r->sha[RG__LUA_BEAT][0] || !(c = calloc(1, sizeof(*c))))
		return;
	c->r = r;
	c->sent = ev_now(r->ev);
	if (redisAsyncCommand(r->cmd.ac, rg__on_beat, c, "EVALSHA %s 0 %s %s %s beat",
			      r->sha[RG__LUA_BEAT], r->prefix, r->node,
			      r->timeout_ms) != REDIS_OK) {
		free(c);
		return;
	}
	DL_APPEND(r->calls, c);
}

/* The command link is (again) up: a heartbeat first (so that no node takes this one
 * as gone while it registers), then what left while Redis could not be told, then
 * every member here. Joins already in Redis say nothing again. */
static void rg__presence_up(struct rg_redis *r)
{
	struct rg__proom *pr, *tmp;
	struct rg__member *m, *mt;

	r->beats = 0;
	rg__beat(r);
	HASH_ITER(hh, r->prooms, pr, tmp) {
		HASH_ITER(hh, pr->left, m, mt) {
			if (rg__send_member(r, pr, m, '-'))
				return; /* the link is going: sent when it is back */
			HASH_DEL(pr->left, m);
			free(m);
		}
		HASH_ITER(hh, pr->mine, m, mt)
			if (rg__send_member(r, pr, m, '+'))
				return;
		rg__proom_gc(r, pr);
	}
}

static void rg__on_beat(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rg_redis *r = ((struct rg__call *)priv)->r;
	redisReply *rep = reply;
	struct rg_pub *p;

	rg__call_done(priv, &p);
	if (rg__failed(ac, reply, "the heartbeat"))
		return;
	/* taken as gone (silent past its timeout) after the first beat since the link came
	 * up: another node removed its members, which join again */
	if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1 && r->beats) {
		rg_warn("redis %s:%d: the other gateways took this one as gone (no heartbeat for "
			"%s ms); its presence members join again",
			r->host, r->port, r->timeout_ms);
		rg__presence_up(r);
	}
	r->beats++;
}

static void rg__member(struct rg_engine *e, const struct rg_room *room, const char *id,
		       const char *user, const char *sub, int join)
{
	struct rg_redis *r = rg__of(e);
	size_t nlen = strlen(room->name), ilen = strlen(id);
	struct rg__proom *pr = rg__proom(r, room->name, nlen, 1);
	struct rg__member *m, *was;

	if (!pr)
		goto nomem;
	HASH_FIND(hh, pr->mine, id, ilen, m);
	if (m)
		HASH_DEL(pr->mine, m);
	if (join) {
		HASH_FIND(hh, pr->left, id, ilen, was);
		if (was) {
			HASH_DEL(pr->left, was);
			free(was);
		}
		free(m);
		m = rg__member_new(id, ilen, user, strlen(user), sub, sub ? strlen(sub) : 0);
		if (!m)
			goto nomem;
		HASH_ADD_KEYPTR(hh, pr->mine, m->key, ilen, m);
		if (rg__can_send(r))
			rg__send_member(r, pr, m, '+');
	} else if (m && (!rg__can_send(r) || rg__send_member(r, pr, m, '-'))) {
		HASH_ADD_KEYPTR(hh, pr->left, m->key, ilen, m);
	} else {
		free(m);
		rg__proom_gc(r, pr);
	}
	return;
nomem:
	rg_err("room %s: out of memory sharing a presence change: the other gateways may not "
	       "see it",
	       room->name);
}

static int rg__members(const struct rg_engine *e, const char *room, size_t len, json_t *users)
{
	struct rg__proom *pr;
	struct rg__member *m, *tmp;

	HASH_FIND(hh, rg__of(e)->prooms, room, len, pr);
	if (!pr)
		return 0;
	HASH_ITER(hh, pr->others, m, tmp) {
		if (json_array_append_new(users, json_string(m->user)))
			return -ENOMEM;
	}
	return 0;
}

/* A member field, "<node> <id>": 1 when it is another node's, 0 when this one's,
 * -1 when it is not one. */
static int rg__field(const struct rg_redis *r, const char *f, size_t flen)
{
	if (flen <= RG_EPOCH_LEN + 1 || flen > RG__FIELD_MAX || f[RG_EPOCH_LEN] != ' ' ||
	    memchr(f, '\n', flen))
		return -1;
	return memcmp(f, r->node, RG_EPOCH_LEN) != 0;
}

/* Another node's member (field) is in room name, as value says: a newcomer is told
 * to the members here. Also what a catch-up finds (marked as seen by it). */
static void rg__other_joined(struct rg_redis *r, const char *name, size_t nlen, const char *field,
			     size_t flen, const char *value, size_t vlen)
{
	const struct rg_room_conf *conf = rg_registry_conf_for(r->reg, name, nlen);
	struct rg__proom *pr;
	struct rg__member *m;
	const char *user, *sub = NULL;
	int theirs = rg__field(r, field, flen);

	if (!conf || !conf->presence || !theirs)
		return; /* another config's room, or this node's own member */
	json_t *v = theirs > 0 ? json_loadb(value, vlen, 0, NULL) : NULL;
	if (!json_is_object(v) || json_unpack(v, "{s:s, s?s}", "user", &user, "sub", &sub) ||
	    !*user || strlen(user) > RG_NAME_MAX || (sub && strlen(sub) > RG_NAME_MAX)) {
		rg_warn("redis: a presence member of %s{%.*s} that no gateway wrote; ignored",
			r->prefix, (int)nlen, name);
		json_decref(v);
		return;
	}
	if (!(pr = rg__proom(r, name, nlen, 1)))
		goto nomem;
	HASH_FIND(hh, pr->others, field, flen, m);
	if (!m) {
		if (!(m = rg__member_new(field, flen, user, strlen(user), sub,
					 sub ? strlen(sub) : 0)))
			goto nomem;
		HASH_ADD_KEYPTR(hh, pr->others, m->key, flen, m);
		rg__tell(r, name, nlen, "join", m);
	}
	m->gen = r->gen;
	json_decref(v);
	return;
nomem:
	json_decref(v);
	rg_err("room %.*s: out of memory keeping a member of another gateway", (int)nlen, name);
}

static void rg__other_left(struct rg_redis *r, const char *name, size_t nlen, const char *field,
			   size_t flen)
{
	struct rg__proom *pr = rg__proom(r, name, nlen, 0);
	struct rg__member *m = NULL;

	if (rg__field(r, field, flen) < 0) {
		rg_warn("redis: a presence leave on %s{%.*s} that no gateway wrote; ignored",
			r->prefix, (int)nlen, name);
		return;
	}
	if (pr)
		HASH_FIND(hh, pr->others, field, flen, m);
	if (!m)
		return; /* one this node never heard of, or its own */
	HASH_DEL(pr->others, m);
	rg__tell(r, name, nlen, "leave", m);
	free(m);
	rg__proom_gc(r, pr);
}

/* "+<field>\n<value>" or "-<field>" heard on room name's channel. */
static void rg__presence_heard(struct rg_redis *r, const char *name, size_t nlen, const char *p,
			       size_t len)
{
	const char *nl = memchr(p, '\n', len);

	if (*p == '-')
		rg__other_left(r, name, nlen, p + 1, len - 1);
	else if (nl)
		rg__other_joined(r, name, nlen, p + 1, (size_t)(nl - p - 1), nl + 1,
				 (size_t)(p + len - nl - 1));
	else
		rg_warn("redis: a presence join on %s{%.*s} that no gateway wrote; ignored",
			r->prefix, (int)nlen, name);
}

/* After a catch-up read every member hash: the other nodes' members it did not find
 * left while this node was not listening. */
static void rg__presence_sweep(struct rg_redis *r)
{
	struct rg__proom *pr, *tmp;
	struct rg__member *m, *mt;

	HASH_ITER(hh, r->prooms, pr, tmp) {
		HASH_ITER(hh, pr->others, m, mt) {
			if (m->gen == r->gen)
				continue;
			HASH_DEL(pr->others, m);
			rg__tell(r, pr->name, strlen(pr->name), "leave", m);
			free(m);
		}
		rg__proom_gc(r, pr);
	}
}

/* One room's members (HGETALL of <prefix>{room}:m), for a catch-up. */
static void rg__on_hgetall(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rg_redis *r = ((struct rg__link *)ac->data)->r;
	redisReply *rep = reply;
	char *name = priv;
	int ok = rep && rep->type == REDIS_REPLY_ARRAY;

	for (size_t i = 0; ok && i + 1 < rep->elements; i += 2) {
		const redisReply *f = rep->element[i], *v = rep->element[i + 1];
		if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
			rg__other_joined(r, name, strlen(name), f->str, f->len, v->str, v->len);
	}
	free(name);
	rg__sync_step(r, ok);
}

/* A member hash a catch-up found: <prefix>{room}:m, read with HGETALL. 0, or -1. */
static int rg__members_key(struct rg_redis *r, const redisReply *key)
{
	if (key->len < r->prefix_len + 5 || memcmp(key->str + key->len - 3, "}:m", 3))
		return 0;
	char *name = strndup(key->str + r->prefix_len + 1, key->len - r->prefix_len - 4);
	if (!name || redisAsyncCommand(r->cmd.ac, rg__on_hgetall, name, "HGETALL %b", key->str,
				       key->len) != REDIS_OK) {
		free(name);
		return -1;
	}
	r->sync_calls++;
	return 0;
}

/* What was published on room name's channel: a message, "seq ts keylen\n" key data, or
 * a presence member's join or leave ("+" or "-"). */
static void rg__heard(struct rg_redis *r, const char *name, size_t nlen, const char *payload,
		      size_t len)
{
	const char *p = payload, *end = payload + len;
	uint64_t seq, ts, klen;

	if (len && (*p == '+' || *p == '-')) {
		rg__presence_heard(r, name, nlen, payload, len);
		return;
	}
	if (rg__digits(p, end, &seq, &p) || p == end || *p++ != ' ' ||
	    rg__digits(p, end, &ts, &p) || p == end || *p++ != ' ' ||
	    rg__digits(p, end, &klen, &p) || p == end || *p++ != '\n' || !seq || klen > RG_ID_MAX ||
	    (size_t)(end - p) < klen) {
		rg_warn("redis: a message on %s{%.*s} that no gateway wrote; ignored", r->prefix,
			(int)nlen, name);
		return;
	}
	rg__deliver(r, name, nlen, seq, (int64_t)ts, p, (size_t)klen, p + klen,
		    (size_t)(end - p - klen));
}

/* A pmessage on <prefix>{room}: taken now, or after the catch-up under way. */
static void rg__message(struct rg_redis *r, const redisReply *chan, const redisReply *msg)
{
	if (chan->len < r->prefix_len + 3 || chan->str[chan->len - 1] != '}') {
		rg_warn("redis: a message on %.*s that no gateway wrote; ignored", (int)chan->len,
			chan->str);
		return;
	}
	const char *name = chan->str + r->prefix_len + 1;
	size_t nlen = chan->len - r->prefix_len - 2;
	if (r->syncing)
		rg__hold(r, name, nlen, msg->str, msg->len);
	else
		rg__heard(r, name, nlen, msg->str, msg->len);
}

static void rg__on_sub(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rg_redis *r = priv;
	redisReply *rep = reply;

	if (rg__failed(ac, reply, "PSUBSCRIBE"))
		return;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
	    rep->element[0]->type != REDIS_REPLY_STRING)
		return;
	const char *kind = rep->element[0]->str;
	if (!strcmp(kind, "pmessage") && rep->elements == 4 &&
	    rep->element[2]->type == REDIS_REPLY_STRING &&
	    rep->element[3]->type == REDIS_REPLY_STRING)
		rg__message(r, rep->element[2], rep->element[3]);
	else if (!strcmp(kind, "psubscribe")) {
		/* what was published while this link was down is read back from the
		 * streams before publishing resumes */
		r->sub.up = 1;
		r->need_sync = 1;
		rg__maybe_up(r);
	}
}

/* Drops what a catch-up held. */
static void rg__held_free(struct rg_redis *r)
{
	while (r->held) {
		struct rg__held *h = r->held;
		r->held = h->next;
		free(h);
	}
	r->held_tail = &r->held;
	r->nheld = 0;
}

/* A SCAN or XREVRANGE of the catch-up answered (or lost with its link). After the
 * last, what pub/sub brought meanwhile follows, in order (what the streams gave
 * already is ignored by its seq); or, when a command was lost, the catch-up starts
 * over once both links are back. */
static void rg__sync_step(struct rg_redis *r, int ok)
{
	if (!ok)
		r->sync_failed = 1;
	if (--r->sync_calls)
		return;
	r->syncing = 0;
	if (!r->sync_failed) {
		r->need_sync = 0;
		rg__presence_sweep(r);
		for (struct rg__held *h = r->held; h; h = h->next)
			rg__heard(r, h->text, h->nlen, h->text + h->nlen, h->len);
		if (r->junk)
			rg_warn("redis: %llu stream entr%s that no gateway wrote; ignored", r->junk,
				r->junk == 1 ? "y" : "ies");
		if (r->dropped)
			rg_warn("redis: %llu message(s) heard while catching up were not kept "
				"(more than %d): their rooms' subscribers lagged",
				r->dropped, RG__HELD_MAX);
	}
	rg__held_free(r);
	rg__maybe_up(r);
}

/* The entries of one stream, newest first ([id, [field, value, ...]]): delivered
 * oldest first. */
static void rg__on_range(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rg_redis *r = ((struct rg__link *)ac->data)->r;
	redisReply *rep = reply;
	char *name = priv;

	if (rep && rep->type == REDIS_REPLY_ARRAY) {
		for (size_t i = rep->elements; i-- > 0;) {
			const redisReply *en = rep->element[i], *f;
			const redisReply *t = NULL;
			const char *k = "", *d = NULL;
			size_t klen = 0, dlen = 0;
			if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
			    en->element[0]->type != REDIS_REPLY_STRING ||
			    en->element[1]->type != REDIS_REPLY_ARRAY ||
			    strncmp(en->element[0]->str, "0-", 2)) {
				r->junk++;
				continue;
			}
			f = en->element[1];
			for (size_t j = 0; j + 1 < f->elements; j += 2) {
				const redisReply *fk = f->element[j], *fv = f->element[j + 1];
				if (fk->type != REDIS_REPLY_STRING ||
				    fv->type != REDIS_REPLY_STRING)
					continue;
				if (!strcmp(fk->str, "t"))
					t = fv;
				else if (!strcmp(fk->str, "k") && fv->len <= RG_ID_MAX)
					k = fv->str, klen = fv->len;
				else if (!strcmp(fk->str, "d"))
					d = fv->str, dlen = fv->len;
			}
			const redisReply *id = en->element[0];
			const char *after;
			uint64_t seq, ts;
			if (t && d && !rg__digits(id->str + 2, id->str + id->len, &seq, &after) &&
			    after == id->str + id->len && seq &&
			    !rg__digits(t->str, t->str + t->len, &ts, &after) &&
			    after == t->str + t->len)
				rg__deliver(r, name, strlen(name), seq, (int64_t)ts, k, klen, d,
					    dlen);
			else
				r->junk++;
		}
	}
	free(name);
	rg__sync_step(r, rep && rep->type == REDIS_REPLY_ARRAY);
}

/* Reads back, for one room's stream key, what this node lacks: after the last seq it
 * holds, or the room's whole history in Redis when it holds none. */
static int rg__range(struct rg_redis *r, const redisReply *key)
{
	const char *name = key->str + r->prefix_len + 1;
	size_t nlen = key->len - r->prefix_len - 2;
	const struct rg_room_conf *conf = rg_registry_conf_for(r->reg, name, nlen);
	struct rg_room *room;
	char from[32], count[16];

	if (!conf)
		return 0; /* another config's room */
	uint64_t last = rg_registry_get(r->reg, name, nlen, 0, &room) ? 0 : room->last_seq;
	snprintf(from, sizeof(from), last ? "(0-%" PRIu64 : "-", last);
	snprintf(count, sizeof(count), "%" PRIu32, conf->history);
	char *dup = strndup(name, nlen);
	const char *argv[] = {"XREVRANGE", key->str, "+", from, "COUNT", count};
	size_t lens[] = {9, key->len, 1, strlen(from), 5, strlen(count)};
	if (!dup ||
	    redisAsyncCommandArgv(r->cmd.ac, rg__on_range, dup, 6, argv, lens) != REDIS_OK) {
		free(dup);
		return -1;
	}
	r->sync_calls++;
	return 0;
}

/* A room's stream a catch-up found, <prefix>{room} (its idempotency keys end
 * otherwise): read back (rg__range). 0, or -1. */
static int rg__stream_key(struct rg_redis *r, const redisReply *key)
{
	if (key->len <= r->prefix_len + 2 || key->str[key->len - 1] != '}')
		return 0;
	return rg__range(r, key);
}

/* What a catch-up scans Redis for: keys <prefix><match> of a type, and what it does
 * with each (0, or -1: the catch-up failed). */
struct rg__scan {
	const char *match, *type;
	int (*each)(struct rg_redis *r, const redisReply *key);
};

static const struct rg__scan rg__streams = {"{*}", "stream", rg__stream_key};
static const struct rg__scan rg__member_hashes = {"{*}:m", "hash", rg__members_key};

static void rg__on_scan(redisAsyncContext *ac, void *reply, void *priv);

/* Sends the SCAN of sc from cursor. 0, or -1. */
static int rg__scan(struct rg_redis *r, const struct rg__scan *sc, const char *cursor)
{
	if (redisAsyncCommand(r->cmd.ac, rg__on_scan, (void *)sc,
			      "SCAN %s MATCH %s%s TYPE %s COUNT " RG__SCAN_COUNT, cursor, r->prefix,
			      sc->match, sc->type) != REDIS_OK)
		return -1;
	r->sync_calls++;
	return 0;
}

/* One page of a SCAN (priv: its struct rg__scan): each key taken, then the next page. */
static void rg__on_scan(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rg_redis *r = ((struct rg__link *)ac->data)->r;
	const struct rg__scan *sc = priv;
	redisReply *rep = reply;
	int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
		 rep->element[0]->type == REDIS_REPLY_STRING &&
		 rep->element[1]->type == REDIS_REPLY_ARRAY;

	for (size_t i = 0; ok && i < rep->element[1]->elements; i++) {
		const redisReply *key = rep->element[1]->element[i];
		if (key->type == REDIS_REPLY_STRING && sc->each(r, key))
			ok = 0;
	}
	if (ok && strcmp(rep->element[0]->str, "0") && rg__scan(r, sc, rep->element[0]->str))
		ok = 0;
	rg__sync_step(r, ok);
}

/* Catches up: every room stream in Redis is read back from where this node is
 * (rg__range), and every member hash (rg__on_hgetall), while pub/sub messages are
 * held (rg__hold). Publishing waits for it (rg__ready): at start, this loads every
 * room's history, so a client resuming on this node finds what it missed on another. */
static void rg__sync(struct rg_redis *r)
{
	r->syncing = 1;
	r->sync_failed = 0;
	r->dropped = r->junk = 0;
	r->sync_calls = 0;
	r->gen++;
	if (rg__scan(r, &rg__streams, "0")) {
		r->syncing = 0;
		rg__held_free(r);
		return;
	}
	if (rg__scan(r, &rg__member_hashes, "0"))
		r->sync_failed = 1;
}

static void rg__connect(struct rg_redis *r, struct rg__link *l)
{
	redisAsyncContext *ac = r->tls ? redisAsyncConnectUnix(rg_tls_relay_path(r->tls))
				       : redisAsyncConnect(r->host, r->port);

	if (!ac || ac->err) {
		rg__down(l, ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		return;
	}
	ac->data = l;
	l->ac = ac;
	l->since = ev_now(r->ev);
	if (redisLibevAttach(r->ev, ac) != REDIS_OK) {
		l->ac = NULL;
		redisAsyncFree(ac);
		rg__down(l, "cannot watch the connection");
		return;
	}
	redisAsyncSetConnectCallback(ac, rg__on_connect);
	redisAsyncSetDisconnectCallback(ac, rg__on_disconnect);
	/* queued until connected; in order on the connection */
	if (r->password)
		redisAsyncCommand(ac, rg__on_auth, r, "AUTH %s", r->password);
	if (l == &r->sub) {
		redisAsyncCommand(ac, rg__on_sub, r, "PSUBSCRIBE %s", r->pattern);
		return;
	}
	for (int i = 0; i < RG__LUA_N; i++) {
		r->sha[i][0] = '\0';
		redisAsyncCommand(ac, rg__on_script, r->sha[i], "SCRIPT LOAD %s", rg__lua[i]);
	}
	/* A fresh one, not ours: when Redis lost its data (restarted without persistence)
	 * the seqs start over, and so must the epoch, or a cursor would point into a new
	 * order by an old name. */
	char epoch[RG_EPOCH_LEN + 1];
	rg_registry_new_epoch(epoch);
	redisAsyncCommand(ac, NULL, NULL, "SET %sepoch %s NX", r->prefix, epoch);
	redisAsyncCommand(ac, rg__on_epoch, r, "GET %sepoch", r->prefix);
}

static void rg__call_done(struct rg__call *c, struct rg_pub **p)
{
	struct rg_redis *r = c->r;

	DL_DELETE(r->calls, c);
	*p = c->p;
	if (*p)
		(*p)->engine_ref = NULL;
	free(c);
}

static void rg__on_published(redisAsyncContext *ac, void *reply, void *priv)
{
	redisReply *rep = reply;
	struct rg_pub *p;
	int rc = -EAGAIN;
	uint64_t seq = 0;

	rg__call_done(priv, &p);
	if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[0]->type == REDIS_REPLY_INTEGER &&
	    rep->element[1]->type == REDIS_REPLY_INTEGER) {
		long long kind = rep->element[0]->integer;
		seq = (uint64_t)rep->element[1]->integer;
		rc = kind == 0 ? 0 : kind == 1 ? 1 : -EEXIST;
	} else if (rep) {
		/* NOSCRIPT (Redis restarted between two replies), OOM, a full disk:
		 * the publish did not happen; the link is set up again */
		char why[200];
		snprintf(why, sizeof(why), "a publish failed: %.*s",
			 rep->type == REDIS_REPLY_ERROR ? (int)rep->len : 16,
			 rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
		rg__down(ac->data, why);
		redisAsyncFree(ac);
	}
	if (p)
		p->done(p, rc, seq);
}

static int rg__publish(struct rg_engine *e, const struct rg_room *room, const char *data,
		       size_t len, const char *key, struct rg_pub *p)
{
	struct rg_redis *r = rg__of(e);
	char stream[RG__NAME_MAX], ikey[RG__NAME_MAX], keep[24], ts[24];

	if (!rg__ready(e) || !r->sha[RG__LUA_PUBLISH][0])
		return -EAGAIN;
	struct rg__call *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	int slen = snprintf(stream, sizeof(stream), "%s{%s}", r->prefix, room->name);
	int klen = key ? snprintf(ikey, sizeof(ikey), "%s:k:%s", stream, key) : 0;
	int nlen = snprintf(keep, sizeof(keep), "%" PRIu32, room->conf->history);
	int tlen = snprintf(ts, sizeof(ts), "%" PRId64, rg_now_ms());
	const char *argv[] = {"EVALSHA",
			      r->sha[RG__LUA_PUBLISH],
			      key ? "2" : "1",
			      stream,
			      ikey,
			      keep,
			      ts,
			      key ? key : "",
			      data};
	size_t lens[] = {7,
			 40,
			 1,
			 (size_t)slen,
			 (size_t)klen,
			 (size_t)nlen,
			 (size_t)tlen,
			 key ? strlen(key) : 0,
			 len};
	/* without a key, KEYS[2] is left out: argv skips ikey */
	const char *argv1[] = {argv[0], argv[1], argv[2], argv[3],
			       argv[5], argv[6], argv[7], argv[8]};
	size_t lens1[] = {lens[0], lens[1], lens[2], lens[3], lens[5], lens[6], lens[7], lens[8]};
	int rc = key ? redisAsyncCommandArgv(r->cmd.ac, rg__on_published, c, 9, argv, lens)
		     : redisAsyncCommandArgv(r->cmd.ac, rg__on_published, c, 8, argv1, lens1);
	if (rc != REDIS_OK) {
		free(c);
		return -EAGAIN;
	}
	c->r = r;
	c->p = p;
	c->sent = ev_now(r->ev);
	p->engine_ref = c;
	DL_APPEND(r->calls, c);
	return 0;
}

static void rg__cancel(struct rg_engine *e, struct rg_pub *p)
{
	struct rg__call *c = p->engine_ref;

	(void)e;
	if (c)
		c->p = NULL;
	p->engine_ref = NULL;
}

/* Every second: a command link whose oldest command has waited RG__STALL_S is
 * dropped (Redis stopped, or the network between went silent: no FIN to say so);
 * and a heartbeat goes (rg__beat), so that silence is seen without traffic too. */
static void rg__on_watch(struct ev_loop *ev, ev_timer *w, int revents)
{
	struct rg_redis *r = w->data;

	(void)revents;
	/* a peer that takes the connection and says nothing (a TLS handshake, AUTH) */
	for (struct rg__link *l = &r->cmd; l; l = l == &r->cmd ? &r->sub : NULL) {
		if (l->ac && !l->up && ev_now(ev) - l->since >= RG__SETUP_S) {
			rg__down(l, "no answer for 5 s while connecting");
			rg__drop(l);
		}
	}
	if (!r->cmd.ac)
		return;
	if (r->calls && ev_now(ev) - r->calls->sent >= RG__STALL_S) {
		rg__down(&r->cmd, "no reply for 3 s");
		rg__drop(&r->cmd);
		rg__drop(&r->sub);
		return;
	}
	if (r->cmd.up)
		rg__beat(r);
}

static void rg__room_open(struct rg_engine *e, struct rg_room *room)
{
	(void)e;
	(void)room;
}

static void rg__room_close(struct rg_engine *e, struct rg_room *room)
{
	(void)e;
	(void)room;
}

static void rg__on_gone(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rg_redis *r = priv;
	redisReply *rep = reply;

	(void)ac;
	r->gone = rep && rep->type != REDIS_REPLY_ERROR ? 1 : -1;
}

static void rg__on_gone_late(struct ev_loop *ev, ev_timer *w, int revents)
{
	(void)ev;
	(void)w;
	(void)revents;
}

/* A clean exit: this node's presence members leave now, not after its timeout. The
 * server's loop has ended: it is run here until Redis answers, 2 s at most. */
static void rg__say_gone(struct rg_redis *r)
{
	ev_timer limit;

	if (!r->registered)
		return;
	if (r->cmd.ac && r->cmd.up && r->sha[RG__LUA_BEAT][0] &&
	    redisAsyncCommand(r->cmd.ac, rg__on_gone, r, "EVALSHA %s 0 %s %s %s gone",
			      r->sha[RG__LUA_BEAT], r->prefix, r->node,
			      r->timeout_ms) == REDIS_OK) {
		ev_timer_init(&limit, rg__on_gone_late, 2., 0.);
		ev_timer_start(r->ev, &limit);
		while (!r->gone && ev_is_active(&limit))
			ev_run(r->ev, EVRUN_ONCE);
		ev_timer_stop(r->ev, &limit);
	}
	if (r->gone != 1)
		rg_warn("redis %s:%d: could not remove this gateway's presence members; the other "
			"gateways remove them after cluster.redis.node_timeout_seconds",
			r->host, r->port);
}

static void rg__free(struct rg_engine *e)
{
	struct rg_redis *r = rg__of(e);
	struct rg__proom *pr, *tmp;

	ev_timer_stop(r->ev, &r->retry);
	ev_timer_stop(r->ev, &r->watch);
	r->closing = 1;
	rg__say_gone(r);
	rg__drop(&r->cmd);
	rg__drop(&r->sub);
	rg_tls_relay_free(r->tls);
	rg__held_free(r);
	HASH_ITER(hh, r->prooms, pr, tmp) {
		HASH_DEL(r->prooms, pr);
		rg__members_free(&pr->mine);
		rg__members_free(&pr->others);
		rg__members_free(&pr->left);
		free(pr);
	}
	free(r->password);
	free(r);
}

static const struct rg_engine_ops rg__ops = {
	.ready = rg__ready,
	.publish = rg__publish,
	.cancel = rg__cancel,
	.member = rg__member,
	.members = rg__members,
	.room_open = rg__room_open,
	.room_close = rg__room_close,
	.free = rg__free,
};

/* The first line of path, without its line end: malloc'd, or NULL (logged). */
static char *rg__password(const char *path)
{
	char line[1024];
	FILE *f = fopen(path, "r");

	if (!f || !fgets(line, sizeof(line), f)) {
		rg_err("cluster.redis.password_file %s: cannot read it", path);
		if (f)
			fclose(f);
		return NULL;
	}
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	char *pw = strdup(line);
	if (!pw)
		rg_err("out of memory");
	return pw;
}

struct rg_engine *rg_redis_engine_new(struct ev_loop *loop, struct rg_registry *reg,
				      const struct rg_config *cfg)
{
	struct rg_redis *r = calloc(1, sizeof(*r));
	const char *colon = strrchr(cfg->redis_address, ':');

	if (!r) {
		rg_err("out of memory");
		return NULL;
	}
	r->base.ops = &rg__ops;
	r->ev = loop;
	r->reg = reg;
	/* host:port or [v6]:port, as the config checked */
	const char *h = cfg->redis_address;
	size_t hlen = (size_t)(colon - h);
	if (h[0] == '[') {
		h++;
		hlen -= 2;
	}
	snprintf(r->host, sizeof(r->host), "%.*s", (int)hlen, h);
	r->port = atoi(colon + 1);
	snprintf(r->prefix, sizeof(r->prefix), "%s",
		 cfg->redis_prefix ? cfg->redis_prefix : "roomgate:");
	r->prefix_len = strlen(r->prefix);
	snprintf(r->pattern, sizeof(r->pattern), "%s{*}", r->prefix);
	if (cfg->redis_password_file && !(r->password = rg__password(cfg->redis_password_file))) {
		free(r);
		return NULL;
	}
	if (cfg->redis_tls_ca) {
		char why[300];
		if (!(r->tls = rg_tls_relay_new(loop, r->host, r->port, cfg, why, sizeof(why)))) {
			rg_err("cluster.redis.tls: %s", why);
			free(r->password);
			free(r);
			return NULL;
		}
	}
	rg_registry_new_epoch(r->node);
	snprintf(r->timeout_ms, sizeof(r->timeout_ms), "%" PRIu32,
		 cfg->redis_node_timeout_seconds * 1000);
	r->cmd = (struct rg__link){.r = r, .name = "command"};
	r->sub = (struct rg__link){.r = r, .name = "pub/sub"};
	r->backoff = RG__BACKOFF_MIN;
	r->held_tail = &r->held;
	ev_init(&r->retry, rg__on_retry);
	r->retry.data = r;
	ev_timer_init(&r->watch, rg__on_watch, RG__WATCH_S, RG__WATCH_S);
	r->watch.data = r;
	ev_timer_start(loop, &r->watch);
	rg_notice("redis %s:%d%s: sharing rooms under the key prefix \"%s\" as node %s", r->host,
		  r->port, r->tls ? " (TLS)" : "", r->prefix, r->node);
	rg__connect(r, &r->cmd);
	rg__connect(r, &r->sub);
	return &r->base;
}
