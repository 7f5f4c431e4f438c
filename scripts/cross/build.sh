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

std_args=()
if [ "$triple" = arm-unknown-linux-musleabi ]; then
  export RUSTC_BOOTSTRAP=1
  std_args=(-Zbuild-std=std,panic_unwind)
fi
cargo build --release --locked --target "$triple" "${std_args[@]}"
if [ "${1:-}" = --tests ]; then
  shift
  [ "${1:-}" = -- ] && shift
  cargo test --release --locked --lib --target "$triple" "${std_args[@]}" -- "$@"
fi
