/*
 * Confinement of the static file mount: lws's file mount follows symlinks, so a link
 * inside web_root could serve any file the process can read. This wraps the context's
 * file open so that only files whose real path lies inside web_root open at all
 * (lws then answers 404). One web root per process.
 */
#ifndef RG_STATIC_FILES_H
#define RG_STATIC_FILES_H

#include <libwebsockets.h>

/* 0, or -1 when web_root cannot be resolved (reason logged). */
int rg_static_confine(struct lws_context *ctx, const char *web_root);

#endif
