#include "message.h"

#include "wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t rg_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct rg_msg *rg_msg_new(const char *room, const char *epoch, uint64_t seq, int64_t ts_ms,
			  const char *data, size_t data_len, const char *key)
{
	size_t key_len = key ? strlen(key) + 1 : 0;
	static const char sse_mid[] = "event: message\ndata: ";
	char head[256], id[64];
	/* Room names are validated to need no JSON escaping. */
	int hn = snprintf(head, sizeof(head),
			  "{\"type\":\"message\",\"room\":\"%s\",\"seq\":%" PRIu64
			  ",\"ts\":%" PRId64 ",\"data\":",
			  room, seq, ts_ms);
	int idn = snprintf(id, sizeof(id), "id: %s%s%" PRIu64 "\n", epoch ? epoch : "",
			   epoch ? "/" : "", seq);
	if (hn < 0 || (size_t)hn >= sizeof(head) || idn < 0)
		return NULL;

	size_t json_len = (size_t)hn + data_len + 1;
	size_t sse_len = (size_t)idn + sizeof(sse_mid) - 1 + json_len + 2;
	struct rg_msg *m = malloc(sizeof(*m) + RG_WS_HEADER_MAX + json_len + sse_len + key_len);
	if (!m)
		return NULL;

	unsigned char hdr[RG_WS_HEADER_MAX];
	size_t hl = rg_ws_text_header(hdr, json_len);
	unsigned char *ws = m->buf + RG_WS_HEADER_MAX - hl;
	memcpy(ws, hdr, hl);
	char *json = (char *)ws + hl;
	memcpy(json, head, (size_t)hn);
	memcpy(json + hn, data, data_len);
	json[json_len - 1] = '}';

	char *sse = json + json_len, *p = sse;
	memcpy(p, id, (size_t)idn);
	p += idn;
	memcpy(p, sse_mid, sizeof(sse_mid) - 1);
	p += sizeof(sse_mid) - 1;
	memcpy(p, json, json_len);
	p += json_len;
	memcpy(p, "\n\n", 2);
	p += 2;
	m->key = NULL;
	if (key) {
		memcpy(p, key, key_len);
		m->key = p;
	}

	m->refs = 1;
	m->seq = seq;
	m->ts_ms = ts_ms;
	m->ws = ws;
	m->ws_len = hl + json_len;
	m->json = json;
	m->json_len = json_len;
	m->data = json + hn;
	m->data_len = data_len;
	m->sse = sse;
	m->sse_len = sse_len;
	m->sse_id_len = (size_t)idn;
	return m;
}

struct rg_msg *rg_msg_ref(struct rg_msg *m)
{
	m->refs++;
	return m;
}

void rg_msg_unref(struct rg_msg *m)
{
	if (m && !--m->refs)
		free(m);
}
