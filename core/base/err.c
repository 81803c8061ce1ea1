/* err.c: error codes, messages and exit codes from one X-macro table. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int drv_err_set(drv_err *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void drv_err_clear(drv_err *err)
{
    if (err != NULL) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

const char *drv_err_name(int code)
{
    switch (code) {
#define XX(name, value, exit_code, msg) case DRV_E##name: return "DRV_E" #name;
    DRV_ERRNO_MAP(XX)
#undef XX
    default: return "DRV_E?";
    }
}

const char *drv_strerror(int code)
{
    switch (code) {
#define XX(name, value, exit_code, msg) case DRV_E##name: return msg;
    DRV_ERRNO_MAP(XX)
#undef XX
    default: return "unknown error";
    }
}

int drv_err_exit_code(int code)
{
    switch (code) {
#define XX(name, value, exit_code, msg) case DRV_E##name: return exit_code;
    DRV_ERRNO_MAP(XX)
#undef XX
    default: return 70;
    }
}

void drv_err_fprint_exit_codes(void *stream)
{
    FILE *f = stream;
    static const struct { int exit_code; const char *msg; } rows[] = {
#define XX(name, value, exit_code, msg) { exit_code, msg },
        DRV_ERRNO_MAP(XX)
#undef XX
    };
    int seen[256] = { 0 };

    fprintf(f, "  %3d  success (run: every task exited 0)\n", DRV_EXIT_OK);
    fprintf(f, "  1-255 run: the first non-zero task exit code\n");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int c = rows[i].exit_code;
        if (seen[c]) {
            continue;
        }
        seen[c] = 1;
        fprintf(f, "  %3d  %s\n", c, rows[i].msg);
    }
    fprintf(f, "  %3d  hung up by SIGHUP: closed terminal (tasks stopped, containers removed)\n",
            DRV_EXIT_HANGUP);
    fprintf(f, "  %3d  interrupted by SIGINT (tasks stopped, containers removed)\n",
            DRV_EXIT_INTERRUPTED);
    fprintf(f, "  %3d  quit by SIGQUIT (tasks stopped, containers removed)\n",
            DRV_EXIT_QUIT);
    fprintf(f, "  %3d  terminated by SIGTERM (tasks stopped, containers removed)\n",
            DRV_EXIT_TERMINATED);
}
