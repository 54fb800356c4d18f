/*
 * roomgate: command line, config loading, and handing over to the lws server.
 */
#include "config.h"
#include "log.h"

#include "../engine/redis.h"
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
		   "  -v, --verbose       log.level info, whatever the config says\n"
		   "  -k, --config-keys   print every config key (docs/CONFIG.md's table)\n"
		   "  -V, --version       print the version\n"
		   "  -h, --help          this text\n\n"
		   "Config keys: docs/CONFIG.md. Wire protocol: docs/PROTOCOL.md.\n");
}

/* What loading the config said, kept until the log's format is known (a line that
 * cannot be kept is written at once). */
struct rg__said {
	char **lines;
	size_t n;
};

static void rg__keep_line(void *ctx, const char *line)
{
	struct rg__said *said = ctx;
	char **more = realloc(said->lines, (said->n + 1) * sizeof(*more));
	char *copy = strdup(line);

	if (more)
		said->lines = more;
	if (!more || !copy) {
		free(copy);
		fprintf(stderr, "%s\n", line);
		return;
	}
	said->lines[said->n++] = copy;
}

/* A config that loads has only warnings to say: in the log's format when it starts
 * (log.format json makes every line JSON); as they are for --check-config or a config
 * that does not load. */
static void rg__say(struct rg__said *said, int as_log)
{
	for (size_t i = 0; i < said->n; i++) {
		if (as_log)
			rg_warn("%s", said->lines[i]);
		else
			fprintf(stderr, "%s\n", said->lines[i]);
		free(said->lines[i]);
	}
	free(said->lines);
	said->lines = NULL;
	said->n = 0;
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
			rg_log_force_level(RG_LOG_INFO);
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

	struct rg__said said = {NULL, 0};
	struct rg_config *cfg = rg_config_load(path, rg__keep_line, &said);
	if (cfg && !check)
		rg_log_set_format((enum rg_log_format)cfg->log_format);
	rg__say(&said, cfg && !check);
	if (!cfg) {
		fprintf(stderr, "roomgate: %s: invalid configuration, not started\n", path);
		return 1;
	}
	if (check) {
		printf("%s: ok\n", path);
		rg_config_free(cfg);
		return 0;
	}
	int rc = rg_server_run(cfg, rg_redis_engine_new);
	rg_config_free(cfg);
	return rc ? 1 : 0;
}
