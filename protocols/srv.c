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
