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
    buf bytecode;            /* policies.bc as read (v[i].bc points into it) */
} policyset;

/// Loads the defaults (next to the binary, else the install path) merged
/// with `ops_dir` (NULL: defaults only). An unreadable ops_dir or policy
/// file is DRV_ECONFIG. policyset_free always.
///
/// A policy whose path and text are exactly those of an entry of the
/// precompiled shipped policies (build/policies.bc in the source tree,
/// DATADIR/policies.bc installed; scripts/policy-bytecode.lua writes them)
/// gets that entry's bytecode in v[i].bc: Lua then loads it instead of
/// compiling the text (about 1 ms per plan for the shipped set). Anything
/// else (an edited or operator policy, a missing, foreign or malformed
/// file) just has no bytecode.
int policyset_load(policyset *ps, const char *ops_dir, drv_err *err);
void policyset_free(policyset *ps);

/// Attaches the bytecode of the precompiled policies file at `path` (the
/// format scripts/policy-bytecode.lua writes) to the loaded policies it
/// matches exactly; returns how many got bytecode. policyset_load calls it
/// with the shipped file.
size_t policyset_use_bytecode(policyset *ps, const char *path);

#endif
