/*
 * roomgate: command line, config loading, and handing over to the lws server.
 */
#include "config.h"
#include "log.h"

#include "../protocols/server.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef RG_VERSION
#define RG_VERSION "dev"
#endif

static void rg__usage(FILE *f)
{
	fprintf(f, "usage: roomgate [--config FILE] [--check-config] [--verbose]\n"
		   "       roomgate --config-keys | --version | --help\n\n"
		   "  -c, --config FILE   the JSON config (default config/roomgate.json)\n"
		   "  -t, --check-config  validate the config, print every error, exit 1 or 0\n"
		   "  -v, --verbose       log connections and lws notices too\n"
		   "  -k, --config-keys   print every config key (docs/CONFIG.md's table)\n"
		   "  -V, --version       print the version\n"
		   "  -h, --help          this text\n\n"
		   "Config keys: docs/CONFIG.md. Wire protocol: docs/PROTOCOL.md.\n");
}

static void rg__print_error(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "%s\n", line);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"check-config", no_argument, NULL, 't'},
					     {"verbose", no_argument, NULL, 'v'},
					     {"version", no_argument, NULL, 'V'},
					     {"help", no_argument, NULL, 'h'},
					     {"config-keys", no_argument, NULL, 'k'},
					     {NULL, 0, NULL, 0}};
	const char *path = "config/roomgate.json";
	int check = 0, c;

	while ((c = getopt_long(argc, argv, "c:tvVhk", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'v':
			rg_log_set_level(RG_LOG_INFO);
			break;
		case 'V':
			printf("roomgate %s\n", RG_VERSION);
			return 0;
		case 'h':
			rg__usage(stdout);
			return 0;
		case 'k': {
			char *doc = rg_config_doc();
			if (!doc) {
				fprintf(stderr, "roomgate: out of memory\n");
				return 1;
			}
			fputs(doc, stdout);
			free(doc);
			return 0;
		}
		default:
			rg__usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "roomgate: unexpected argument \"%s\"\n", argv[optind]);
		rg__usage(stderr);
		return 2;
	}

	struct rg_config *cfg = rg_config_load(path, rg__print_error, NULL);
	if (!cfg) {
		fprintf(stderr, "roomgate: %s: invalid configuration, not started\n", path);
		return 1;
	}
	if (check) {
		printf("%s: ok\n", path);
		rg_config_free(cfg);
		return 0;
	}
	int rc = rg_server_run(cfg);
	rg_config_free(cfg);
	return rc ? 1 : 0;
}
