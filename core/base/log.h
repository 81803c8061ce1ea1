/*
 * log.h: levelled diagnostics to stderr, "drvctl: " prefixed.
 * Log at the command boundary, not at every level.
 */
#ifndef DRV_LOG_H
#define DRV_LOG_H

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/// Sets the lowest level printed (default LOG_INFO; DRVCTL_LOG=debug lowers it).
void log_set_level(int level);
int log_get_level(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
