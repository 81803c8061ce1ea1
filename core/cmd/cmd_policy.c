/* cmd_policy.c: `drvctl policy check [DIR]`: load and validate policies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "conf.h"
#include "policyset.h"
#include "log.h"

static void usage(void)
{
    printf("Usage: drvctl policy check [-config FILE] [-lua-dir DIR] [DIR]\n\n"
           "Loads every policy (the shipped defaults overridden by file name from DIR,\n"
           "or from the agent's policy_dir when DIR is not given) in its sandbox,\n"
           "validates its shape and prints each problem as file:line: message.\n"
           "With -config, the agent's policy_options must name loaded policies and\n"
           "their declared settings.\n"
           "Exits 0 when every policy is valid, 78 otherwise.\n");
    cmd_print_exit_codes();
}

int cmd_policy(int argc, char **argv)
{
    cmd_flags f;
    drv_err err;
    policyset ps;
    conf c;
    script *s = NULL;
    problem_list probs;
    const char *ops_dir = NULL;
    int rc;

    if (argc < 2 || strcmp(argv[1], "check") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
            usage();
            return 0;
        }
        fprintf(stderr, "drvctl policy: expected the subcommand \"check\" (see drvctl help policy)\n");
        return drv_err_exit_code(DRV_EUSAGE);
    }
    rc = cmd_parse_flags("policy check", argc - 1, argv + 1, "config,lua-dir", &f);
    if (rc != 0) {
        return rc;
    }
    if (f.help) {
        usage();
        return 0;
    }
    if (f.npos > 1) {
        fprintf(stderr, "drvctl policy check: expected at most one DIR argument\n");
        return drv_err_exit_code(DRV_EUSAGE);
    }
    drv_err_clear(&err);
    memset(&probs, 0, sizeof probs);
    memset(&ps, 0, sizeof ps);
    memset(&c, 0, sizeof c);
    rc = script_open(&s, conf_lua_dir(f.lua_dir), &err);
    if (rc == 0 && f.config != NULL) {
        /* the agent's policy_dir, unless DIR is given; its policy_options are checked */
        rc = conf_load(&c, s, f.config, NULL, &err);
        if (rc < 0) {
            problems_print(&c.problems);
            rc = DRV_ECONFIG;
        } else if (f.npos == 0) {
            ops_dir = c.agent.policy_dir;
        }
    }
    if (rc == 0) {
        rc = policyset_load(&ps, f.npos == 1 ? f.pos[0] : ops_dir, &err);
    }
    if (rc == 0) {
        rc = script_check_policies(s, ps.v, ps.n, conf_source(&c), &probs, &err);
    }
    if (rc == 0) {
        for (size_t i = 0; i < ps.n; i++) {
            printf("ok      %s\n", ps.v[i].path);
        }
        printf("%zu policies valid\n", ps.n);
    } else if (probs.n > 0) {
        for (size_t i = 0; i < probs.n; i++) {
            log_text(LOG_ERROR, probs.messages[i]);
        }
        rc = DRV_ECONFIG;
    } else {
        log_text(LOG_ERROR, err.msg);
    }
    problem_list_free(&probs);
    script_close(s);
    policyset_free(&ps);
    conf_free(&c);
    return rc == 0 ? 0 : drv_err_exit_code(rc);
}
