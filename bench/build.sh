#!/usr/bin/env bash
# bench/build.sh: time berth build on this host — a first build of a
# Dockerfile (FROM a locally built busybox base, COPY of a source tree and
# a 5 MB file, RUN steps that write 20 MB and a few hundred files), then
# the same build again with nothing changed (every step from the cache),
# then after one source file changed — and print the figures and the
# no-change rebuild's share of the first build (goal: at most 0.05).
# Needs root and bin/berth (make bench).
set -euo pipefail
cd "$(dirname "$0")/.."
berth=$PWD/bin/berth
work=$(mktemp -d)
export BERTH_STATE_DIR=$work/state BERTH_RUN_DIR=$work/run BERTH_CGROUP_PARENT=/berth-bench-build
export BERTH_SOCKET=$work/run/berth.sock
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/base/rootfs/bin" "$work/base/rootfs/etc" "$work/app/src"
cp "$(command -v busybox)" "$work/base/rootfs/bin/busybox"
for a in $("$work/base/rootfs/bin/busybox" --list); do
	[ "$a" = busybox ] || ln -s busybox "$work/base/rootfs/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$work/base/rootfs/etc/passwd"
printf 'root:x:0:\n' > "$work/base/rootfs/etc/group"
printf 'FROM scratch\nCOPY rootfs/ /\nCMD ["sh"]\n' > "$work/base/Dockerfile"
$berth build -q -t bench/base "$work/base" >/dev/null

for i in $(seq 1 300); do echo "source file $i" > "$work/app/src/f$i.txt"; done
head -c 5000000 /dev/urandom > "$work/app/big.bin"
printf 'src/*.tmp\n' > "$work/app/.dockerignore"
cat > "$work/app/Dockerfile" <<'DOCKERFILE'
FROM bench/base
ENV APP=/app
WORKDIR /app
COPY src/ ./src/
COPY big.bin ./
RUN dd if=/dev/urandom of=data bs=1M count=20 2>/dev/null && sha256sum big.bin > big.sha
RUN for i in $(seq 1 300); do echo $i > gen-$i; done && cat src/* > all.txt
LABEL bench=build
CMD ["cat", "/app/all.txt"]
DOCKERFILE

ms() { date +%s%3N; }
t0=$(ms); $berth build -q -t bench/app "$work/app" >/dev/null; t1=$(ms)
$berth build -q -t bench/app "$work/app" >/dev/null; t2=$(ms)
$berth build --progress plain -t bench/app "$work/app" | grep -c 'Using cache' > "$work/cached"
echo "changed" >> "$work/app/src/f7.txt"
t3=$(ms); $berth build -q -t bench/app "$work/app" >/dev/null; t4=$(ms)

first=$((t1 - t0)); again=$((t2 - t1)); changed=$((t4 - t3))
printf 'first build                 %d ms\n' "$first"
printf 'no-change rebuild           %d ms  (%.3f of the first; goal <= 0.05; %s of 8 steps from the cache)\n' \
	"$again" "$(echo "$again / $first" | bc -l)" "$(cat "$work/cached")"
printf 'one source file changed     %d ms  (COPY and the steps after it run again)\n' "$changed"
