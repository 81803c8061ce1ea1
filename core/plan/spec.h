/*
 * spec.h: the task spec (plan_task and its pins and artifacts) as field
 * lists. The struct definitions (plan.h), the Lua read (script.c
 * read_task), the deep copy and free (plan.c) and the JSON state encoding
 * (plan.c plan_task_json) are all generated from these lists: adding a
 * field is one line here.
 *
 * Each list takes one macro per kind:
 *   S(name)                  char *, NULL when absent
 *   I(name, type, default)   integer of `type`, `default` when absent
 *   B(name)                  int, 0/1
 *   V(name, count)           char **name + size_t count (string list)
 */
#ifndef DRV_SPEC_H
#define DRV_SPEC_H

/* An artifact to fetch into the task dir before the container. */
#define PLAN_ARTIFACT_FIELDS(S, I, B, V) \
    S(source)                                                                \
    S(dest_dir)              /* task_dir/dest, for messages */               \
    S(task_dir)              /* absolute */                                  \
    S(dest)                  /* relative to task_dir, clean */               \
    S(checksum)              /* "sha256:hex" or NULL */                      \
    S(archive)               /* NULL (auto), "false", "tar", "zip", ... */   \
    S(local_path)            /* local sources: decoded absolute path */      \
    S(local_root)            /* the client.artifact.local_dirs entry */      \
    I(read_timeout_ms, long, 0) /* client.artifact limits (0: defaults) */   \
    I(max_size, long long, 0)                                                \
    I(max_unpacked_bytes, long long, 0)                                      \
    I(max_unpacked_files, long long, 0)                                      \
    B(allow_private)

/* A bind source under the data dir, pinned before create (see pin.h): the
 * body already names `staging`, which C makes a bind mount of `path`
 * opened beneath `root` without following symlinks. */
#define PLAN_PIN_FIELDS(S, I, B, V) \
    S(source)                /* the host path as checked, for messages */    \
    S(root)                  /* the alloc dir, or the data dir */            \
    S(path)                  /* relative to root ("" for root itself) */     \
    S(staging)               /* <binds_dir>/<alloc_id>-<task>-<n> */         \
    B(create)                /* make a missing source (Binds), as Docker did */

/* One task instance. The lists of pins and artifacts follow these fields
 * (plan_task.pins/npins, .artifacts/nartifacts). */
#define PLAN_TASK_FIELDS(S, I, B, V) \
    S(job) S(group) S(task)                                                  \
    S(alloc_id)                                                              \
    S(name)                  /* container name */                            \
    S(image)                                                                 \
    S(load)                  /* absolute tar path, or NULL */                \
    S(pull)                  /* "missing" or "always" */                     \
    S(image_repo)            /* normalised: "docker.io/library/redis" */     \
    S(image_tag)             /* the tag, or "sha256:<hex>" for a digest */   \
    S(image_registry)        /* index name: "docker.io" or "host[:port]" */  \
    I(image_pull_timeout_ms, long, 300000)                                   \
    I(pull_activity_timeout_ms, long, 120000)                                \
    B(auth_soft_fail)                                                        \
    S(body)                  /* Docker create body, JSON */                  \
    S(kill_signal)           /* NULL: image STOPSIGNAL, else SIGTERM */      \
    I(kill_timeout_ms, long, 5000)                                           \
    B(tty)                                                                   \
    S(alloc_dir)                                                             \
    S(log_dir)                                                               \
    I(log_max_files, int, 10)                                                \
    I(log_max_file_size, long long, 10LL * 1024 * 1024)                      \
    V(dirs, ndirs)           /* directories to create before the container */\
    S(binds_dir)             /* <data_dir>/binds: where staging paths live */

/* The task's registry credentials (config { auth { ... } }): read from
 * Lua, copied and freed (zeroed first) like S fields, but never encoded:
 * no state file, plan output or message carries them. */
#define PLAN_TASK_SECRETS(X) \
    X(auth_username) X(auth_password) X(auth_email) X(auth_server)

/* Struct members (plan.h). */
#define SPEC_MEMBER_S(n) char *n;
#define SPEC_MEMBER_I(n, type, d) type n;
#define SPEC_MEMBER_B(n) int n;
#define SPEC_MEMBER_V(n, count) char **n; size_t count;
#define SPEC_MEMBERS(LIST) LIST(SPEC_MEMBER_S, SPEC_MEMBER_I, SPEC_MEMBER_B, SPEC_MEMBER_V)

#endif
