/* policyset.c: policy file listing and loading (see policyset.h). */
#include "policyset.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fs.h"

#include "paths.h"   /* DRV_POLICYDIR */

static const char *default_dir(void)
{
    const char *d = conf_find_dir("policies", ".", DRV_POLICYDIR);
    return fs_is_dir(d) ? d : NULL;
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

void policyset_free(policyset *ps)
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

int policyset_load(policyset *ps, const char *ops, drv_err *err)
{
    const char *dflt = default_dir();
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
        rc = fs_read_file(buf_str(&path), "policy", &ps->texts[ps->n], err);
        ps->paths[ps->n] = drv_xstrdup(buf_str(&path));
        ps->v[ps->n].path = ps->paths[ps->n];
        ps->v[ps->n].text = buf_str(&ps->texts[ps->n]);
        ps->v[ps->n].len = ps->texts[ps->n].len;
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
