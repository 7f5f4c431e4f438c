#!/usr/bin/env bash
# Installs what the ARM builds and their emulated tests need, idempotently, from Debian's
# packages and rustup only (no prebuilt toolchain downloads):
#   - cross linkers and C libraries: gcc-aarch64-linux-gnu (arm64), gcc-arm-linux-gnueabi (the
#     32-bit build links with it), gcc-arm-linux-gnueabihf (checks the armv7 glibc target);
#   - qemu-user (runs the ARM binaries and tests here), qemu-system-arm and cpio (boots an ARM
#     kernel for scripts/cross/vm-e2e.sh), lintian (checks the packages);
#   - rustup's std for aarch64-unknown-linux-gnu and armv7-unknown-linux-gnueabihf, and rust-src
#     (the 32-bit build compiles std itself: rustup has no std for arm-unknown-linux-musleabi);
#   - musl for Debian armel (ARMv5TE, so it runs on the ARMv6 Pi Zero/1), unpacked under
#     target/cross/armel-musl from Debian's own musl-dev package (scripts/cross/apt-fetch.sh: a
#     private package list, so the host's dpkg architectures and apt state are left alone).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
export DEBIAN_FRONTEND=noninteractive

need=()
for p in gcc-aarch64-linux-gnu gcc-arm-linux-gnueabi gcc-arm-linux-gnueabihf qemu-user qemu-system-arm cpio lintian; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null
  }
fi

installed=$(rustup target list --installed)
for t in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t" >/dev/null
done
rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src >/dev/null

musl="$top/target/cross/armel-musl"
if [ ! -e "$musl/usr/lib/arm-linux-musleabi/libc.a" ]; then
  "$top/scripts/cross/apt-fetch.sh" "$musl" musl-dev:armel
fi
# std's `unwind` crate links a static libunwind on musl; gcc's libgcc_eh is the ARM EHABI
# unwinder Debian ships for armel.
mkdir -p "$musl/unwind"
ln -sf "$(arm-linux-gnueabi-gcc -print-file-name=libgcc_eh.a)" "$musl/unwind/libunwind.a"
