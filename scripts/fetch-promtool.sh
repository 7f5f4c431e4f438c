#!/usr/bin/env bash
# Unpacks promtool from Debian's prometheus package into target/tools (apt-get download +
# dpkg -x: nothing is installed system-wide and no Prometheus service starts). Prints the path.
# Idempotent: does nothing but print the path when promtool is already there.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dest="${STRATUM1_TOOLS_DIR:-$top/target/tools}"
promtool="$dest/root/usr/bin/promtool"
if [ ! -x "$promtool" ]; then
  mkdir -p "$dest/debs" "$dest/root"
  cd "$dest/debs"
  if ! apt-get download prometheus >/dev/null 2>&1; then
    # A fresh machine may have no package lists yet.
    apt-get update -qq >/dev/null
    apt-get download prometheus >/dev/null
  fi
  dpkg -x ./prometheus_*.deb "$dest/root"
  rm -f ./prometheus_*.deb
fi
echo "$promtool"
