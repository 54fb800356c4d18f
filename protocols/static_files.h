/*
 * The static file mount at "/": lws serves the files of http.web_root; this protocol,
 * bound to the mount, answers first what is not a file there, as the HTTP API does:
 * JSON not_found for a path that names no file, JSON method_not_allowed (Allow: GET,
 * HEAD) for any other method (lws would answer its own HTML pages, or, for a POST, hand
 * the body to nobody).
 *
 * It also confines the mount: lws's file mount follows symlinks, so a link inside
 * web_root could serve any file the process can read. rg_static_confine wraps the
 * context's file open so that only files whose real path lies inside web_root open at
 * all. One web root per process.
 */
#ifndef RG_STATIC_FILES_H
#define RG_STATIC_FILES_H

#include <libwebsockets.h>

/* 0, or -1 when web_root cannot be resolved (reason logged). */
int rg_static_confine(struct lws_context *ctx, const char *web_root);

extern const struct lws_protocols rg_static_protocol;

#endif
