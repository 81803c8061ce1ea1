/*
 * policyset.h: the policy files a plan or `policy check` loads: the shipped
 * defaults, overridden by file name from the operator's directory, sorted by
 * file name, read as text.
 */
#ifndef DRV_POLICYSET_H
#define DRV_POLICYSET_H

#include "buf.h"
#include "err.h"
#include "script.h"

typedef struct policyset {
    script_source *v;
    buf *texts;
    char **paths;
    size_t n;
} policyset;

/// Loads the defaults (next to the binary, else the install path) merged
/// with `ops_dir` (NULL: defaults only). An unreadable ops_dir or policy
/// file is DRV_ECONFIG. policyset_free always.
int policyset_load(policyset *ps, const char *ops_dir, drv_err *err);
void policyset_free(policyset *ps);

#endif
