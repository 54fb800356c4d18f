/*
 * Logging to stderr, one line per call, prefixed with an UTC timestamp and level.
 * The single sink for the gateway and (through protocols/server.c) for lws itself.
 */
#ifndef RG_LOG_H
#define RG_LOG_H

enum rg_log_level { RG_LOG_ERR, RG_LOG_WARN, RG_LOG_NOTICE, RG_LOG_INFO };

/* Lines above this level are dropped; RG_LOG_NOTICE by default. */
void rg_log_set_level(enum rg_log_level max);
enum rg_log_level rg_log_get_level(void);

__attribute__((format(printf, 2, 3))) void rg_log(enum rg_log_level lvl, const char *fmt, ...);

#define rg_err(...)    rg_log(RG_LOG_ERR, __VA_ARGS__)
#define rg_warn(...)   rg_log(RG_LOG_WARN, __VA_ARGS__)
#define rg_notice(...) rg_log(RG_LOG_NOTICE, __VA_ARGS__)
#define rg_info(...)   rg_log(RG_LOG_INFO, __VA_ARGS__)

#endif
