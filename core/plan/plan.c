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

/* Credentials: overwritten before the memory goes back. */
static void free_secret(char *s)
{
    if (s != NULL) {
        volatile char *v = s;
        while (*v != '\0') {
            *v++ = '\0';
        }
        free(s);
    }
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? drv_xstrdup(s) : NULL;
}

static char **dup_strv(char **v, size_t n)
{
    if (v == NULL) {
        return NULL;
    }
    char **out = drv_xcalloc(n + 1, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        out[i] = dup_or_null(v[i]);
    }
    return out;
}

/* JSON string (NULL: null), escaping what JSON requires. */
static void json_str(buf *out, const char *s)
{
    if (s == NULL) {
        buf_puts(out, "null");
        return;
    }
    buf_puts(out, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            buf_appendf(out, "\\%c", *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            buf_appendf(out, "\\u%04x", *p);
        } else {
            buf_append(out, p, 1);
        }
    }
    buf_puts(out, "\"");
}

/* Generated from the spec.h field lists. */
#define FREE_S(n) free(x->n);
#define FREE_I(n, type, d)
#define FREE_B(n)
#define FREE_V(n, count) free_strv(x->n, x->count);
#define FREE_SECRET(n) free_secret(x->n);

#define COPY_S(n) d->n = dup_or_null(s->n);
#define COPY_I(n, type, dflt) d->n = s->n;
#define COPY_B(n) d->n = s->n;
#define COPY_V(n, count) d->n = dup_strv(s->n, s->count); d->count = s->count;

#define JSON_S(n) buf_puts(out, sep); sep = ","; buf_puts(out, "\"" #n "\":"); json_str(out, x->n);
#define JSON_I(n, type, d) buf_puts(out, sep); sep = ","; \
    buf_appendf(out, "\"" #n "\":%lld", (long long)x->n);
#define JSON_B(n) buf_puts(out, sep); sep = ","; \
    buf_appendf(out, "\"" #n "\":%s", x->n ? "true" : "false");
#define JSON_V(n, count) buf_puts(out, sep); sep = ","; buf_puts(out, "\"" #n "\":["); \
    for (size_t i_ = 0; i_ < x->count; i_++) { \
        if (i_ > 0) buf_puts(out, ","); \
        json_str(out, x->n[i_]); \
    } \
    buf_puts(out, "]");

static void pin_free(plan_pin *x) { PLAN_PIN_FIELDS(FREE_S, FREE_I, FREE_B, FREE_V) }
static void artifact_free(plan_artifact *x) { PLAN_ARTIFACT_FIELDS(FREE_S, FREE_I, FREE_B, FREE_V) }
static void pin_copy(plan_pin *d, const plan_pin *s) { PLAN_PIN_FIELDS(COPY_S, COPY_I, COPY_B, COPY_V) }
static void artifact_copy(plan_artifact *d, const plan_artifact *s)
{
    PLAN_ARTIFACT_FIELDS(COPY_S, COPY_I, COPY_B, COPY_V)
}

static void pin_json(const plan_pin *x, buf *out)
{
    const char *sep = "{";
    PLAN_PIN_FIELDS(JSON_S, JSON_I, JSON_B, JSON_V)
    (void)sep;   /* the last field's separator update */
    buf_puts(out, "}");
}

static void artifact_json(const plan_artifact *x, buf *out)
{
    const char *sep = "{";
    PLAN_ARTIFACT_FIELDS(JSON_S, JSON_I, JSON_B, JSON_V)
    (void)sep;   /* the last field's separator update */
    buf_puts(out, "}");
}

void plan_task_free(plan_task *x)
{
    if (x == NULL) {
        return;
    }
    PLAN_TASK_FIELDS(FREE_S, FREE_I, FREE_B, FREE_V)
    PLAN_TASK_SECRETS(FREE_SECRET)
    for (size_t j = 0; j < x->npins; j++) {
        pin_free(&x->pins[j]);
    }
    free(x->pins);
    for (size_t j = 0; j < x->nartifacts; j++) {
        artifact_free(&x->artifacts[j]);
    }
    free(x->artifacts);
    memset(x, 0, sizeof *x);
}

void plan_task_copy(plan_task *d, const plan_task *s)
{
    memset(d, 0, sizeof *d);
    PLAN_TASK_FIELDS(COPY_S, COPY_I, COPY_B, COPY_V)
    PLAN_TASK_SECRETS(COPY_S)
    d->pins = drv_xcalloc(s->npins + 1, sizeof *d->pins);
    for (size_t j = 0; j < s->npins; j++) {
        pin_copy(&d->pins[j], &s->pins[j]);
    }
    d->npins = s->npins;
    d->artifacts = drv_xcalloc(s->nartifacts + 1, sizeof *d->artifacts);
    for (size_t j = 0; j < s->nartifacts; j++) {
        artifact_copy(&d->artifacts[j], &s->artifacts[j]);
    }
    d->nartifacts = s->nartifacts;
}

void plan_task_json(const plan_task *x, buf *out)
{
    const char *sep = "{";
    PLAN_TASK_FIELDS(JSON_S, JSON_I, JSON_B, JSON_V)
    (void)sep;   /* the last field's separator update */
    buf_puts(out, ",\"pins\":[");
    for (size_t j = 0; j < x->npins; j++) {
        if (j > 0) {
            buf_puts(out, ",");
        }
        pin_json(&x->pins[j], out);
    }
    buf_puts(out, "],\"artifacts\":[");
    for (size_t j = 0; j < x->nartifacts; j++) {
        if (j > 0) {
            buf_puts(out, ",");
        }
        artifact_json(&x->artifacts[j], out);
    }
    buf_puts(out, "]}");
}

void plan_free(plan *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->ntasks; i++) {
        plan_task_free(&p->tasks[i]);
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
    free(a->auth_config);
    free(a->auth_helper);
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
