#!/usr/bin/env bash
# Unpacks the real NTP peers the integration tests talk to (chronyd, chronyc, ntpdig, ntpq) from
# Debian's packages into target/peers. Nothing is installed system-wide and no service starts.
# Idempotent: does nothing when the peers are already there.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dest="${STRATUM1_PEERS_DIR:-$top/target/peers}"
ntpdir="$dest/root/usr/lib/python3/dist-packages/ntp"
if [ -x "$dest/root/usr/sbin/chronyd" ] && [ -x "$dest/root/usr/bin/ntpdig" ] && [ -x "$dest/root/usr/bin/ntpq" ] && [ -e "$ntpdir/libntpc.so" ]; then
  exit 0
fi
mkdir -p "$dest/debs" "$dest/root"
cd "$dest/debs"
if ! apt-get download chrony ntpsec-ntpdig python3-ntp ntpsec >/dev/null 2>&1; then
  # A fresh machine may have no package lists yet.
  apt-get update -qq >/dev/null
  apt-get download chrony ntpsec-ntpdig python3-ntp ntpsec >/dev/null
fi
for f in ./*.deb; do dpkg -x "$f" "$dest/root"; done
# ntpdig's Python package loads its C helper from beside itself.
ln -sf "$dest/root/usr/lib/x86_64-linux-gnu/ntp/libntpc.so" "$ntpdir/libntpc.so" 2>/dev/null \
  || ln -sf "$(find "$dest/root/usr/lib" -name 'libntpc.so' | head -n1)" "$ntpdir/libntpc.so"
echo "peers unpacked in $dest/root"
