# examples/env.hcl: environment, meta, labels, a graceful stop.
#
#   ./drvctl run examples/env.hcl      # then press Ctrl-C
#
# Prints its environment (only what the driver sets: the host's environment
# is never passed into containers), then waits. Ctrl-C sends kill_signal
# (SIGINT here) to the task, which traps it and exits; drvctl removes the
# container and exits 130. A second Ctrl-C kills the container at once.

job "env" {
  datacenters = ["dc1"]
  region      = "global"

  meta {
    team = "platform"
  }

  group "show" {
    meta {
      tier = "demo"
    }

    task "printenv" {
      driver       = "docker"
      kill_signal  = "SIGINT"
      kill_timeout = "5s"

      env {
        GREETING = "hi"
      }

      config {
        image   = "drvctl-test/busybox:1"
        command = "sh"
        args = ["-c", "env | sort; trap 'echo got SIGINT, bye; exit 0' INT; while :; do sleep 1; done"]

        labels {
          example = "env"
        }
      }

      resources {
        cpu    = 100
        memory = 32
      }
    }
  }
}
