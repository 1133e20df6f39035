#!/usr/bin/env bash
# Installs the Debian packages berth's tests and demo need, if missing:
# busybox-static (test images), iptables (CNI portmap/firewall), curl (demo),
# gcc (cgo for libcontainer's nsenter), libseccomp-dev and pkg-config (the
# seccomp build tag: containers get Docker's default seccomp profile),
# iproute2 (tests' namespaces), bc (bench/apply.sh); with the argument
# "bench", skopeo too (BenchmarkPull compares berth's pull with skopeo copy).
set -euo pipefail
need=()
[ "${1:-}" = bench ] && ! command -v skopeo >/dev/null && need+=(skopeo)
command -v busybox >/dev/null || need+=(busybox-static)
command -v iptables >/dev/null || need+=(iptables)
command -v curl >/dev/null || need+=(curl)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists libseccomp 2>/dev/null || need+=(libseccomp-dev)
command -v ip >/dev/null || need+=(iproute2)
command -v git >/dev/null || need+=(git)
command -v bc >/dev/null || need+=(bc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${need[*]} (run as root, or apt-get install them)" >&2
    exit 1
  fi
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
