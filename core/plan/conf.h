/*
 * conf.h: the agent config, loaded one way for every command (run, plan,
 * fingerprint, policy check): read the -config file, run driver.agent on it
 * with this host's facts, keep the text (driver.plan and the policy_options
 * check read it again) and the problems. Also where the Lua modules and the
 * default data dir are.
 */
#ifndef DRV_CONF_H
#define DRV_CONF_H

#include <limits.h>

#include "buf.h"
#include "err.h"
#include "plan.h"
#include "script.h"

typedef struct conf {
    agent_conf agent;           /* driver.agent's answer */
    problem_list problems;      /* bad input in the config: print them all */
    const char *path;           /* -config, or NULL */
    buf text;                   /* the config's text ("" without one) */
    script_source src;          /* { path, text }: valid while conf lives */
    host_facts host;            /* base facts: data dirs, seed, env, cwd */
    char default_data_dir[PATH_MAX];
    char cwd[PATH_MAX];
    char seed[33];              /* random, for alloc ids */
} conf;

/// Reads `path` (NULL: no config file) and runs driver.agent with this
/// host's facts; `data_dir` is the -data-dir override or NULL. On failure
/// returns a negative code: a file that cannot be read is DRV_ECONFIG with
/// a message naming it; bad values are in c->problems. conf_free always.
int conf_load(conf *c, script *s, const char *path, const char *data_dir, drv_err *err);
void conf_free(conf *c);

/// The config source for Lua (NULL without a config file).
const script_source *conf_source(const conf *c);

/// Prints every problem as "drvctl: <message>" to stderr.
void problems_print(const problem_list *p);

/// The data dir when neither -data-dir nor the agent config names one:
/// /var/lib/drvctl as root, else $XDG_STATE_HOME/drvctl or ~/.local/state/drvctl.
void conf_default_data_dir(char *out, size_t len);

/// Resolves the Lua module directory: the override, $DRVCTL_LUA_PATH, the
/// precompiled build/lua next to the binary when it is newer than the source
/// tree's lua/, lua/ next to the binary, then the install path.
const char *conf_lua_dir(const char *override);

/// Finds `sub` next to the binary when `probe` is readable inside it, else
/// `installed`.
const char *conf_find_dir(const char *sub, const char *probe, const char *installed);

#endif
