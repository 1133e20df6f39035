#!/usr/bin/env bash
# bench/apply.sh [N]: time real applies on this host — N containers (busybox
# httpd, each on a bridge network with a published port) created, planned
# again with no changes, and destroyed — and print the figures. Machines
# here are noisy: read the ratios (per-container cost, plan vs apply), not
# the absolute numbers. Needs root, bin/berth and bin/cni (make bench).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
berth=$PWD/bin/berth
work=$(mktemp -d)
export BERTH_STATE_DIR=$work/state BERTH_RUN_DIR=$work/run BERTH_CGROUP_PARENT=/berth-bench
export BERTH_CNI_PATH=$PWD/bin/cni
cleanup() { $berth destroy -dir "$work/bench" -auto-approve -delete-volume-data >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/bench/rootfs/bin" "$work/bench/rootfs/www"
cp "$(command -v busybox)" "$work/bench/rootfs/bin/busybox"
for a in sh httpd sleep; do ln -s busybox "$work/bench/rootfs/bin/$a"; done
echo hi > "$work/bench/rootfs/www/index.html"
cat > "$work/bench/main.hcl" <<HCL
variable "n" {
  default = $n
}

image "bb" {
  rootfs = "./rootfs"
}

network "net" {
  subnet = "10.219.250.0/24"
}

container "web" {
  count        = var.n
  image        = image.bb.ref
  command      = ["httpd", "-f", "-p", "80", "-h", "/www"]
  stop_timeout = "1s"
  network {
    name = network.net.name
  }
  port {
    published = 21000 + count.index
    target    = 80
    host_ip   = "127.0.0.1"
  }
}
HCL

ms() { date +%s%3N; }
t0=$(ms); $berth apply -dir "$work/bench" -auto-approve >/dev/null; t1=$(ms)
$berth plan -dir "$work/bench" -detailed-exitcode >/dev/null; t2=$(ms)
curl -fsS --retry 20 --retry-delay 0 --retry-connrefused "http://127.0.0.1:$((21000 + n - 1))/" >/dev/null
t3=$(ms); $berth destroy -dir "$work/bench" -auto-approve >/dev/null; t4=$(ms)

apply=$((t1 - t0)); plan=$((t2 - t1)); destroy=$((t4 - t3))
printf 'containers            %d\n' "$n"
printf 'apply                 %d ms  (%d ms per container, parallelism 10)\n' "$apply" $((apply / n))
printf 'plan, no changes      %d ms  (%.2f of apply)\n' "$plan" "$(echo "$plan / $apply" | bc -l)"
printf 'destroy               %d ms  (%d ms per container)\n' "$destroy" $((destroy / n))
