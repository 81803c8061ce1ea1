/*
 * err.h: error codes and the error struct every fallible function fills.
 *
 * Functions return 0 on success or a negative DRV_E* code, and write a human
 * message into an optional `drv_err *` (NULL is allowed everywhere).
 * The exit code table lives here too, so `drvctl --help`, README and the
 * code agree on one list.
 */
#ifndef DRV_ERR_H
#define DRV_ERR_H

#include <stddef.h>

/* XX(name, value, exit_code, default message) */
#define DRV_ERRNO_MAP(XX)                                                    \
    XX(USAGE,       -1, 64, "usage error")                                   \
    XX(SYNTAX,      -2, 65, "syntax error in input file")                    \
    XX(NOINPUT,     -3, 66, "input file missing or unreadable")              \
    XX(UNKNOWN,     -4, 67, "unknown option")                                \
    XX(INVALID,     -5, 68, "invalid value or wrong type")                   \
    XX(DOCKER,      -6, 69, "docker daemon unavailable")                     \
    XX(INTERNAL,    -7, 70, "internal error")                                \
    XX(MISSING,     -8, 71, "required field missing")                        \
    XX(DRIVER,      -9, 72, "unsupported task driver")                       \
    XX(IMAGE,      -10, 73, "image unavailable")                             \
    XX(ARTIFACT,   -11, 74, "artifact download or verification failed")      \
    XX(TASK,       -12, 75, "task could not be started")                     \
    XX(CONSTRAINT, -20, 76, "constraint not met on this node")               \
    XX(DENIED,     -13, 77, "denied by policy")                              \
    XX(CONFIG,     -14, 78, "invalid agent configuration")                   \
    XX(NOMEM,      -15, 70, "out of memory")                                 \
    XX(IO,         -16, 74, "i/o error")                                     \
    XX(HTTP,       -17, 69, "http transfer failed")                          \
    XX(CANCELED,   -18, 70, "operation canceled")                            \
    XX(NOTFOUND,   -19, 70, "not found")

enum {
#define XX(name, value, exit_code, msg) DRV_E##name = (value),
    DRV_ERRNO_MAP(XX)
#undef XX
};

/* Exit codes that are not tied to an error code. */
#define DRV_EXIT_OK          0
#define DRV_EXIT_HANGUP      129   /* stopped by SIGHUP (128 + 1)  */
#define DRV_EXIT_INTERRUPTED 130   /* stopped by SIGINT (128 + 2)  */
#define DRV_EXIT_QUIT        131   /* stopped by SIGQUIT (128 + 3) */
#define DRV_EXIT_TERMINATED  143   /* stopped by SIGTERM (128 + 15) */

#define DRV_ERR_MSG_MAX 1024

typedef struct drv_err {
    int code;                      /* a DRV_E* value, 0 when unset */
    char msg[DRV_ERR_MSG_MAX];     /* "origin: what went wrong: \"value\"" */
} drv_err;

/// Sets `err` (if not NULL) and returns `code`, so callers can
/// `return drv_err_set(err, DRV_EIO, "...")`.
int drv_err_set(drv_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/// Clears `err` (if not NULL).
void drv_err_clear(drv_err *err);

/// Returns the symbolic name of `code` ("DRV_EDOCKER"), or "DRV_E?" if unknown.
const char *drv_err_name(int code);

/// Returns the default message for `code`.
const char *drv_strerror(int code);

/// Returns the documented process exit code for `code` (70 for unknown codes).
int drv_err_exit_code(int code);

/// Prints the exit code table, one line per distinct exit code, for --help.
void drv_err_fprint_exit_codes(void *stream);

#endif
