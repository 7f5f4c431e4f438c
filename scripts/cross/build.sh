#!/usr/bin/env bash
# scripts/cross/build.sh TRIPLE [--tests]: the release build of stratum1 for an ARM target
# (aarch64-unknown-linux-gnu, arm-unknown-linux-musleabi; armv7-unknown-linux-gnueabihf is only
# checked). With --tests, also builds the lib's unit tests and runs them under qemu-user (the
# runners in .cargo/config.toml); extra arguments after `--` go to the test harness.
#
# rustup has no prebuilt std for arm-unknown-linux-musleabi, so that target compiles std from
# rust-src (`-Z build-std`, with RUSTC_BOOTSTRAP=1 on the stable toolchain). Everything uses
# the release profile: the package needs it, and optimised tests run far faster under qemu.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
triple=${1:?usage: build.sh TRIPLE [--tests] [-- TEST ARGS]}
shift
"$top/scripts/cross/setup.sh"

# The runner .cargo/config.toml gives the target's tests.
cargo_runner() {
  case "$1" in
    aarch64-unknown-linux-gnu) echo "qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
    arm-unknown-linux-musleabi) echo "qemu-arm -cpu arm1176" ;;
    *) echo "the runner of .cargo/config.toml" ;;
  esac
}
# The ARM builds carry no debug info (the x86-64 release profile keeps its line tables): they
# compile and link markedly faster, which keeps CI within its time, and their packages are
# stripped anyway. Build scripts and proc macros use cargo's build-override profile, which this
# does not touch, so the host's release artifacts stay shared.
export CARGO_PROFILE_RELEASE_DEBUG=false
std_args=()
if [ "$triple" = arm-unknown-linux-musleabi ]; then
  export RUSTC_BOOTSTRAP=1
  # C parts of dependencies (ring's): Debian's armel gcc with musl's headers, ARMv6 code.
  musl="$top/target/cross/armel-musl"
  export CC_arm_unknown_linux_musleabi=arm-linux-gnueabi-gcc
  export AR_arm_unknown_linux_musleabi=arm-linux-gnueabi-ar
  export CFLAGS_arm_unknown_linux_musleabi="-march=armv6 -mfloat-abi=softfp -mfpu=vfp -nostdinc -isystem $musl/usr/include/arm-linux-musleabi -isystem $(arm-linux-gnueabi-gcc -print-file-name=include)"
  std_args=(-Zbuild-std=std,panic_unwind)
fi
cargo build --release --locked --target "$triple" "${std_args[@]}"
if [ "${1:-}" = --tests ]; then
  shift
  [ "${1:-}" = -- ] && shift
  # Where the test binary is, for scripts/cross/vm-e2e.sh (it runs the ioctl tests on a kernel).
  cargo test --release --locked --lib --target "$triple" "${std_args[@]}" --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("executable")][-1])' \
    >"$top/target/$triple/lib-tests.path"
  echo "unit tests of $triple ran under $(cargo_runner "$triple")"
  cargo test --release --locked --lib --target "$triple" "${std_args[@]}" -- "$@"
fi
