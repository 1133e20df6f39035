#!/usr/bin/env bash
# make demo: package the hello web application from a directory, apply
# examples/hello, fetch the page through the published port and by the
# container's IP, show that a second plan has no changes, destroy, and show
# that nothing is left.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "make demo needs root: namespaces, mounts, cgroups and iptables" >&2; exit 1; }

ex=examples/hello
berth=bin/berth
# The demo keeps its host state apart from a real berth host's
# (/var/lib/berth, /run/berth): it neither depends on nor disturbs it.
export BERTH_STATE_DIR=${BERTH_STATE_DIR:-/var/lib/berth-demo}
export BERTH_RUN_DIR=${BERTH_RUN_DIR:-/run/berth-demo}
export BERTH_CGROUP_PARENT=${BERTH_CGROUP_PARENT:-/berth-demo}
bold=$'\033[1m'; green=$'\033[32m'; reset=$'\033[0m'
[ -t 1 ] || { bold=; green=; reset=; }
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }

step "packaging the hello app into $ex/rootfs (a static Go binary and a seed file)"
rm -rf "$ex/rootfs"
mkdir -p "$ex/rootfs/data" "$ex/rootfs/tmp"
CGO_ENABLED=0 go build -o "$ex/rootfs/hello" "./$ex/app"
echo "seeded from the image" > "$ex/rootfs/data/seed.txt"

step "berth plan"
$berth plan -dir "$ex"

step "berth apply"
$berth apply -dir "$ex" -auto-approve

url=$($berth output -dir "$ex" -raw url)
ip=$($berth output -dir "$ex" -raw container_ip)
fetch() { curl -fsS --retry 30 --retry-delay 0 --retry-connrefused --max-time 2 "$1"; }

step "the page through the published port: curl $url"
fetch "$url"
step "the page by container IP: curl http://$ip:8080/"
fetch "http://$ip:8080/"

step "a second plan says no changes (-detailed-exitcode: 0 = none, 2 = changes)"
$berth plan -dir "$ex" -detailed-exitcode

step "the agent supervises it: berth agent in the background, berth ps shows its health"
$berth agent >"$BERTH_RUN_DIR/agent.log" 2>&1 &
agent=$!
trap 'kill $agent 2>/dev/null || true' EXIT
waitfor() { # what, command that succeeds once it holds
  local what=$1; shift
  for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "timed out waiting for $what" >&2; cat "$BERTH_RUN_DIR/agent.log" >&2; exit 1
}
waitfor "the container to be healthy" bash -c "$berth ps | grep -q '(healthy)'"
$berth ps

step "kill its process behind berth's back: restart = \"always\" brings it back"
pid=$($berth inspect hello-web | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -1)
since=$(date +%s)
kill -9 "$pid"
waitfor "the restart" bash -c "$berth events --since $since --until 0s | grep -q restart"
waitfor "the container to be healthy again" bash -c "$berth ps | grep -q '(healthy)'"
$berth events --since "$since" --until 0s --filter event=die --filter event=restart
$berth ps
kill $agent; wait $agent || true
trap - EXIT

# The demo's own bridge, to check it goes (other bridges on the host are
# none of the demo's business).
bridge=$($berth state show network.front -dir "$ex" -json | grep -o '"bridge": *"[^"]*"' | cut -d'"' -f4)

step "berth destroy"
$berth destroy -dir "$ex" -auto-approve -delete-volume-data

step "nothing is left"
left=0
check() { # what, command printing leftovers
  local what=$1; shift
  local out; out=$("$@" || true)
  if [ -n "$out" ]; then echo "LEFT: $what:"; echo "$out"; left=1; else echo "no $what"; fi
}
state_dir=$BERTH_STATE_DIR
check "recorded objects" $berth state list -dir "$ex"
check "containers" bash -c "ls $state_dir/containers 2>/dev/null"
check "volumes" bash -c "ls -A $state_dir/volumes 2>/dev/null | grep hello"
check "mounts" bash -c "grep -E ' ($state_dir|$BERTH_RUN_DIR)' /proc/self/mountinfo"
check "cgroups" bash -c "ls -d /sys/fs/cgroup/*$BERTH_CGROUP_PARENT /sys/fs/cgroup$BERTH_CGROUP_PARENT 2>/dev/null"
check "bridges" bash -c "ip -o link show type bridge | grep -o '${bridge:-bn-none}:'"
check "iptables rules" bash -c "iptables-save | grep -i hello"
[ $left = 0 ] || { echo "demo left things behind" >&2; exit 1; }
# The demo's own host directories, now empty of objects, go too (only
# those it chose itself: never directories the caller pointed it at).
[ "$BERTH_STATE_DIR" = /var/lib/berth-demo ] && rm -rf /var/lib/berth-demo
[ "$BERTH_RUN_DIR" = /run/berth-demo ] && rm -rf /run/berth-demo
printf '\n%sdemo complete%s\n' "$green" "$reset"
