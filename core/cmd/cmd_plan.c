/* cmd_plan.c: `drvctl plan`: print the plan JSON; no Docker needed. */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cmd.h"
#include "planner.h"
#include "log.h"

static void usage(void)
{
    printf("Usage: drvctl plan [-config FILE] [-data-dir DIR] [-lua-dir DIR] JOBFILE\n\n"
           "Parses, validates and maps JOBFILE (Nomad HCL or API JSON) and prints, as\n"
           "JSON, every container that `run` would create: name, image, pull decision\n"
           "and the exact Docker create body, with every policy's verdict. When a\n"
           "policy denies a task, the JSON is printed all the same (the task marked\n"
           "\"verdict\": \"denied\"), the denials go to stderr and the exit code is 77.\n"
           "Changes nothing; needs no Docker daemon.\n");
    cmd_print_exit_codes();
}

int cmd_plan(int argc, char **argv)
{
    cmd_flags f;
    planned j;
    drv_err err;
    int rc = cmd_parse_flags("plan", argc, argv, "config,data-dir,lua-dir", &f);

    if (rc != 0) {
        return rc;
    }
    if (f.help) {
        usage();
        return 0;
    }
    if (f.npos != 1) {
        fprintf(stderr, "drvctl plan: expected one JOBFILE argument (see drvctl help plan)\n");
        return drv_err_exit_code(DRV_EUSAGE);
    }
    planner_args a = { .job_path = f.pos[0], .config_path = f.config, .data_dir = f.data_dir,
                       .lua_dir = f.lua_dir, .mode = PLANNER_PLAN };
    drv_err_clear(&err);
    rc = planner_plan_now(&a, &j, &err);
    if (rc < 0) {
        if (j.problems.json != NULL) {
            /* denied by policy: the plan with every verdict, then the denials */
            fputs(j.problems.json, stdout);
            fflush(stdout);
        }
        if (j.problems.n > 0) {
            problems_print(&j.problems);
        } else {
            log_text(LOG_ERROR, err.msg);
        }
        planned_free(&j);
        return drv_err_exit_code(rc);
    }
    if (j.docker_warning != NULL) {
        size_t len = strcspn(j.docker_warning, "\n");
        buf w = BUF_INIT;
        buf_appendf(&w, "%.*s; planning without driver.docker.* facts", (int)len,
                    j.docker_warning);
        log_text(LOG_WARN, buf_str(&w));
        buf_free(&w);
    }
    for (size_t i = 0; i < j.plan.nwarnings; i++) {
        log_text(LOG_WARN, j.plan.warnings[i]);
    }
    fputs(j.plan.json, stdout);
    fputc('\n', stdout);
    planned_free(&j);
    return 0;
}
