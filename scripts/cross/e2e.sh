#!/usr/bin/env bash
# scripts/cross/e2e.sh TRIPLE: end-to-end checks of an ARM release binary, against the x86-64
# release binary (target/release/stratum1, built here if missing):
#   1. under qemu-user: `simulate --scenario pi-pps-hat --json` gives the x86-64 figures, bit for
#      bit on glibc targets; on the static musl build every count, time and state is identical
#      and floating-point figures may differ in their last bits (musl's libm is not glibc's);
#   2. in an emulated ARM machine (scripts/cross/vm-e2e.sh, guest clock at 2040-03-01):
#      `run --simulate` serves stratum 1 to `query` (qemu-user cannot open the
#      simulated receiver's pty: it does not translate the TCGETS2 ioctl serialport uses).
# Nothing touches the host clock; traffic stays inside the guest's loopback.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
triple=${1:?usage: e2e.sh TRIPLE}
case "$triple" in
  aarch64-unknown-linux-gnu) run=(qemu-aarch64 -L /usr/aarch64-linux-gnu); exact=1 ;;
  arm-unknown-linux-musleabi) run=(qemu-arm -cpu arm1176); exact=0 ;;
  *) echo "no emulated e2e for $triple" >&2; exit 2 ;;
esac
bin="$top/target/$triple/release/stratum1"
[ -x "$bin" ] || { echo "$bin missing: run scripts/cross/build.sh $triple first" >&2; exit 1; }
host="$top/target/release/stratum1"
[ -x "$host" ] || cargo build --release --locked

echo "== $triple: simulate --scenario pi-pps-hat --json (${run[*]})"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$host" simulate --scenario pi-pps-hat --json | tail -n1 >"$work/x86.json"
"${run[@]}" "$bin" simulate --scenario pi-pps-hat --json | tail -n1 >"$work/arm.json"
python3 - "$work/x86.json" "$work/arm.json" "$exact" <<'PY'
import json, sys
x86, arm = (json.load(open(p)) for p in sys.argv[1:3])
exact = sys.argv[3] == "1"
wall = {"wall_s", "speedup"}  # wall-clock figures: not deterministic
assert set(x86) == set(arm), f"keys differ: {set(x86) ^ set(arm)}"
worst, differing = 0.0, []
for k in sorted(set(x86) - wall):
    a, b = x86[k], arm[k]
    if a == b:
        continue
    if exact or not (isinstance(a, float) and isinstance(b, float)):
        sys.exit(f"{k}: x86-64 {a!r}, ARM {b!r}")
    rel = abs(a - b) / max(abs(a), abs(b))
    worst = max(worst, rel)
    differing.append(f"{k} ({rel:.1e})")
    if rel > 1e-12:
        sys.exit(f"{k}: x86-64 {a!r}, ARM {b!r} (relative {rel:.1e})")
print(json.dumps({k: v for k, v in arm.items() if k not in wall}))
same = len(set(x86) - wall) - len(differing)
print(f"{same} figures bit-identical to x86-64" + (f"; {', '.join(differing)} differ (relative)" if differing else ""))
PY

"$top/scripts/cross/vm-e2e.sh" "$triple"
echo "== $triple: e2e passed"
