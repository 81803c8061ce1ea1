# examples/countdown.hcl: a group run three times (count = 3), two tasks per
# instance sharing the allocation directory.
#
#   ./drvctl run examples/countdown.hcl
#
# Each instance gets its own alloc id, so six containers run at once. The
# "writer" task leaves a file in the shared alloc dir ($NOMAD_ALLOC_DIR, on the
# host under <data_dir>/alloc/<alloc_id>/alloc/) and the "reader" task prints
# it. Output lines are prefixed with the task name; stderr stays on stderr.

job "countdown" {
  datacenters = ["dc1"]

  meta {
    owner = "examples"
  }

  group "count" {
    count = 3

    task "writer" {
      driver       = "docker"
      kill_timeout = "2s"

      config {
        image   = "drvctl-test/busybox:1"
        command = "sh"
        args = [
          "-c",
          "for i in 3 2 1; do echo \"instance $NOMAD_ALLOC_INDEX of $NOMAD_JOB_NAME: $i\"; sleep 1; done; echo \"written by $NOMAD_ALLOC_NAME\" > $NOMAD_ALLOC_DIR/data/note.txt; echo \"done ($NOMAD_META_OWNER)\" >&2",
        ]
      }

      resources {
        cpu    = 100
        memory = 32
      }
    }

    task "reader" {
      driver = "docker"

      config {
        image   = "drvctl-test/busybox:1"
        command = "sh"
        args = ["-c", "while [ ! -f $NOMAD_ALLOC_DIR/data/note.txt ]; do sleep 0.2; done; cat $NOMAD_ALLOC_DIR/data/note.txt"]
      }

      resources {
        cpu    = 100
        memory = 32
      }
    }
  }
}
