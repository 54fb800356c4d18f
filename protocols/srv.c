#include "srv.h"

int rg_srv_bind(struct lws *wsi, const void *in)
{
	const struct lws_protocol_vhost_options *o =
		lws_pvo_search((const struct lws_protocol_vhost_options *)in, RG_SRV_PVO);
	struct rg_srv **slot = lws_protocol_vh_priv_zalloc(lws_get_vhost(wsi),
							   lws_get_protocol(wsi), sizeof(*slot));

	if (!o || !slot)
		return -1;
	*slot = (struct rg_srv *)(uintptr_t)o->value;
	return 0;
}

struct rg_srv *rg_srv_of(struct lws *wsi)
{
	struct rg_srv **slot = lws_protocol_vh_priv_get(lws_get_vhost(wsi), lws_get_protocol(wsi));
	return slot ? *slot : NULL;
}

void rg_wake_init(struct rg_wake *w, struct rg_srv *srv, struct lws *wsi)
{
	w->wsi = wsi;
	w->srv = srv;
	w->prev = w->next = NULL;
	w->queued = 0;
}

static void rg__unlink(struct rg_wake *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		w->srv->pending = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->queued = 0;
}

void rg_wake_flush(struct rg_srv *srv)
{
	while (srv->pending) {
		struct rg_wake *w = srv->pending;
		rg__unlink(w);
		lws_callback_on_writable(w->wsi);
	}
}

static void rg__on_flush(lws_sorted_usec_list_t *sul)
{
	rg_wake_flush(lws_container_of(sul, struct rg_srv, flush));
}

void rg_wake(void *owner)
{
	struct rg_wake *w = owner;
	struct rg_srv *srv = w->srv;

	if (!srv->cfg->coalesce_us) {
		lws_callback_on_writable(w->wsi);
		return;
	}
	if (w->queued)
		return;
	if (!srv->pending)
		lws_sul_schedule(srv->ctx, 0, &srv->flush, rg__on_flush,
				 (lws_usec_t)srv->cfg->coalesce_us);
	w->queued = 1;
	w->prev = NULL;
	w->next = srv->pending;
	if (srv->pending)
		srv->pending->prev = w;
	srv->pending = w;
}

void rg_wake_cancel(struct rg_wake *w)
{
	if (w->queued)
		rg__unlink(w);
}
