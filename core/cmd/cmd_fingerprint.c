/*
 * cmd_fingerprint.c: `drvctl fingerprint`: the node attributes Nomad's
 * client would report for this host and its docker driver (kernel.name,
 * cpu.*, memory.totalbytes, unique.*, driver.docker*), sorted, as
 * `name = value` lines or one JSON object of strings.
 *
 * The facts come from a fingerprint object (node.c, then GET /_ping, GET
 * /version when the ping names no version, GET /networks/bridge).
 * When Docker does not answer, the driver is undetected like in Nomad: the driver.docker
 * attributes are left out, a warning goes to stderr and the exit code is 0.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "buf.h"
#include "cmd.h"
#include "conf.h"
#include "fingerprint.h"
#include "node.h"
#include "script.h"
#include "log.h"

static void usage(void)
{
    printf("Usage: drvctl fingerprint [-json] [-config FILE] [-lua-dir DIR]\n\n"
           "Prints the node attributes of this host, as Nomad names them and as job\n"
           "constraints and ${attr.*} see them: kernel.name, kernel.version, os.name,\n"
           "os.version, cpu.arch, cpu.modelname, cpu.numcores, cpu.frequency,\n"
           "cpu.totalcompute, memory.totalbytes, unique.hostname,\n"
           "unique.network.ip-address and, when Docker answers, driver.docker,\n"
           "driver.docker.version and driver.docker.bridge_ip. One `name = value` line\n"
           "per attribute, sorted; -json prints one JSON object of strings instead.\n"
           "When Docker is unreachable the driver.docker attributes are left out and a\n"
           "warning is printed; the exit code is still 0.\n");
    cmd_print_exit_codes();
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                fprintf(out, "\\u%04x", *p);
            } else {
                fputc(*p, out);
            }
        }
    }
    fputc('"', out);
}

static void print_facts(const node_facts *f, int json)
{
    if (!json) {
        for (size_t i = 0; i < f->n; i++) {
            printf("%s = %s\n", f->v[i].name, f->v[i].value);
        }
        return;
    }
    fputs("{\n", stdout);
    for (size_t i = 0; i < f->n; i++) {
        fputs("  ", stdout);
        json_string(stdout, f->v[i].name);
        fputs(": ", stdout);
        json_string(stdout, f->v[i].value);
        fputs(i + 1 < f->n ? ",\n" : "\n", stdout);
    }
    fputs("}\n", stdout);
}

typedef struct fp_run {
    const conf *conf;
    int json;
} fp_run;

/* Docker answered or not (Nomad then marks the driver undetected; the
 * other attributes still count): print every fact. */
static void on_facts(void *ud, fingerprint *fp, int rc, const drv_err *err)
{
    fp_run *r = ud;
    const agent_conf *agent = &r->conf->agent;
    node_facts *facts = fingerprint_facts(fp);

    if (rc < 0) {
        /* first line only: the rest is advice on starting a daemon */
        const char *nl = strchr(err->msg, '\n');
        int len = nl ? (int)(nl - err->msg) : (int)strlen(err->msg);
        buf w = BUF_INIT;
        buf_appendf(&w, "docker driver not detected: %.*s", len, err->msg);
        log_text(LOG_WARN, buf_str(&w));
        buf_free(&w);
    }
    if (agent->cpu_total_compute > 0) {
        char v[32];
        snprintf(v, sizeof v, "%ld", agent->cpu_total_compute);
        node_facts_set(facts, "cpu.totalcompute", v);
    }
    if (node_facts_get(facts, "driver.docker") != NULL) {
        /* what the agent config decides, reported with the driver as Nomad does */
        node_facts_set(facts, "driver.docker.volumes.enabled",
                       agent->volumes_enabled ? "true" : "false");
        node_facts_set(facts, "driver.docker.privileged.enabled",
                       agent->privileged_enabled ? "true" : "false");
    }
    node_facts_sort(facts);
    print_facts(facts, r->json);
    fingerprint_free(fp);
}

int cmd_fingerprint(int argc, char **argv)
{
    cmd_flags f;
    drv_err err;
    script *s = NULL;
    conf c;
    fingerprint *fp = NULL;
    uv_loop_t loop;
    int rc = cmd_parse_flags("fingerprint", argc, argv, "json,config,lua-dir", &f);

    if (rc != 0) {
        return rc;
    }
    if (f.help) {
        usage();
        return 0;
    }
    if (f.npos != 0) {
        fprintf(stderr, "drvctl fingerprint: unexpected argument: \"%s\" (see drvctl help fingerprint)\n",
                f.pos[0]);
        return drv_err_exit_code(DRV_EUSAGE);
    }
    drv_err_clear(&err);
    memset(&c, 0, sizeof c);
    uv_loop_init(&loop);
    rc = script_open(&s, conf_lua_dir(f.lua_dir), &err);
    if (rc == 0) {
        rc = conf_load(&c, s, f.config, NULL, &err);
        if (rc < 0 && c.problems.n > 0) {
            problems_print(&c.problems);
            err.msg[0] = '\0';
        }
    }
    if (rc == 0) {
        rc = fingerprint_new(&fp, &loop, &c.agent, &err);
    }
    if (rc == 0) {
        fp_run r = { &c, f.json };
        rc = fingerprint_refresh(fp, s, 1, on_facts, &r, &err);
        if (rc < 0) {
            fingerprint_free(fp);
        }
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    if (rc < 0 && err.msg[0] != '\0') {
        log_text(LOG_ERROR, err.msg);
    }
    uv_run(&loop, UV_RUN_DEFAULT);   /* close callbacks */
    uv_loop_close(&loop);
    conf_free(&c);
    script_close(s);
    return rc < 0 ? drv_err_exit_code(rc) : 0;
}
