/*
 * credhelper.h: runs one Docker credential helper, `docker-credential-<name>
 * get`, through libuv: never a shell; the name is checked (no '/', so only
 * PATH can supply the program); the input is written on stdin, which is
 * then closed; stdout and stderr are captured up to a cap; a timeout kills
 * the helper's whole process group (it runs in a session of its own). It
 * inherits the environment but no descriptor besides its three pipes.
 *
 * stdout may hold secrets: it is handed to the caller only, never put into
 * a message. Errors name the helper and quote its stderr (escaped, cut).
 */
#ifndef DRV_CREDHELPER_H
#define DRV_CREDHELPER_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"
#include "err.h"

#define CREDHELPER_TIMEOUT_MS 10000L       /* when the caller gives 0 */
#define CREDHELPER_OUTPUT_MAX (64 * 1024)  /* bytes kept of stdout and of stderr */

typedef struct credhelper credhelper;

typedef struct credhelper_result {
    long exit_status;        /* the helper exited with this status */
    buf out;                 /* stdout: may hold secrets (zeroed when freed) */
    buf err;                 /* stderr, the first CREDHELPER_OUTPUT_MAX bytes */
    int err_truncated;       /* stderr was longer */
} credhelper_result;

/// rc 0: the helper exited (any status) and `res` holds what it said.
/// rc < 0 (DRV_EIMAGE): it could not run, timed out, was killed by a
/// signal or wrote more than CREDHELPER_OUTPUT_MAX bytes on stdout; `err`
/// says so, naming the helper, with its stderr. Called once, from the loop;
/// `res` and `err` are valid during the call only.
typedef void (*credhelper_cb)(void *ud, int rc, const credhelper_result *res,
                              const drv_err *err);

/// 1 when `name` is an acceptable helper suffix: [a-z0-9][a-z0-9._-]*, at
/// most 100 bytes.
int credhelper_name_ok(const char *name);

/// Starts `docker-credential-<name> get` with `input` on stdin.
/// timeout_ms 0: CREDHELPER_TIMEOUT_MS. On failure to start returns < 0
/// and `cb` is never called.
int credhelper_run(uv_loop_t *loop, const char *name, const char *input, long timeout_ms,
                   credhelper_cb cb, void *ud, credhelper **out, drv_err *err);

/// Kills the helper (SIGKILL to its process group); `cb` is not called.
/// The memory is freed once the process is reaped and every handle closed.
void credhelper_cancel(credhelper *h);

#endif
