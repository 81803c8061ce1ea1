# examples/agent.hcl: agent configuration for `drvctl agent -config FILE`
# (also read by `drvctl run -config FILE` and `drvctl plan -config FILE`).
# Every setting is optional; the values shown are the defaults unless noted.

# Where allocations (alloc/<alloc_id>/...) and durable state (state/) live.
# Default: /var/lib/drvctl as root, else $XDG_STATE_HOME/drvctl.
data_dir = "/var/lib/drvctl"

# Node identity, visible to jobs as NOMAD_DC / NOMAD_REGION and to constraints.
datacenter = "dc1"
region     = "global"
name       = "node-1" # default: the host name

client {
  # Node metadata, usable in constraints as ${meta.<key>}.
  meta {
    rack = "r1"
  }

  # The docker.* options of the Nomad v0.8.3 docker driver.
  options {
    # Docker endpoint. Unset: $DOCKER_HOST, then unix:///var/run/docker.sock.
    "docker.endpoint" = "unix:///var/run/docker.sock"

    # TLS to a tcp:// endpoint (all three together):
    # "docker.tls.ca"   = "/etc/drvctl/docker-ca.pem"
    # "docker.tls.cert" = "/etc/drvctl/docker-cert.pem"
    # "docker.tls.key"  = "/etc/drvctl/docker-key.pem"

    # Registry credentials: a docker config.json, or a credential helper
    # (the part after "docker-credential-").
    # "docker.auth.config" = "/etc/drvctl/docker-auth.json"
    # "docker.auth.helper" = "ecr"

    # Remove images a while after the last task using them stopped.
    "docker.cleanup.image"       = "true"
    "docker.cleanup.image.delay" = "3m"

    # Host paths in `volumes` are refused unless enabled (CVE-2020-28348;
    # Nomad 0.8.3 defaulted to true). Relative paths are always allowed.
    "docker.volumes.enabled" = "false"

    # privileged = true in a job is refused unless enabled.
    "docker.privileged.enabled" = "false"

    # Capabilities tasks may add with cap_add. NET_RAW is not in the default
    # list (CVE-2021-32575); add it here to restore the 0.8.3 behaviour.
    # "docker.caps.whitelist" = "CHOWN,DAC_OVERRIDE,FSETID,FOWNER,MKNOD,NET_RAW,SETGID,SETUID,SETFCAP,SETPCAP,NET_BIND_SERVICE,SYS_CHROOT,KILL,AUDIT_WRITE"
  }

  # Task artifacts (Nomad 1.5's client.artifact block, plus local_dirs and
  # allow_private). Sizes: B, KB/MB/GB/TB (1000s) or KiB/MiB/GiB/TiB.
  artifact {
    http_read_timeout              = "30m"   # no byte for this long fails it
    http_max_size                  = "10GiB" # per artifact, downloaded or copied
    decompression_size_limit       = "10GiB" # per archive, unpacked
    decompression_file_count_limit = 4096    # entries per archive

    # file:// and absolute-path sources are refused unless they lie beneath
    # one of these directories (regular files only, no symlinks followed).
    local_dirs = []

    # Loopback, private, link-local and CGNAT addresses are refused, on
    # every connection and redirect, unless this is true.
    allow_private = false
  }
}

# The newer form of the same settings (use one form or the other):
#
# plugin "docker" {
#   config {
#     endpoint = "unix:///var/run/docker.sock"
#     gc {
#       image       = true
#       image_delay = "3m"
#     }
#     volumes {
#       enabled = false
#     }
#     allow_privileged = false
#     allow_caps = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD",
#                   "SETGID", "SETUID", "SETFCAP", "SETPCAP",
#                   "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"]
#     # pulls from registries on loopback, private, link-local and CGNAT
#     # addresses (127.0.0.1:5000, localhost, 10.x, ...) are refused (exit
#     # 77) unless this is true
#     allow_private_registries = false
#   }
# }
