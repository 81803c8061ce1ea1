/*
 * log.h: levelled diagnostics to stderr, "drvctl: " prefixed.
 * Log at the command boundary, not at every level.
 */
#ifndef DRV_LOG_H
#define DRV_LOG_H

#include "buf.h"

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/// Sets the lowest level printed (default LOG_INFO; DRVCTL_LOG=debug lowers it).
void log_set_level(int level);
int log_get_level(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/// DRVCTL_LOG_FORMAT=json or -log-json: one JSON object per line,
/// {"ts":"...Z","level":"warn","msg":"..."}, instead of "drvctl: ..." text.
void log_set_json(int on);
int log_get_json(void);

/// Prints an already formed message (no further escaping in text form):
/// "drvctl: TEXT" ("drvctl: warning: TEXT" for LOG_WARN), or as JSON.
/// For the messages commands used to print with fprintf(stderr, ...).
void log_text(int level, const char *text);

/// Appends `s` as the inside of a JSON string: '"' and '\\' escaped,
/// controls (C0, DEL, C1) as \u00XX, invalid UTF-8 bytes as U+FFFD.
void log_json_escape(buf *b, const char *s);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
