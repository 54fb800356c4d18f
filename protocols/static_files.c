#include "static_files.h"

#include "../gateway/log.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static char rg__root[PATH_MAX];
static size_t rg__root_len;
static lws_fop_fd_t (*rg__open)(const struct lws_plat_file_ops *fops, const char *filename,
				const char *vpath, lws_fop_flags_t *flags);

static lws_fop_fd_t rg__confined_open(const struct lws_plat_file_ops *fops, const char *filename,
				      const char *vpath, lws_fop_flags_t *flags)
{
	char real[PATH_MAX];

	if (!realpath(filename, real) || strncmp(real, rg__root, rg__root_len) ||
	    (real[rg__root_len] != '/' && real[rg__root_len] != '\0'))
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
