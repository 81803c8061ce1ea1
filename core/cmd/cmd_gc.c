/*
 * cmd_gc.c: `drvctl gc`: carries out now what is due on this host:
 *  - alloc dirs and records (allocgc.h): those of allocs that ended, or
 *    whose owner process is gone, and that have no container left;
 *  - the image removals recorded in <data_dir>/state/images.json
 *    (docker.cleanup.image): images drvctl pulled or loaded whose last task
 *    ended at least docker.cleanup.image.delay ago, by the delay this
 *    command's agent config sets.
 *
 * Docker is asked only when there is something to decide: the containers
 * labelled drvctl.alloc_id (all states) when an alloc is a candidate, and
 * the image removals when images.json exists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "allocgc.h"
#include "buf.h"
#include "json.h"
#include "cmd.h"
#include "conf.h"
#include "docker.h"
#include "esc.h"
#include "http.h"
#include "imagerefs.h"
#include "script.h"
#include "log.h"

static void usage(void)
{
    printf("Usage: drvctl gc [-config FILE] [-data-dir DIR] [-lua-dir DIR] [-orphans] [-json]\n\n"
           "Carries out now what is due on this host:\n\n"
           "Allocs: every alloc recorded under <data_dir>/state/allocs/ that ended, or\n"
           "whose drvctl process is gone (killed: its pid is dead or reused), loses its\n"
           "alloc dir <data_dir>/alloc/<alloc_id> (task files, logs, artifacts), its stale\n"
           "bind pins and then its record, once Docker has no container labelled with\n"
           "its alloc id (any state). gc never removes a container: for an alloc that\n"
           "still has one it prints the `docker rm` command and keeps the alloc (also\n"
           "for containers kept on purpose by docker.cleanup.container = false). The\n"
           "alloc of a run that is still going is never touched. The removal follows\n"
           "no symlink and enters no other mount (reported and kept). Alloc dirs\n"
           "without a record (older versions) are reported and left unless -orphans\n"
           "is given. One line per removed alloc and a total go to stdout (-json: one\n"
           "JSON object).\n\n"
           "Images: the removals recorded under <data_dir>/state/images.json: images\n"
           "drvctl pulled or loaded whose last task ended at least\n"
           "docker.cleanup.image.delay ago (the delay of this command's agent config\n"
           "counts). An image that a container still uses is kept for later; images\n"
           "drvctl did not pull or load are never removed. References held by drvctl\n"
           "processes that are gone (a run killed with -9) count as released. With\n"
           "docker.cleanup.image = false no image is removed.\n\n"
           "Docker is asked only when there is something to decide. Messages go to\n"
           "stderr. The exit code is 0 when Docker answered, even if an alloc or image\n"
           "was kept; 69 when Docker is unreachable (nothing is removed then); 74 when\n"
           "an alloc dir could not be removed completely.\n");
    cmd_print_exit_codes();
}

typedef struct gc_run {
    uv_loop_t loop;
    http_client *http;
    docker *docker;
    imagerefs *refs;
    const agent_conf *agent;
    char state_dir[PATH_MAX];
    int images;                /* image removals to carry out */
    int list_allocs;           /* containers of candidate allocs to list */
    int listed;                /* ... listed */
    allocgc_container *cs;
    size_t ncs;
    int rc;
    drv_err err;
} gc_run;

static void on_refs_closed(void *ud)
{
    gc_run *g = ud;
    g->refs = NULL;
    http_client_close(g->http);
    g->http = NULL;
}

static void start_images(gc_run *g)
{
    if (!g->images) {
        http_client_close(g->http);
        g->http = NULL;
        return;
    }
    imagerefs_opts o = {
        .loop = &g->loop, .docker = g->docker, .state_dir = g->state_dir,
        .enabled = 1, .delay_ms = g->agent->cleanup_image_delay_ms,
    };
    g->rc = imagerefs_open(&g->refs, &o, &g->err);
    if (g->rc < 0) {
        http_client_close(g->http);
        g->http = NULL;
        return;
    }
    /* nothing later is waited for: the removals due now, until they end */
    imagerefs_close(g->refs, 0, on_refs_closed, g);
}

/* The containers labelled drvctl.alloc_id: alloc id, name, state. */
static int parse_containers(gc_run *g, const buf *body)
{
    json_val root;
    if (json_parse(body->data ? body->data : "", body->len, &root) < 0) {
        return -1;
    }
    if (root.t != JSON_ARR) {
        json_free(&root);
        return -1;
    }
    g->cs = drv_xcalloc(root.n + 1, sizeof *g->cs);
    for (size_t i = 0; i < root.n; i++) {
        const json_val *c = &root.v[i];
        const char *id = json_get_str(json_get(c, "Labels"), "drvctl.alloc_id");
        if (id == NULL) {
            continue;
        }
        allocgc_container *o = &g->cs[g->ncs++];
        o->alloc_id = drv_xstrdup(id);
        const json_val *names = json_get(c, "Names");
        const char *name = names != NULL && names->t == JSON_ARR && names->n > 0 &&
                           names->v[0].t == JSON_STR ? names->v[0].s : json_get_str(c, "Id");
        if (name != NULL && name[0] == '/') {
            name++;
        }
        o->name = drv_xstrdup(name != NULL ? name : "?");
        const char *st = json_get_str(c, "State");
        o->state = st != NULL ? drv_xstrdup(st) : NULL;
    }
    json_free(&root);
    return 0;
}

static void on_list(void *ud, http_req *r, int rc, long status, const buf *body,
                    const drv_err *err)
{
    gc_run *g = ud;
    (void)r;
    if (rc < 0) {
        g->rc = docker_unreachable(g->docker, err, &g->err);
    } else if (status != 200 || parse_containers(g, body) < 0) {
        g->rc = drv_err_set(&g->err, DRV_EDOCKER, "gc: docker: listing containers failed: "
                            "HTTP %ld", status);
    } else {
        g->listed = 1;
    }
    if (g->rc < 0) {
        http_client_close(g->http);
        g->http = NULL;
        return;
    }
    start_images(g);
}

static void on_ping(void *ud, int rc, const drv_err *err)
{
    gc_run *g = ud;
    if (rc < 0) {
        g->rc = rc;
        g->err = *err;
        http_client_close(g->http);
        g->http = NULL;
        return;
    }
    if (!g->list_allocs) {
        start_images(g);
        return;
    }
    docker_filter f[] = { { "label", "drvctl.alloc_id" }, { NULL, NULL } };
    docker_cb cb = { .on_done = on_list, .ud = g, .timeout_ms = 60000 };
    http_req *req;
    g->rc = docker_container_list(g->docker, 1, f, &cb, &req, &g->err);
    if (g->rc < 0) {
        http_client_close(g->http);
        g->http = NULL;
    }
}

/* Takes -orphans out of argv (the shared flag parser does not know it). */
static int take_orphans(int *argc, char **argv)
{
    int found = 0, k = 1;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "-orphans") == 0 || strcmp(argv[i], "--orphans") == 0) {
            found = 1;
            continue;
        }
        argv[k++] = argv[i];
    }
    *argc = k;
    return found;
}

int cmd_gc(int argc, char **argv)
{
    cmd_flags f;
    script *s = NULL;
    conf c;
    gc_run g;
    allocgc ag;
    struct stat sb;
    int orphans = take_orphans(&argc, argv);
    int rc = cmd_parse_flags("gc", argc, argv, "config,data-dir,lua-dir,json", &f);

    if (rc != 0) {
        return rc;
    }
    if (f.help) {
        usage();
        return 0;
    }
    if (f.npos != 0) {
        fprintf(stderr, "drvctl gc: unexpected argument: \"%s\" (see drvctl help gc)\n",
                f.pos[0]);
        return drv_err_exit_code(DRV_EUSAGE);
    }
    memset(&c, 0, sizeof c);
    memset(&g, 0, sizeof g);
    memset(&ag, 0, sizeof ag);
    drv_err_clear(&g.err);
    rc = script_open(&s, conf_lua_dir(f.lua_dir), &g.err);
    if (rc == 0) {
        rc = conf_load(&c, s, f.config, f.data_dir, &g.err);
        if (rc < 0 && c.problems.n > 0) {
            problems_print(&c.problems);
            g.err.msg[0] = '\0';
        }
    }
    g.agent = &c.agent;
    if (rc == 0 && (c.agent.data_dir == NULL ||
                    snprintf(g.state_dir, sizeof g.state_dir, "%s/state", c.agent.data_dir) >=
                        (int)sizeof g.state_dir)) {
        rc = drv_err_set(&g.err, DRV_ECONFIG, "gc: data_dir too long");
    }
    if (rc == 0) {
        rc = allocgc_scan(&ag, c.agent.data_dir, orphans, stderr, &g.err);
    }
    if (rc == 0) {
        char rec[PATH_MAX + 16];
        snprintf(rec, sizeof rec, "%s/images.json", g.state_dir);
        if (!c.agent.cleanup_image) {
            fprintf(stderr, "drvctl gc: docker.cleanup.image is false: no image is removed\n");
        } else {
            /* without a record no image was ever counted here */
            g.images = lstat(rec, &sb) == 0;
        }
        g.list_allocs = ag.n > 0;
    }
    if (rc == 0 && (g.images || g.list_allocs)) {
        uv_loop_init(&g.loop);
        docker_opts dopts = {
            .endpoint = c.agent.endpoint, .tls_ca = c.agent.tls_ca,
            .tls_cert = c.agent.tls_cert, .tls_key = c.agent.tls_key,
        };
        rc = http_client_new(&g.http, &g.loop, &g.err);
        if (rc == 0) {
            rc = docker_new(&g.docker, g.http, &dopts, &g.err);
        }
        if (rc == 0) {
            rc = docker_ping(g.docker, on_ping, &g, &g.err);
        }
        if (rc < 0) {
            http_client_close(g.http);
            g.http = NULL;
        }
        uv_run(&g.loop, UV_RUN_DEFAULT);
        uv_run(&g.loop, UV_RUN_DEFAULT);   /* close callbacks */
        uv_loop_close(&g.loop);
        docker_free(g.docker);
        if (rc == 0) {
            rc = g.rc;
        }
    }
    if (g.list_allocs && !g.listed) {
        fprintf(stderr, "drvctl gc: %zu alloc%s not removed: docker did not list their "
                "containers\n", ag.n, ag.n == 1 ? "" : "s");
    } else if (g.listed) {
        /* the image removals' outcome (rc) stays the exit code if they failed */
        drv_err e;
        int arc = allocgc_apply(&ag, g.cs, g.ncs, f.json, stdout, stderr, &e);
        if (arc < 0 && rc == 0) {
            rc = arc;
            g.err = e;
        }
    } else if (rc == 0 && f.json) {
        printf("{\"removed\":[],\"kept\":[],\"freed_bytes\":0}\n");
    }
    fflush(stdout);
    if (rc < 0 && g.err.msg[0] != '\0') {
        buf b = BUF_INIT;
        log_text(LOG_ERROR, esc_msg(&b, g.err.msg));
        buf_free(&b);
    }
    allocgc_containers_free(g.cs, g.ncs);
    allocgc_free(&ag);
    conf_free(&c);
    script_close(s);
    return rc < 0 ? drv_err_exit_code(rc) : 0;
}
