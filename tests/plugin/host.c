/*
 * A small libwebsockets server with no roomgate code in it: it loads every protocol
 * plugin in a directory with lws_plugins_init(), as any lws 4.1.6 server can, and
 * serves them on one plain vhost, giving the chat protocol its per-vhost option
 * "config". tests/integration/test_plugin.py drives it.
 *
 *   plugin_host PORT PLUGIN_DIR CONFIG.json
 */
#include <libwebsockets.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_PROTOCOLS 8

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

int main(int argc, char **argv)
{
	const struct lws_protocols *pprotocols[MAX_PROTOCOLS + 1] = {NULL};
	struct lws_context_creation_info info;
	struct lws_plugin *plugins = NULL;
	struct lws_context *ctx;
	int n = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: %s PORT PLUGIN_DIR CONFIG.json\n", argv[0]);
		return 2;
	}
	const char *dirs[] = {argv[2], NULL};
	struct lws_protocol_vhost_options config = {NULL, NULL, "config", argv[3]};
	struct lws_protocol_vhost_options pvo = {NULL, &config, "roomgate.v1", ""};

	lws_set_log_level(LLL_ERR | LLL_WARN | LLL_NOTICE, NULL);
	if (lws_plugins_init(&plugins, dirs, "lws_protocol_plugin", NULL, NULL, NULL) || !plugins) {
		fprintf(stderr, "plugin_host: no protocol plugin in %s\n", argv[2]);
		return 1;
	}
	for (struct lws_plugin *p = plugins; p; p = p->list) {
		const lws_plugin_protocol_t *pp = (const lws_plugin_protocol_t *)p->hdr;
		for (int i = 0; i < pp->count_protocols && n < MAX_PROTOCOLS; i++)
			pprotocols[n++] = &pp->protocols[i];
	}

	memset(&info, 0, sizeof(info));
	info.port = atoi(argv[1]);
	info.iface = "127.0.0.1";
	info.pprotocols = pprotocols;
	info.pvo = &pvo;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	ctx = lws_create_context(&info);
	if (!ctx) {
		fprintf(stderr, "plugin_host: cannot create the lws context\n");
		lws_plugins_destroy(&plugins, NULL, NULL);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fprintf(stderr, "plugin_host: serving %d protocol(s) on 127.0.0.1:%d\n", n, info.port);
	while (!interrupted && lws_service(ctx, 0) >= 0)
		;
	lws_context_destroy(ctx);
	lws_plugins_destroy(&plugins, NULL, NULL);
	return 0;
}
