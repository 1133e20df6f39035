#!/usr/bin/env bash
# Builds the standard CNI plugins berth's network driver runs, from the
# github.com/containernetworking/plugins version pinned in go.mod, into
# OUTDIR (default bin/cni). Static (CGO_ENABLED=0), so they run in any
# namespace and on any host of the same architecture.
#
# A plugin already built and newer than go.mod is kept: go.mod pins the
# version, so only a change there can change the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bin/cni}
mkdir -p "$out"

pkg=github.com/containernetworking/plugins/plugins
plugins=(
  main/bridge
  ipam/host-local
  main/loopback
  meta/portmap
  meta/firewall
  main/macvlan
)

for p in "${plugins[@]}"; do
  name=${p##*/}
  bin=$out/$name
  if [ -x "$bin" ] && [ "$bin" -nt go.mod ]; then
    continue
  fi
  echo "building CNI plugin $name"
  # Build to a temporary name so an interrupted build never leaves a
  # truncated plugin that the freshness check above would keep.
  CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" "$pkg/$p"
  mv -f "$bin.tmp" "$bin"
done
