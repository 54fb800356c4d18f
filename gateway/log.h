/*
 * Logging to stderr, one line per call, prefixed with an UTC timestamp and level.
 * The single sink for the gateway and (through protocols/server.c) for lws itself.
 *
 * Bounded: remote peers cause most lines, so no peer may turn its bytes into more log
 * than an operator can keep. Past RG_LOG_BURST lines, at most RG_LOG_RATE lines a
 * second are written; the rest are counted and reported in one line
 * ("N log lines suppressed") by the next line written or by rg_log_flush().
 */
#ifndef RG_LOG_H
#define RG_LOG_H

enum rg_log_level { RG_LOG_ERR, RG_LOG_WARN, RG_LOG_NOTICE, RG_LOG_INFO };

/* Lines above this level are dropped; RG_LOG_NOTICE by default. */
void rg_log_set_level(enum rg_log_level max);
enum rg_log_level rg_log_get_level(void);

#define RG_LOG_BURST 200
#define RG_LOG_RATE  50

/* Reports lines suppressed since the last report, if any (called once a second). */
void rg_log_flush(void);

__attribute__((format(printf, 2, 3))) void rg_log(enum rg_log_level lvl, const char *fmt, ...);

#define rg_err(...)    rg_log(RG_LOG_ERR, __VA_ARGS__)
#define rg_warn(...)   rg_log(RG_LOG_WARN, __VA_ARGS__)
#define rg_notice(...) rg_log(RG_LOG_NOTICE, __VA_ARGS__)
#define rg_info(...)   rg_log(RG_LOG_INFO, __VA_ARGS__)

#endif
