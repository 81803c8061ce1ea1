/* cmd_policy.c: `drvctl policy check [DIR]`: load and validate policies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "job.h"

/* The agent config's policy_dir (NULL when it sets none); `text` keeps the
 * config's text for the policy_options check. */
static int agent_policy_dir(script *s, const char *config, char **out, buf *text, drv_err *err)
{
    agent_conf agent;
    problem_list probs;
    int rc = job_read_file(config, "agent config", text, err);

    *out = NULL;
    if (rc == 0) {
        script_source src = { config, buf_str(text), text->len };
        host_facts h;
        memset(&h, 0, sizeof h);
        rc = script_agent(s, &src, &h, &agent, &probs, err);
        if (rc == 0) {
            *out = agent.policy_dir;
            agent.policy_dir = NULL;
            agent_conf_free(&agent);
        } else {
            for (size_t i = 0; i < probs.n; i++) {
                fprintf(stderr, "drvctl: %s\n", probs.messages[i]);
            }
            problem_list_free(&probs);
        }
    }
    return rc < 0 ? DRV_ECONFIG : 0;
}

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
    policy_sources ps;
    script *s = NULL;
    problem_list probs;
    char *ops_dir = NULL;
    buf agent_text = BUF_INIT;
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
    rc = script_open(&s, job_lua_dir(f.lua_dir), &err);
    if (rc == 0 && f.config != NULL) {
        char *dir = NULL;
        rc = agent_policy_dir(s, f.config, &dir, &agent_text, &err);
        if (f.npos == 0) {
            ops_dir = dir;
        } else {
            free(dir);
        }
    }
    if (rc == 0) {
        rc = job_policy_sources(&ps, f.npos == 1 ? f.pos[0] : ops_dir, &err);
    }
    if (rc == 0) {
        script_source agent_src = { f.config, buf_str(&agent_text), agent_text.len };
        rc = script_check_policies(s, ps.v, ps.n, f.config != NULL ? &agent_src : NULL, &probs,
                                   &err);
    }
    if (rc == 0) {
        for (size_t i = 0; i < ps.n; i++) {
            printf("ok      %s\n", ps.v[i].path);
        }
        printf("%zu policies valid\n", ps.n);
    } else if (probs.n > 0) {
        for (size_t i = 0; i < probs.n; i++) {
            fprintf(stderr, "drvctl: %s\n", probs.messages[i]);
        }
        rc = DRV_ECONFIG;
    } else {
        fprintf(stderr, "drvctl: %s\n", err.msg);
    }
    problem_list_free(&probs);
    script_close(s);
    job_policy_sources_free(&ps);
    free(ops_dir);
    buf_free(&agent_text);
    return rc == 0 ? 0 : drv_err_exit_code(rc);
}
