/*
 * The Redis engine: see redis.h for the contract, docs/OPERATIONS.md ("Several
 * gateways") for the keys it keeps.
 */
#include "redis.h"

#include "../gateway/log.h"
#include "../gateway/registry.h"
#include "../gateway/request.h"

#include <errno.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#define RG__BACKOFF_MIN 0.1
#define RG__BACKOFF_MAX 5.0
#define RG__STALL_S     3.0 /* a command without a reply this long: the link is dropped */
#define RG__WATCH_S     1.0
#define RG__KEY_TTL     "86400" /* idempotency keys: a day, while their message is kept */
#define RG__NAME_MAX    (64 + RG_ROOM_NAME_MAX + 3 + RG_ID_MAX + 1)
#define RG__HELD_MAX    100000 /* messages held during one catch-up; past it they are gaps */
#define RG__SCAN_COUNT  "1000"

/*
 * One publish: KEYS[1] the room's stream (also its channel), KEYS[2] the idempotency
 * key if any; ARGV: the stream's length to keep, the time (ms), the key ("" when
 * none), the data. The stream's IDs are 0-<seq>: XADD's 0-* gives the next seq, and
 * the stream keeps its last ID when it is trimmed. A key counts while its message is
 * still in the stream, as on one node. {0|1|2, seq}: stored, a duplicate, a conflict.
 */
static const char rg__script[] =
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

struct rg_redis;

/* A message pub/sub brought while the streams are read back: room name, then data. */
struct rg__held {
	struct rg__held *next;
	uint64_t seq;
	int64_t ts;
	size_t nlen, klen, len;
	char text[]; /* name, key, data */
};

/* One of the two connections. up: usable (authenticated, set up). */
struct rg__link {
	struct rg_redis *r;
	redisAsyncContext *ac;
	const char *name;
	int up;
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
	char sha[41];   /* the script's, once loaded on this command link */
	ev_timer retry; /* reconnects what is down, after backoff seconds */
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

static void rg__on_script(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rg_redis *r = priv;
	redisReply *rep = reply;

	if (rg__failed(ac, reply, "SCRIPT LOAD"))
		return;
	if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
		rg__down(&r->cmd, "SCRIPT LOAD: an unexpected reply");
		redisAsyncFree(ac);
		return;
	}
	memcpy(r->sha, rep->str, 40);
	r->sha[40] = '\0';
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

/* Holds a message heard during a catch-up, to deliver after the streams' own. */
static void rg__hold(struct rg_redis *r, const char *name, size_t nlen, uint64_t seq, int64_t ts,
		     const char *key, size_t klen, const char *data, size_t len)
{
	struct rg__held *h;

	if (r->nheld >= RG__HELD_MAX || !(h = malloc(sizeof(*h) + nlen + klen + len))) {
		r->dropped++; /* a gap the room counts when the next one comes */
		return;
	}
	h->next = NULL;
	h->seq = seq;
	h->ts = ts;
	h->nlen = nlen;
	h->klen = klen;
	h->len = len;
	memcpy(h->text, name, nlen);
	memcpy(h->text + nlen, key, klen);
	memcpy(h->text + nlen + klen, data, len);
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

/* One message published on a room's channel: "seq ts keylen\n" key data. */
static void rg__message(struct rg_redis *r, const redisReply *chan, const redisReply *msg)
{
	const char *p = msg->str, *end = msg->str + msg->len;
	uint64_t seq, ts, klen;

	if (chan->len < r->prefix_len + 3 || chan->str[chan->len - 1] != '}')
		goto bad;
	const char *name = chan->str + r->prefix_len + 1;
	size_t nlen = chan->len - r->prefix_len - 2;
	if (rg__digits(p, end, &seq, &p) || p == end || *p++ != ' ' ||
	    rg__digits(p, end, &ts, &p) || p == end || *p++ != ' ' ||
	    rg__digits(p, end, &klen, &p) || p == end || *p++ != '\n' || !seq || klen > RG_ID_MAX ||
	    (size_t)(end - p) < klen)
		goto bad;
	const char *key = p;
	p += klen;
	if (r->syncing)
		rg__hold(r, name, nlen, seq, (int64_t)ts, key, (size_t)klen, p, (size_t)(end - p));
	else
		rg__deliver(r, name, nlen, seq, (int64_t)ts, key, (size_t)klen, p,
			    (size_t)(end - p));
	return;
bad:
	rg_warn("redis: a message on %.*s that no gateway wrote; ignored", (int)chan->len,
		chan->str);
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
		for (struct rg__held *h = r->held; h; h = h->next)
			rg__deliver(r, h->text, h->nlen, h->seq, h->ts, h->text + h->nlen, h->klen,
				    h->text + h->nlen + h->klen, h->len);
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

static void rg__on_scan(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rg_redis *r = priv;
	redisReply *rep = reply;
	int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
		 rep->element[0]->type == REDIS_REPLY_STRING &&
		 rep->element[1]->type == REDIS_REPLY_ARRAY;

	(void)ac;
	for (size_t i = 0; ok && i < rep->element[1]->elements; i++) {
		const redisReply *key = rep->element[1]->element[i];
		/* <prefix>{room}: a room's stream (its idempotency keys end otherwise) */
		if (key->type == REDIS_REPLY_STRING && key->len > r->prefix_len + 2 &&
		    key->str[key->len - 1] == '}' && rg__range(r, key))
			ok = 0;
	}
	if (ok && strcmp(rep->element[0]->str, "0")) {
		if (redisAsyncCommand(r->cmd.ac, rg__on_scan, r,
				      "SCAN %s MATCH %s TYPE stream COUNT " RG__SCAN_COUNT,
				      rep->element[0]->str, r->pattern) == REDIS_OK)
			r->sync_calls++;
		else
			ok = 0;
	}
	rg__sync_step(r, ok);
}

/* Catches up: every room stream in Redis is read back from where this node is
 * (rg__range), while pub/sub messages are held (rg__hold). Publishing waits for it
 * (rg__ready): at start, this loads every room's history, so a client resuming on
 * this node finds what it missed on another. */
static void rg__sync(struct rg_redis *r)
{
	r->syncing = 1;
	r->sync_failed = 0;
	r->dropped = r->junk = 0;
	if (redisAsyncCommand(r->cmd.ac, rg__on_scan, r,
			      "SCAN 0 MATCH %s TYPE stream COUNT " RG__SCAN_COUNT,
			      r->pattern) != REDIS_OK) {
		r->syncing = 0;
		rg__held_free(r);
		return;
	}
	r->sync_calls = 1;
}

static void rg__connect(struct rg_redis *r, struct rg__link *l)
{
	redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);

	if (!ac || ac->err) {
		rg__down(l, ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		return;
	}
	ac->data = l;
	l->ac = ac;
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
	r->sha[0] = '\0';
	redisAsyncCommand(ac, rg__on_script, r, "SCRIPT LOAD %s", rg__script);
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

	if (!rg__ready(e) || !r->sha[0])
		return -EAGAIN;
	struct rg__call *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	int slen = snprintf(stream, sizeof(stream), "%s{%s}", r->prefix, room->name);
	int klen = key ? snprintf(ikey, sizeof(ikey), "%s:k:%s", stream, key) : 0;
	int nlen = snprintf(keep, sizeof(keep), "%" PRIu32, room->conf->history);
	int tlen = snprintf(ts, sizeof(ts), "%" PRId64, rg_now_ms());
	const char *argv[] = {"EVALSHA", r->sha, key ? "2" : "1", stream, ikey,
			      keep,      ts,     key ? key : "",  data};
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

static void rg__on_pong(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rg_pub *p;

	(void)ac;
	(void)reply;
	rg__call_done(priv, &p);
}

/* Every second: a command link whose oldest command has waited RG__STALL_S is
 * dropped (Redis stopped, or the network between went silent: no FIN to say so);
 * an idle one is sent a PING, so that silence is seen without traffic too. */
static void rg__on_watch(struct ev_loop *ev, ev_timer *w, int revents)
{
	struct rg_redis *r = w->data;

	(void)revents;
	if (!r->cmd.ac)
		return;
	if (r->calls && ev_now(ev) - r->calls->sent >= RG__STALL_S) {
		rg__down(&r->cmd, "no reply for 3 s");
		rg__drop(&r->cmd);
		rg__drop(&r->sub);
		return;
	}
	if (r->calls || !r->cmd.up)
		return;
	struct rg__call *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->r = r;
	c->sent = ev_now(ev);
	if (redisAsyncCommand(r->cmd.ac, rg__on_pong, c, "PING") != REDIS_OK) {
		free(c);
		return;
	}
	DL_APPEND(r->calls, c);
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

static void rg__free(struct rg_engine *e)
{
	struct rg_redis *r = rg__of(e);

	ev_timer_stop(r->ev, &r->retry);
	ev_timer_stop(r->ev, &r->watch);
	r->closing = 1;
	rg__drop(&r->cmd);
	rg__drop(&r->sub);
	rg__held_free(r);
	free(r->password);
	free(r);
}

static const struct rg_engine_ops rg__ops = {
	.ready = rg__ready,
	.publish = rg__publish,
	.cancel = rg__cancel,
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
	r->cmd = (struct rg__link){.r = r, .name = "command"};
	r->sub = (struct rg__link){.r = r, .name = "pub/sub"};
	r->backoff = RG__BACKOFF_MIN;
	r->held_tail = &r->held;
	ev_init(&r->retry, rg__on_retry);
	r->retry.data = r;
	ev_timer_init(&r->watch, rg__on_watch, RG__WATCH_S, RG__WATCH_S);
	r->watch.data = r;
	ev_timer_start(loop, &r->watch);
	rg_notice("redis %s:%d: sharing rooms under the key prefix \"%s\"", r->host, r->port,
		  r->prefix);
	rg__connect(r, &r->cmd);
	rg__connect(r, &r->sub);
	return &r->base;
}
