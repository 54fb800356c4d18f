/*
 * A published message, stamped once and encoded once for every transport.
 *
 * One allocation holds the JSON object, the complete WebSocket frame around it and the
 * SSE event block. Messages are
 * immutable after rg_msg_new() and refcounted: the room ring holds one reference;
 * whoever else keeps a message takes rg_msg_ref() and drops it with rg_msg_unref().
 */
#ifndef RG_MESSAGE_H
#define RG_MESSAGE_H

#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

struct rg_msg {
	uint32_t refs;
	uint64_t seq;
	int64_t ts_ms;
	const unsigned char *ws; /* frame: header + json */
	size_t ws_len;
	const char *sse; /* "id: SEQ\nevent: message\ndata: JSON\n\n" */
	size_t sse_len;
	size_t sse_id_len; /* length of the leading "id: SEQ\n" line */
	const char *json;  /* the message object, inside the ws frame */
	size_t json_len;
	const char *data; /* the publisher's data, inside json */
	size_t data_len;
	const char *key;    /* idempotency key, or NULL */
	uint64_t end_bytes; /* its room's published weight up to and including it */
	UT_hash_handle hh;  /* in its room's key table when key is set */
	unsigned char buf[];
};

/* data is compact JSON text (one line); key an idempotency key or NULL; epoch the
 * gateway's (the SSE id is "EPOCH/SEQ"), or NULL (then "SEQ"). Returns NULL on
 * allocation failure. The new message holds one reference, the caller's. */
struct rg_msg *rg_msg_new(const char *room, const char *epoch, uint64_t seq, int64_t ts_ms,
			  const char *data, size_t data_len, const char *key);
struct rg_msg *rg_msg_ref(struct rg_msg *m);
/* What a message weighs against a connection's budget: its larger encoding. */
static inline size_t rg_msg_weight(const struct rg_msg *m)
{
	return m->sse_len > m->ws_len ? m->sse_len : m->ws_len;
}
void rg_msg_unref(struct rg_msg *m);

/* Wall clock in milliseconds since the epoch. */
int64_t rg_now_ms(void);

/* The same in whole seconds. Not time(): glibc reads a coarse clock there, up to a tick
 * behind the precise one, so at a second's turn a token another process just issued
 * from the precise clock would look issued in the future (seen in CI). */
static inline int64_t rg_unix_s(void)
{
	return rg_now_ms() / 1000;
}

#endif
