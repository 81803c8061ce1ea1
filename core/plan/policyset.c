/* policyset.c: policy file listing and loading (see policyset.h). */
#include "policyset.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "fs.h"

#include "paths.h"   /* DRV_POLICYDIR, DRV_DATADIR */

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

#define BC_MAGIC "drvctl-policy-bytecode 1\n"
#define BC_MAX (16u << 20)

/* Reads the precompiled policies at `path` into ps->bytecode: only a
 * regular file owned by this user or root and writable by nobody else (it
 * is trusted like the precompiled Lua modules). Leaves it empty otherwise. */
static void read_bytecode(policyset *ps, const char *path)
{
    struct stat st;

    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return;
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_uid == 0 || st.st_uid == geteuid()) &&
        (st.st_mode & (S_IWGRP | S_IWOTH)) == 0 && st.st_size > 0 && (size_t)st.st_size < BC_MAX) {
        size_t want = (size_t)st.st_size, got = 0;
        buf_free(&ps->bytecode);
        ps->bytecode.data = drv_xmalloc(want + 1);
        ps->bytecode.cap = want + 1;
        ps->bytecode.data[0] = '\0';
        while (got < want) {
            ssize_t n = read(fd, ps->bytecode.data + got, want - got);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                break;
            }
            got += (size_t)n;
        }
        ps->bytecode.len = got == want ? got : 0;
        ps->bytecode.data[ps->bytecode.len] = '\0';
    }
    close(fd);
}

/* Points v->bc at the bytecode of the entry with v's exact path and text. */
static void find_bytecode(const buf *bc, script_source *v)
{
    size_t magic = sizeof BC_MAGIC - 1;
    if (bc->len < magic || memcmp(bc->data, BC_MAGIC, magic) != 0) {
        return;
    }
    const char *p = bc->data + magic, *end = bc->data + bc->len;
    size_t plen = strlen(v->path);
    while (p < end) {
        char line[96];
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        unsigned long long lp, lt, lb;
        if (nl == NULL || (size_t)(nl - p) >= sizeof line) {
            return;
        }
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = '\0';
        if (sscanf(line, "%llu %llu %llu", &lp, &lt, &lb) != 3) {
            return;
        }
        p = nl + 1;
        size_t room = (size_t)(end - p);
        if (lp > room || lt > room - lp || lb > room - lp - lt) {
            return;
        }
        if (lp == plen && lt == v->len && memcmp(p, v->path, plen) == 0 &&
            memcmp(p + lp, v->text, v->len) == 0) {
            v->bc = p + lp + lt;
            v->bclen = (size_t)lb;
            return;
        }
        p += lp + lt + lb;
    }
}

size_t policyset_use_bytecode(policyset *ps, const char *path)
{
    size_t found = 0;
    read_bytecode(ps, path);
    for (size_t x = 0; x < ps->n && ps->bytecode.len > 0; x++) {
        ps->v[x].bc = NULL;
        ps->v[x].bclen = 0;
        find_bytecode(&ps->bytecode, &ps->v[x]);
        found += ps->v[x].bc != NULL;
    }
    return found;
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
    buf_free(&ps->bytecode);
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
        return rc;
    }
    char bc[PATH_MAX];
    if (snprintf(bc, sizeof bc, "%s/policies.bc",
                 conf_find_dir("build", "policies.bc", DRV_DATADIR)) < (int)sizeof bc) {
        policyset_use_bytecode(ps, bc);
    }
    return rc;
}
