#include "static_files.h"

#include "http_reply.h"
#include "srv.h"

#include "../gateway/log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct pss__rg_static {
	struct rg_http_reply reply;
};

static char rg__root[PATH_MAX];
static size_t rg__root_len;
static lws_fop_fd_t (*rg__open)(const struct lws_plat_file_ops *fops, const char *filename,
				const char *vpath, lws_fop_flags_t *flags);

/* 1 if real lies inside the web root. */
static int rg__inside(const char *real)
{
	return !strncmp(real, rg__root, rg__root_len) &&
	       (real[rg__root_len] == '/' || real[rg__root_len] == '\0');
}

static lws_fop_fd_t rg__confined_open(const struct lws_plat_file_ops *fops, const char *filename,
				      const char *vpath, lws_fop_flags_t *flags)
{
	char real[PATH_MAX];

	if (!realpath(filename, real) || !rg__inside(real))
		return NULL;
	return rg__open(fops, filename, vpath, flags);
}

int rg_static_confine(struct lws_context *ctx, const char *web_root)
{
	struct lws_plat_file_ops *fops = lws_get_fops(ctx);

	if (!realpath(web_root, rg__root)) {
		rg_err("http.web_root \"%s\": %s", web_root, strerror(errno));
		return -1;
	}
	rg__root_len = strlen(rg__root);
	if (fops->LWS_FOP_OPEN != rg__confined_open) {
		rg__open = fops->LWS_FOP_OPEN;
		fops->LWS_FOP_OPEN = rg__confined_open;
	}
	return 0;
}

/* Whether lws will find a file for path (the URI, decoded, under the mount "/"): the
 * file it opens (index.html for a path ending in '/'), regular, inside the root; its
 * size in *size. */
static int rg__is_file(const char *path, off_t *size)
{
	char file[PATH_MAX], real[PATH_MAX];
	size_t n = strlen(path);
	struct stat st;

	if (!rg__root_len || snprintf(file, sizeof(file), "%s%s%s", rg__root, path,
				      !n || path[n - 1] == '/' ? (n ? "index.html" : "/index.html")
							       : "") >= (int)sizeof(file))
		return 0;
	if (!realpath(file, real) || !rg__inside(real) || stat(real, &st) || !S_ISREG(st.st_mode))
		return 0;
	*size = st.st_size;
	return 1;
}

static int rg__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len)
{
	struct pss__rg_static *pss = user;
	struct rg_srv *srv = rg_srv_of(wsi);
	int ret;

	if (rg_srv_lifecycle(wsi, reason, in, &ret))
		return ret;
	switch (reason) {
	case LWS_CALLBACK_CHECK_ACCESS_RIGHTS: {
		/* lws asks before it serves the file; final = 1: answered here. */
		struct lws_process_html_args *args = in;
		char *uri;
		int ulen, meth = lws_http_get_uri_and_method(wsi, &uri, &ulen);
		off_t size = 0;

		rg_http_reply_clear(&pss->reply);
		rg_http_reply_begin(wsi, &pss->reply, "http");
		if (meth != LWSHUMETH_GET && meth != LWSHUMETH_HEAD) {
			args->final = 1;
			pss->reply.close_after = 1; /* a body may follow, unread */
			return rg_http_reply_error(wsi, &pss->reply, RG_E_METHOD_NOT_ALLOWED,
						   "static files take GET and HEAD", "GET, HEAD");
		}
		if (!rg__is_file(uri, &size)) {
			args->final = 1;
			return rg_http_reply_error(wsi, &pss->reply, RG_E_NOT_FOUND, "no such path",
						   NULL);
		}
		/* lws serves it from here: the answer is decided, and its line written
		 * now (4.1.6 tells HTTP_FILE_COMPLETION with another user space) */
		rg_http_reply_access(wsi, &pss->reply, HTTP_STATUS_OK,
				     meth == LWSHUMETH_HEAD ? 0 : (size_t)size);
		return 0;
	}
	case LWS_CALLBACK_ADD_HEADERS: {
		/* a page on an allowed origin may load these files too (an ES module
		 * from another origin needs CORS) */
		struct lws_process_html_args *args = in;
		unsigned char *p = (unsigned char *)args->p, *end = p + args->max_len;
		if (srv && rg_http_origin(wsi, srv->cfg) > 0) {
			if (rg_http_cors_headers(wsi, &p, end))
				return 1;
			args->p = (char *)p;
		}
		break;
	}
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
	case LWS_CALLBACK_HTTP_WRITEABLE:
		/* the body of a refused POST, unread: lws's default would end an HTTP/2
		 * stream at its end, before the refusal's body went out */
		if (rg_http_reply_service(wsi, reason, &pss->reply, &ret))
			return ret;
		break;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		rg_http_reply_clear(&pss->reply);
		break;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

const struct lws_protocols rg_static_protocol = {
	.name = "rg-static",
	.callback = rg__callback,
	.per_session_data_size = sizeof(struct pss__rg_static),
};
