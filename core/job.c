/* job.c: job file + agent config + host facts -> plan (via Lua). */
#include "job.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"
#include "ports.h"
#include "probe.h"

#ifndef DRV_LUADIR
#define DRV_LUADIR "/usr/local/share/drvctl/lua"
#endif
#ifndef DRV_POLICYDIR
#define DRV_POLICYDIR "/usr/local/share/drvctl/policies"
#endif

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Directory of the running binary, or "" if unknown. */
static const char *exe_dir(void)
{
    static char dir[PATH_MAX];
    if (dir[0] == '\0') {
        ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
        if (n <= 0) {
            return "";
        }
        dir[n] = '\0';
        char *slash = strrchr(dir, '/');
        if (slash != NULL) {
            *slash = '\0';
        }
    }
    return dir;
}

/* Source tree (lua/drv next to the binary) first, then the install path. */
static const char *find_dir(const char *override, const char *env, const char *sub,
                            const char *probe, const char *installed)
{
    static char found[2][PATH_MAX];
    static int slot;
    char probe_path[PATH_MAX];
    const char *e = env ? getenv(env) : NULL;

    if (override != NULL) {
        return override;
    }
    if (e != NULL && *e != '\0') {
        return e;
    }
    char *out = found[slot++ % 2];
    int n = snprintf(out, PATH_MAX, "%s/%s", exe_dir(), sub);
    int m = snprintf(probe_path, sizeof probe_path, "%s/%s", out, probe);
    if (n > 0 && n < PATH_MAX && m > 0 && (size_t)m < sizeof probe_path &&
        access(probe_path, R_OK) == 0) {
        return out;
    }
    return installed;
}

const char *job_lua_dir(const char *override)
{
    return find_dir(override, "DRVCTL_LUA_PATH", "lua", "drv/driver.lua", DRV_LUADIR);
}

static const char *policy_dir(void)
{
    const char *d = find_dir(NULL, NULL, "policies", ".", DRV_POLICYDIR);
    return is_dir(d) ? d : NULL;
}

int job_read_file(const char *path, const char *what, buf *out, drv_err *err)
{
    FILE *f = fopen(path, "rb");
    char chunk[65536];
    size_t n;

    if (f == NULL) {
        return drv_err_set(err, DRV_ENOINPUT, "%s: cannot read %s: %s", path, what, strerror(errno));
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        buf_append(out, chunk, n);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        return drv_err_set(err, DRV_ENOINPUT, "%s: cannot read %s", path, what);
    }
    if (out->data == NULL) {
        buf_append(out, "", 0);
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_lua(const char *dir, char ***names, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t cap = 0;

    *names = NULL;
    *n = 0;
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0 || e->d_name[0] == '.') {
            continue;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(*names, cap * sizeof *nv);
            if (nv == NULL) {
                abort();
            }
            *names = nv;
        }
        (*names)[(*n)++] = drv_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(*names, *n, sizeof **names, cmp_str);
    return 0;
}

void job_policy_sources_free(policy_sources *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        buf_free(&ps->texts[i]);
        free(ps->paths[i]);
    }
    free(ps->texts);
    free(ps->paths);
    free(ps->v);
    memset(ps, 0, sizeof *ps);
}

static int policy_sources_load(policy_sources *ps, const char *dflt, const char *ops, drv_err *err)
{
    char **dn = NULL, **on = NULL;
    size_t ndn = 0, non = 0;

    memset(ps, 0, sizeof *ps);
    if (dflt != NULL) {
        list_lua(dflt, &dn, &ndn);
    }
    if (ops != NULL && list_lua(ops, &on, &non) < 0) {
        return drv_err_set(err, DRV_ECONFIG, "agent config: policy_dir is not a readable directory: \"%s\"", ops);
    }
    size_t max = ndn + non;
    ps->texts = drv_xcalloc(max + 1, sizeof *ps->texts);
    ps->paths = drv_xcalloc(max + 1, sizeof *ps->paths);
    ps->v = drv_xcalloc(max + 1, sizeof *ps->v);
    int rc = 0;
    /* merge two sorted lists; an operator file replaces a default of the same name */
    size_t i = 0, k = 0;
    while (rc == 0 && (i < ndn || k < non)) {
        int from_ops;
        const char *name;
        if (i < ndn && k < non) {
            int c = strcmp(dn[i], on[k]);
            from_ops = c >= 0;
            name = from_ops ? on[k] : dn[i];
            if (c == 0) {
                i++;
            }
        } else {
            from_ops = k < non;
            name = from_ops ? on[k] : dn[i];
        }
        buf path = BUF_INIT;
        buf_appendf(&path, "%s/%s", from_ops ? ops : dflt, name);
        rc = job_read_file(buf_str(&path), "policy", &ps->texts[ps->n], err);
        ps->paths[ps->n] = drv_xstrdup(buf_str(&path));
        ps->v[ps->n].path = ps->paths[ps->n];
        ps->v[ps->n].text = buf_str(&ps->texts[ps->n]);
        ps->n++;
        buf_free(&path);
        if (from_ops) {
            k++;
        } else {
            i++;
        }
    }
    for (size_t x = 0; x < ndn; x++) {
        free(dn[x]);
    }
    for (size_t x = 0; x < non; x++) {
        free(on[x]);
    }
    free(dn);
    free(on);
    if (rc < 0) {
        rc = DRV_ECONFIG;
        err->code = rc;
    }
    return rc;
}

/* Points h->node at `f` (the array is allocated into *kv; free it). */
static void set_node(host_facts *h, const node_facts *f, script_kv **kv)
{
    *kv = drv_xcalloc(f->n + 1, sizeof **kv);
    for (size_t i = 0; i < f->n; i++) {
        (*kv)[i].key = f->v[i].name;
        (*kv)[i].value = f->v[i].value;
    }
    h->node = *kv;
    h->nnode = f->n;
}

void job_default_data_dir(char *out, size_t len)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    if (geteuid() == 0) {
        snprintf(out, len, "/var/lib/drvctl");
    } else if (xdg != NULL && *xdg == '/') {
        snprintf(out, len, "%s/drvctl", xdg);
    } else {
        snprintf(out, len, "%s/.local/state/drvctl", home ? home : "/tmp");
    }
}

static void random_seed(char out[33])
{
    unsigned char b[16];
    if (uv_random(NULL, NULL, b, sizeof b, 0, NULL) != 0) {
        /* never expected; fall back to time and pid so ids stay unique */
        uint64_t t = uv_hrtime() ^ ((uint64_t)getpid() << 32);
        memcpy(b, &t, 8);
        memcpy(b + 8, &t, 8);
    }
    for (int i = 0; i < 16; i++) {
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    }
}

int job_load(job *j, const job_args *a, drv_err *err)
{
    buf job_text = BUF_INIT, agent_text = BUF_INIT;
    char ddir[PATH_MAX], cwd[PATH_MAX], seed[33];
    policy_sources ps;
    int rc;

    memset(j, 0, sizeof *j);
    memset(&ps, 0, sizeof ps);
    rc = job_read_file(a->job_path, "job file", &job_text, err);
    if (rc == 0 && a->config_path != NULL) {
        rc = job_read_file(a->config_path, "agent config", &agent_text, err);
        if (rc < 0) {
            err->code = rc = DRV_ECONFIG;
        }
    }
    if (rc == 0) {
        rc = script_open(&j->script, job_lua_dir(a->lua_dir), err);
    }
    if (rc < 0) {
        goto done;
    }
    job_default_data_dir(ddir, sizeof ddir);
    if (getcwd(cwd, sizeof cwd) == NULL) {
        snprintf(cwd, sizeof cwd, "/");
    }
    random_seed(seed);
    host_facts h = {
        .default_data_dir = ddir,
        .data_dir = a->data_dir,
        .alloc_seed = seed,
        .docker_host = getenv("DOCKER_HOST"),
        .docker_tls_verify = getenv("DOCKER_TLS_VERIFY"),
        .docker_cert_path = getenv("DOCKER_CERT_PATH"),
        .cwd = cwd,
    };
    script_source agent_src = { a->config_path, agent_text.data };
    script_source job_src = { a->job_path, job_text.data };
    const script_source *agent_p = a->config_path ? &agent_src : NULL;

    rc = script_agent(j->script, agent_p, &h, &j->agent, &j->problems, err);
    if (rc < 0) {
        goto done;
    }
    rc = policy_sources_load(&ps, policy_dir(), j->agent.policy_dir, err);
    if (rc < 0) {
        goto done;
    }
    h.policies = ps.v;
    h.npolicies = ps.n;

    /* node facts, then pass 1: validate and map; collect port requests */
    rc = node_facts_gather(&j->node, j->agent.network_interface, err);
    if (rc < 0) {
        goto done;
    }
    script_kv *kv = NULL;
    set_node(&h, &j->node, &kv);
    h.network_ip = j->node.network_ip;
    h.skip_policies = 1;
    rc = script_plan(j->script, &job_src, agent_p, &h, &j->plan, &j->problems, err);
    h.skip_policies = 0;
    free(kv);
    if (rc < 0) {
        goto done;
    }

    /* Docker facts (constraints on driver.docker.*): required to run */
    drv_err derr;
    if (probe_docker(&j->agent, j->script, &j->node, &derr) == 0) {
        h.docker_facts = 1;
    } else if (a->mode == JOB_RUN) {
        if (err != NULL) {
            *err = derr;
        }
        rc = derr.code;
        goto done;
    } else {
        j->docker_warning = drv_xstrdup(derr.msg);
    }

    /* ports: reserved for run, only looked at for plan */
    size_t n = j->plan.nport_requests;
    j->ports = drv_xcalloc(n + 1, sizeof *j->ports);
    j->nports = n;
    for (size_t i = 0; i < n; i++) {
        j->ports[i].key = j->plan.port_requests[i].key;
        j->ports[i].static_port = j->plan.port_requests[i].static_port;
    }
    if (n > 0) {
        if (a->mode == JOB_RUN) {
            rc = ports_reserve(j->agent.data_dir, j->node.network_ip, j->agent.min_dynamic_port,
                               j->agent.max_dynamic_port, j->plan.port_requests[0].alloc_id,
                               j->ports, n, err);
            j->ports_reserved = rc == 0;
        } else {
            rc = ports_peek(j->agent.data_dir, j->node.network_ip, j->agent.min_dynamic_port,
                            j->agent.max_dynamic_port, j->ports, n, err);
        }
        if (rc < 0) {
            goto done;
        }
    }

    /* pass 2: the final plan, with Docker facts and real ports */
    script_port *sp = drv_xcalloc(n + 1, sizeof *sp);
    for (size_t i = 0; i < n; i++) {
        sp[i].key = j->ports[i].key;
        sp[i].port = j->ports[i].result;
    }
    h.ports = sp;
    h.nports = n;
    set_node(&h, &j->node, &kv);
    plan first = j->plan;
    memset(&j->plan, 0, sizeof j->plan);
    rc = script_plan(j->script, &job_src, agent_p, &h, &j->plan, &j->problems, err);
    free(kv);
    free(sp);
    /* the port keys point into the first plan: keep it until job_free */
    j->pass1 = drv_xmalloc(sizeof *j->pass1);
    *j->pass1 = first;
done:
    job_policy_sources_free(&ps);
    buf_free(&job_text);
    buf_free(&agent_text);
    return rc;
}

int job_policy_sources(policy_sources *ps, const char *ops_dir, drv_err *err)
{
    return policy_sources_load(ps, policy_dir(), ops_dir, err);
}

void job_free(job *j)
{
    if (j->ports_reserved) {
        ports_release(j->agent.data_dir, j->ports, j->nports);
    }
    free(j->ports);
    if (j->pass1 != NULL) {
        plan_free(j->pass1);
        free(j->pass1);
    }
    node_facts_free(&j->node);
    free(j->docker_warning);
    script_close(j->script);
    agent_conf_free(&j->agent);
    plan_free(&j->plan);
    problem_list_free(&j->problems);
    memset(j, 0, sizeof *j);
}

void job_print_problems(const job *j)
{
    for (size_t i = 0; i < j->problems.n; i++) {
        fprintf(stderr, "drvctl: %s\n", j->problems.messages[i]);
    }
}
