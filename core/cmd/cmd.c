/* cmd.c: the flag parser shared by every subcommand. */
#include "cmd.h"

#include <stdio.h>
#include <string.h>

#include "err.h"
#include "log.h"

static int takes_value(const char *name)
{
    return strcmp(name, "config") == 0 || strcmp(name, "data-dir") == 0 ||
           strcmp(name, "lua-dir") == 0 || strcmp(name, "tail") == 0;
}

static int allowed_flag(const char *allowed, const char *name)
{
    size_t n = strlen(name);
    const char *p = allowed;
    while ((p = strstr(p, name)) != NULL) {
        if ((p == allowed || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) {
            return 1;
        }
        p += n;
    }
    return 0;
}

int cmd_parse_flags(const char *cmd, int argc, char **argv, const char *allowed, cmd_flags *f)
{
    int usage = drv_err_exit_code(DRV_EUSAGE);
    memset(f, 0, sizeof *f);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            for (i++; i < argc && f->npos < 4; i++) {
                f->pos[f->npos++] = argv[i];
            }
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (f->npos == 4) {
                fprintf(stderr, "drvctl %s: too many arguments: \"%s\"\n", cmd, a);
                return usage;
            }
            f->pos[f->npos++] = a;
            continue;
        }
        char name[64];
        const char *value = NULL;
        const char *s = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(s, '=');
        size_t len = eq ? (size_t)(eq - s) : strlen(s);
        if (len >= sizeof name) {
            len = sizeof name - 1;
        }
        memcpy(name, s, len);
        name[len] = '\0';
        if (strcmp(name, "h") == 0 || strcmp(name, "help") == 0) {
            f->help = 1;
            continue;
        }
        if (strcmp(name, "log-json") == 0 && eq == NULL) {
            log_set_json(1); /* global: every command takes it */
            continue;
        }
        if (!allowed_flag(allowed, name)) {
            fprintf(stderr, "drvctl %s: unknown flag: \"%s\" (see drvctl help %s)\n", cmd, a, cmd);
            return usage;
        }
        if (takes_value(name)) {
            if (eq != NULL) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                fprintf(stderr, "drvctl %s: flag needs a value: \"%s\"\n", cmd, a);
                return usage;
            }
        }
        if (strcmp(name, "config") == 0) {
            f->config = value;
        } else if (strcmp(name, "data-dir") == 0) {
            f->data_dir = value;
        } else if (strcmp(name, "lua-dir") == 0) {
            f->lua_dir = value;
        } else if (strcmp(name, "json") == 0) {
            f->json = 1;
        } else if (strcmp(name, "detach") == 0) {
            f->detach = 1;
        } else if (strcmp(name, "f") == 0) {
            f->follow = 1;
        } else if (strcmp(name, "stderr") == 0) {
            f->stderr_stream = 1;
        } else if (strcmp(name, "tail") == 0) {
            f->tail = value;
        }
    }
    return 0;
}

void cmd_print_exit_codes(void)
{
    fputs("\nExit codes:\n", stdout);
    drv_err_fprint_exit_codes(stdout);
}
