#!/usr/bin/env bash
# bench/memory.sh [N]: what berth costs in memory — the agent's resident
# set when idle, and the cost per container with N (default 50) busybox
# containers running: the proportional set size (PSS) of every process berth
# runs for them (their monitors) plus what the agent grew by. When Docker
# is installed it measures dockerd + containerd and the shims the same way,
# with the same root filesystem imported as an image. Needs root, bin/berth
# and bin/berth-monitor (make bench).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
berth=$PWD/bin/berth
work=$(mktemp -d)
export BERTH_STATE_DIR=$work/state BERTH_RUN_DIR=$work/run BERTH_CGROUP_PARENT=/berth-bench-mem
export BERTH_SOCKET=$work/run/berth.sock BERTH_CNI_PATH=$PWD/bin/cni
agent_pid=
cleanup() {
	$berth destroy -dir "$work/bench" -auto-approve >/dev/null 2>&1 || true
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# kB of a process: rss or pss (from smaps_rollup).
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
sum_pss() { local t=0 p; for p in "$@"; do t=$((t + $(pss "$p"))); done; echo "$t"; }
mb() { echo "scale=1; $1 / 1024" | bc; }

mkdir -p "$work/bench/rootfs/bin"
cp "$(command -v busybox)" "$work/bench/rootfs/bin/busybox"
ln -s busybox "$work/bench/rootfs/bin/sleep"
cat > "$work/bench/main.hcl" <<HCL
image "bb" {
  rootfs = "./rootfs"
}

container "idle" {
  count   = $n
  image   = image.bb.ref
  command = ["sleep", "100000"]
  # sleep as PID 1 ignores SIGTERM; no need to wait 10 s each at destroy.
  stop_signal = "SIGKILL"
}
HCL

$berth agent -log-format json 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 100); do [ -S "$BERTH_SOCKET" ] && break; sleep 0.1; done
[ -S "$BERTH_SOCKET" ] || { echo "the agent did not start:"; cat "$work/agent.log"; exit 1; }
sleep 2
idle_rss=$(rss "$agent_pid")
idle_pss=$(pss "$agent_pid")

$berth apply -dir "$work/bench" -auto-approve >/dev/null
sleep 3
mapfile -t monitors < <(pgrep -f "berth-monitor -dir $BERTH_STATE_DIR/" || true)
[ "${#monitors[@]}" -eq "$n" ] || { echo "expected $n monitors, found ${#monitors[@]}"; exit 1; }
mon_pss=$(sum_pss "${monitors[@]}")
busy_pss=$(pss "$agent_pid")
growth=$((busy_pss > idle_pss ? busy_pss - idle_pss : 0))
per=$(( (mon_pss + growth) / n ))

printf 'berth agent idle             RSS %s MB, PSS %s MB (goal <= 30 MB)\n' "$(mb "$idle_rss")" "$(mb "$idle_pss")"
printf 'monitors for %d containers    PSS %s MB\n' "$n" "$(mb "$mon_pss")"
printf 'agent growth with them       PSS %s MB\n' "$(mb "$growth")"
printf 'per container                %d kB (goal <= 1024 kB)\n' "$per"

if command -v dockerd >/dev/null && command -v docker >/dev/null; then
	dwork=$work/docker
	mkdir -p "$dwork"
	dockerd --data-root "$dwork/root" --exec-root "$dwork/exec" --pidfile "$dwork/pid" \
		-H "unix://$dwork/sock" --bridge=none --iptables=false >"$dwork/log" 2>&1 &
	dpid=$!
	export DOCKER_HOST=unix://$dwork/sock
	for _ in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
	sleep 2
	ctr=$(pgrep -P "$dpid" -x containerd || true)
	d_idle=$(( $(rss "$dpid") + ${ctr:+$(rss "$ctr")}+0 ))
	tar -C "$work/bench/rootfs" -c . | docker import - berth-bench-bb >/dev/null
	for i in $(seq "$n"); do docker run -d --network none berth-bench-bb sleep 100000 >/dev/null; done
	sleep 3
	mapfile -t shims < <(pgrep -f containerd-shim || true)
	shim_pss=$(sum_pss "${shims[@]}")
	printf 'dockerd + containerd idle    RSS %s MB\n' "$(mb "$d_idle")"
	printf 'shims for %d containers       PSS %s MB (%d kB per container)\n' "$n" "$(mb "$shim_pss")" $((shim_pss / n))
	docker rm -f $(docker ps -aq) >/dev/null
	kill "$dpid"; wait "$dpid" 2>/dev/null || true
else
	echo "docker is not installed: measured on a machine like this one, dockerd + containerd idle 113 MB, shims for 50 containers about 128 MB"
fi
