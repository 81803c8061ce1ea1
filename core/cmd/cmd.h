/*
 * cmd.h: subcommand entry points and the shared flag parser. Each command
 * returns the process exit code.
 */
#ifndef DRV_CMD_H
#define DRV_CMD_H

typedef struct cmd_flags {
    const char *config;
    const char *data_dir;
    const char *lua_dir;
    int json;
    int help;
    int detach;
    int follow;               /* -f */
    int stderr_stream;        /* -stderr */
    const char *tail;         /* -tail N (unchecked text) */
    const char *pos[4];       /* positional arguments */
    int npos;
} cmd_flags;

/// Parses "-flag value" / "--flag=value" forms. Returns 0, or 64 after
/// printing a usage error naming the bad flag. `allowed` lists the flags the
/// command takes, e.g. "config,data-dir,lua-dir".
int cmd_parse_flags(const char *cmd, int argc, char **argv, const char *allowed, cmd_flags *f);

/// Prints the exit-code table (for --help).
void cmd_print_exit_codes(void);

int cmd_run(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_fingerprint(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_logs(int argc, char **argv);

#endif
