#!/usr/bin/env bash
# scripts/cross/e2e.sh TRIPLE: end-to-end checks of an ARM release binary under qemu-user,
# against the x86-64 release binary (target/release/stratum1, built here if missing):
#   1. `simulate --scenario pi-pps-hat --json` gives the x86-64 figures: bit for bit on glibc
#      targets; on the static musl build every count, time and state is identical and the
#      floating-point figures may differ in the last few bits (musl's libm is not glibc's);
#   2. `run --simulate` (simulated receiver through a real pty, software clock) serves stratum 1,
#      refid PPS, to the ARM binary's own `query` and to the x86-64 one.
# Traffic stays on 127.0.0.0/8; the daemon never touches the host clock (software clock, and
# STRATUM1_FORBID_SYSTEM_CLOCK set).
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
daemon=
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
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

echo "== $triple: run --simulate answered by query"
addr=127.0.0.$((200 + RANDOM % 50))
port=$((20000 + RANDOM % 20000))
cat >"$work/stratum1.toml" <<EOF
[server]
listen = ["$addr:$port"]
[clock]
mode = "software"
[control]
socket = "$work/control.sock"
EOF
STRATUM1_FORBID_SYSTEM_CLOCK=1 "${run[@]}" "$bin" run --simulate --config "$work/stratum1.toml" \
  >"$work/daemon.log" 2>&1 &
daemon=$!
deadline=$((SECONDS + 180))
answer=
while [ $SECONDS -lt $deadline ]; do
  answer=$("${run[@]}" "$bin" query "$addr:$port" --json 2>/dev/null | tail -n1 || true)
  if python3 -c 'import json,sys; v=json.loads(sys.argv[1]); sys.exit(0 if v["stratum"]==1 and v["refid"]=="PPS" else 1)' "$answer" 2>/dev/null; then
    break
  fi
  answer=
  kill -0 "$daemon" 2>/dev/null || { cat "$work/daemon.log" >&2; echo "the daemon died" >&2; exit 1; }
  sleep 2
done
[ -n "$answer" ] || { tail -n 30 "$work/daemon.log" >&2; echo "no stratum 1 from $addr:$port within 180 s" >&2; exit 1; }
echo "ARM query:    $answer"
host_answer=$("$host" query "$addr:$port" --json | tail -n1)
echo "x86-64 query: $host_answer"
python3 -c 'import json,sys; v=json.loads(sys.argv[1]); assert v["stratum"]==1 and v["refid"]=="PPS" and abs(v["offset_s"])<0.01, v' "$host_answer"
echo "== $triple: e2e passed"
