# examples/hello.hcl: the smallest useful job.
#
#   ./drvctl run examples/hello.hcl
#
# Runs one container from the local test image (scripts/bootstrap builds it
# from busybox-static, so no registry or network is needed), prints a greeting
# built from the NOMAD_* environment and exits 0.

job "hello" {
  datacenters = ["dc1"]

  group "greeter" {
    task "hello" {
      driver = "docker"

      config {
        image   = "drvctl-test/busybox:1"
        command = "sh"
        # $NOMAD_... is expanded by the shell inside the container.
        args = ["-c", "echo hello from $NOMAD_TASK_NAME in $NOMAD_ALLOC_ID"]
      }

      resources {
        cpu    = 100 # MHz
        memory = 32  # MB
      }
    }
  }
}
