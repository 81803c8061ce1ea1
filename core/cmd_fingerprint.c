/*
 * cmd_fingerprint.c: `drvctl fingerprint`: the node attributes Nomad's
 * client would report for this host and its docker driver (kernel.name,
 * cpu.*, memory.totalbytes, unique.*, driver.docker*), sorted, as
 * `name = value` lines or one JSON object of strings.
 *
 * Docker facts come from probe_docker (GET /version, GET /networks/bridge).
 * When Docker does not answer, the driver is undetected like in Nomad: the driver.docker
 * attributes are left out, a warning goes to stderr and the exit code is 0.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cmd.h"
#include "job.h"
#include "node.h"
#include "probe.h"
#include "script.h"

/* Until cmd.h declares it. */

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

/* Adds driver.docker* to `facts`, or leaves them out and warns (Nomad
 * marks the driver undetected; the other attributes still count). */
static void docker_facts(script *s, const agent_conf *agent, node_facts *facts)
{
    drv_err err;
    drv_err_clear(&err);
    if (probe_docker(agent, s, facts, 1, NULL, &err) < 0) {
        /* first line only: the rest is advice on starting a daemon */
        const char *nl = strchr(err.msg, '\n');
        int len = nl ? (int)(nl - err.msg) : (int)strlen(err.msg);
        fprintf(stderr, "drvctl: warning: docker driver not detected: %.*s\n", len, err.msg);
    }
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

/* driver.agent on the -config file (or defaults). Prints problems itself. */
static int load_agent(script *s, const char *config_path, agent_conf *agent, drv_err *err)
{
    buf text = BUF_INIT;
    char ddir[PATH_MAX], cwd[PATH_MAX];
    problem_list probs;
    int rc = 0;

    if (config_path != NULL) {
        rc = job_read_file(config_path, "agent config", &text, err);
        if (rc < 0) {
            buf_free(&text);
            err->code = DRV_ECONFIG;    /* keep the message naming the file */
            return DRV_ECONFIG;
        }
    }
    job_default_data_dir(ddir, sizeof ddir);
    if (getcwd(cwd, sizeof cwd) == NULL) {
        snprintf(cwd, sizeof cwd, "/");
    }
    host_facts h = {
        .default_data_dir = ddir,
        .alloc_seed = "00000000000000000000000000000000",
        .docker_host = getenv("DOCKER_HOST"),
        .docker_tls_verify = getenv("DOCKER_TLS_VERIFY"),
        .docker_cert_path = getenv("DOCKER_CERT_PATH"),
        .cwd = cwd,
    };
    script_source src = { config_path, text.data, text.len };
    rc = script_agent(s, config_path ? &src : NULL, &h, agent, &probs, err);
    if (rc < 0 && probs.n > 0) {
        for (size_t i = 0; i < probs.n; i++) {
            fprintf(stderr, "drvctl: %s\n", probs.messages[i]);
        }
        err->msg[0] = '\0';
    }
    problem_list_free(&probs);
    buf_free(&text);
    return rc;
}

int cmd_fingerprint(int argc, char **argv)
{
    cmd_flags f;
    drv_err err;
    script *s = NULL;
    agent_conf agent;
    node_facts facts;
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
    memset(&agent, 0, sizeof agent);
    memset(&facts, 0, sizeof facts);
    rc = script_open(&s, job_lua_dir(f.lua_dir), &err);
    if (rc == 0) {
        rc = load_agent(s, f.config, &agent, &err);
    }
    if (rc == 0) {
        rc = node_facts_gather(&facts, agent.network_interface, &err);
    }
    if (rc < 0) {
        if (err.msg[0] != '\0') {
            fprintf(stderr, "drvctl: %s\n", err.msg);
        }
    } else {
        if (agent.cpu_total_compute > 0) {
            char v[32];
            snprintf(v, sizeof v, "%ld", agent.cpu_total_compute);
            node_facts_set(&facts, "cpu.totalcompute", v);
        }
        docker_facts(s, &agent, &facts);
        if (node_facts_get(&facts, "driver.docker") != NULL) {
            /* what the agent config decides, reported with the driver as Nomad does */
            node_facts_set(&facts, "driver.docker.volumes.enabled",
                           agent.volumes_enabled ? "true" : "false");
            node_facts_set(&facts, "driver.docker.privileged.enabled",
                           agent.privileged_enabled ? "true" : "false");
        }
        node_facts_sort(&facts);
        print_facts(&facts, f.json);
    }
    node_facts_free(&facts);
    agent_conf_free(&agent);
    script_close(s);
    return rc < 0 ? drv_err_exit_code(rc) : 0;
}
