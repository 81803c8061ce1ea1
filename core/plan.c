/* plan.c: ownership of plan, agent_conf and problem_list. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

void plan_free(plan *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->ntasks; i++) {
        plan_task *t = &p->tasks[i];
        free(t->job);
        free(t->group);
        free(t->task);
        free(t->alloc_id);
        free(t->name);
        free(t->image);
        free(t->load);
        free(t->pull);
        free(t->body);
        free(t->kill_signal);
        free(t->alloc_dir);
        free(t->log_dir);
        free_strv(t->dirs, t->ndirs);
        for (size_t j = 0; j < t->npins; j++) {
            free(t->pins[j].source);
            free(t->pins[j].root);
            free(t->pins[j].path);
            free(t->pins[j].staging);
        }
        free(t->pins);
        free(t->binds_dir);
        for (size_t j = 0; j < t->nartifacts; j++) {
            free(t->artifacts[j].source);
            free(t->artifacts[j].dest_dir);
            free(t->artifacts[j].task_dir);
            free(t->artifacts[j].dest);
            free(t->artifacts[j].local_path);
            free(t->artifacts[j].local_root);
            free(t->artifacts[j].checksum);
            free(t->artifacts[j].archive);
        }
        free(t->artifacts);
    }
    free(p->tasks);
    for (size_t i = 0; i < p->nport_requests; i++) {
        free(p->port_requests[i].key);
        free(p->port_requests[i].task);
        free(p->port_requests[i].label);
        free(p->port_requests[i].alloc_id);
    }
    free(p->port_requests);
    free_strv(p->warnings, p->nwarnings);
    free(p->json);
    memset(p, 0, sizeof *p);
}

void agent_conf_free(agent_conf *a)
{
    if (a == NULL) {
        return;
    }
    free(a->data_dir);
    free(a->endpoint);
    free(a->tls_ca);
    free(a->tls_cert);
    free(a->tls_key);
    free(a->policy_dir);
    free(a->network_interface);
    memset(a, 0, sizeof *a);
}

void problem_list_free(problem_list *l)
{
    if (l == NULL) {
        return;
    }
    free_strv(l->kinds, l->n);
    free_strv(l->messages, l->n);
    free(l->json);
    memset(l, 0, sizeof *l);
}

int problem_kind_code(const char *kind)
{
    static const struct { const char *kind; int code; } map[] = {
        { "syntax", DRV_ESYNTAX },   { "unknown", DRV_EUNKNOWN },
        { "type", DRV_EINVALID },    { "missing", DRV_EMISSING },
        { "driver", DRV_EDRIVER },   { "denied", DRV_EDENIED },
        { "config", DRV_ECONFIG },   { "noinput", DRV_ENOINPUT },
        { "constraint", DRV_ECONSTRAINT }, { "internal", DRV_EINTERNAL },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (kind != NULL && strcmp(kind, map[i].kind) == 0) {
            return map[i].code;
        }
    }
    return DRV_EINVALID;
}
