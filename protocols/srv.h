/*
 * State shared by the protocols of one gateway process, handed to each protocol as
 * the per-vhost option "rg-srv" (a pointer). Lives on the lws service thread only.
 */
#ifndef RG_SRV_H
#define RG_SRV_H

#include "../gateway/registry.h"

#include <libwebsockets.h>

struct rg_srv {
	const struct rg_config *cfg;
	struct rg_registry reg;
	/* One write buffer for every connection: writes happen one at a time on the
	 * loop, and lws copies whatever the kernel does not take at once. LWS_PRE
	 * bytes of headroom precede scratch_len usable bytes. */
	unsigned char *scratch;
	size_t scratch_len;
	unsigned streams; /* open WebSocket sessions and SSE streams */
	int stopping;     /* SIGTERM/SIGINT seen: close connections, accept nothing */
};

#define RG_SRV_PVO "rg-srv"

/* From a protocol's PROTOCOL_INIT (in: its options): keeps the server state as the
 * protocol's per-vhost data. 0, or -1 (no "rg-srv" option, no memory). */
int rg_srv_bind(struct lws *wsi, const void *in);
/* The server state of wsi's protocol on its vhost; NULL before PROTOCOL_INIT, as for
 * lws's vhost-wide events that come with a placeholder wsi. */
struct rg_srv *rg_srv_of(struct lws *wsi);

#endif
