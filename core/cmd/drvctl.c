/* drvctl.c: main(): the command table, top-level help and version. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "err.h"
#include "log.h"
#include "version.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
    const char *summary;
} command;

static int cmd_version(int argc, char **argv);

static const command commands[] = {
    { "run", cmd_run, "run [-config FILE] [-data-dir DIR] JOBFILE",
      "run a job in the foreground until its tasks end" },
    { "plan", cmd_plan, "plan [-config FILE] [-data-dir DIR] JOBFILE",
      "print what would be created (JSON); changes nothing, needs no Docker" },
    { "policy", cmd_policy, "policy check [-config FILE] [DIR]",
      "load and validate the policies (defaults overridden by DIR)" },
    { "fingerprint", cmd_fingerprint, "fingerprint [-json] [-config FILE]",
      "print this node's attributes (kernel, cpu, memory, network, driver.docker)" },
    { "gc", cmd_gc, "gc [-config FILE] [-data-dir DIR] [-orphans]",
      "remove ended allocs' dirs and records, and carry out due image removals, now" },
    { "logs", cmd_logs, "logs [-f] [-stderr] [-tail N] ALLOC TASK",
      "print a task's collected output from the data dir; -f follows it" },
    { "version", cmd_version, "version", "print the version" },
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_help(void)
{
    printf("drvctl %s: a Docker task driver with Nomad's docker driver semantics\n\n"
           "Usage: drvctl COMMAND [FLAGS] [ARGS]\n\nCommands:\n", DRV_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        printf("  %-48s %s\n", commands[i].usage, commands[i].summary);
    }
    printf("\nGlobal flags (after the command):\n"
           "  -config FILE    agent configuration (HCL): data_dir, client options, plugin config\n"
           "  -data-dir DIR   where alloc dirs and state live (default /var/lib/drvctl as root)\n"
           "  -lua-dir DIR    Lua modules (default: next to the binary, else the install path;\n"
           "                  also DRVCTL_LUA_PATH)\n"
           "  -log-json       diagnostics on stderr as one JSON object per line\n"
           "                  (ts, level, msg); also DRVCTL_LOG_FORMAT=json\n"
           "\nEnvironment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH (when no endpoint\n"
           "is configured), DRVCTL_LOG=debug for verbose diagnostics, DRVCTL_LOG_FORMAT=json\n"
           "for JSON diagnostics.\n"
           "\n`drvctl help COMMAND` or `drvctl COMMAND -h` shows one command.\n");
    cmd_print_exit_codes();
}

static const command *find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("drvctl %s (Docker API %s..%s)\n", DRV_VERSION, "1.24", "1.44");
    return 0;
}

int main(int argc, char **argv)
{
    const char *lvl = getenv("DRVCTL_LOG");
    if (lvl != NULL && strcmp(lvl, "debug") == 0) {
        log_set_level(LOG_DEBUG);
    }
    const char *fmt = getenv("DRVCTL_LOG_FORMAT");
    if (fmt != NULL && strcmp(fmt, "json") == 0) {
        log_set_json(1);
    }
    if (argc < 2) {
        print_help();
        return drv_err_exit_code(DRV_EUSAGE);
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-help") == 0) {
        print_help();
        return 0;
    }
    if (strcmp(name, "-v") == 0 || strcmp(name, "--version") == 0) {
        return cmd_version(0, NULL);
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            print_help();
            return 0;
        }
        const command *c = find(argv[2]);
        if (c == NULL) {
            fprintf(stderr, "drvctl: unknown command: \"%s\" (see drvctl --help)\n", argv[2]);
            return drv_err_exit_code(DRV_EUSAGE);
        }
        char *hargv[] = { (char *)(uintptr_t)c->name, (char *)(uintptr_t)"-h", NULL };
        return c->fn(2, hargv);
    }
    const command *c = find(name);
    if (c == NULL) {
        fprintf(stderr, "drvctl: unknown command: \"%s\" (see drvctl --help)\n", name);
        return drv_err_exit_code(DRV_EUSAGE);
    }
    return c->fn(argc - 1, argv + 1);
}
