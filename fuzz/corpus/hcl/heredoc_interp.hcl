job "j" {
  datacenters = ["dc1"]
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }
  group "g" {
    count = 2
    task "t" {
      driver = "docker"
      env {
        GREETING = <<EOF
hello ${NOMAD_TASK_NAME}
EOF
      }
      config {
        image = "drvctl-test/busybox:1"
        args  = ["-c", "echo ${NOMAD_ALLOC_INDEX}", 1, true]
        labels { a = "b" }
        port_map { http = 8080 }
      }
      resources {
        network {
          port "http" {}
        }
      }
    }
  }
}
