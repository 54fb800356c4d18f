#include "srv.h"

#include <utlist.h>

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
}

/* In a utlist DL list every member's prev is set (the head's is the tail). */
static int rg__queued(const struct rg_wake *w)
{
	return w->prev != NULL;
}

static void rg__unlink(struct rg_wake *w)
{
	DL_DELETE(w->srv->pending, w);
	w->prev = w->next = NULL;
}

void rg_wake_flush(struct rg_srv *srv)
{
	while (srv->pending) {
		struct rg_wake *w = srv->pending;
		rg__unlink(w);
		lws_callback_on_writable(w->wsi);
	}
}

void rg_wake_on_window(struct ev_loop *ev, ev_timer *w, int revents)
{
	(void)ev;
	(void)revents;
	rg_wake_flush(w->data);
}

void rg_wake(void *owner)
{
	struct rg_wake *w = owner;
	struct rg_srv *srv = w->srv;

	if (!srv->cfg->coalesce_us) {
		lws_callback_on_writable(w->wsi);
		return;
	}
	if (rg__queued(w))
		return;
	if (!ev_is_active(&srv->flush)) {
		ev_timer_set(&srv->flush, srv->cfg->coalesce_us / 1e6, 0.);
		ev_timer_start(srv->ev, &srv->flush);
	}
	DL_PREPEND(srv->pending, w);
}

void rg_wake_doom(void *owner)
{
	struct rg_wake *w = owner;

	lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_OK, (int)w->srv->cfg->ws_ping_timeout_seconds);
	lws_callback_on_writable(w->wsi);
}

void rg_wake_cancel(struct rg_wake *w)
{
	if (rg__queued(w))
		rg__unlink(w);
}

void rg_rx_more(struct rg_srv *srv, struct lws *wsi, struct rg_rx_budget *b, size_t len)
{
	unsigned it = ev_iteration(srv->ev);

	if (b->iteration != it) {
		b->iteration = it;
		b->bytes = 0;
	}
	b->bytes += len;
	if (b->bytes < RG_RX_PASS_BYTES)
		ev_feed_fd_event(srv->ev, lws_get_socket_fd(wsi), EV_READ);
}

void rg_rx_resume(struct rg_srv *srv, struct lws *wsi)
{
	ev_feed_fd_event(srv->ev, lws_get_socket_fd(wsi), EV_READ);
}
