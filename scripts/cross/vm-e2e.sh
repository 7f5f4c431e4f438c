#!/usr/bin/env bash
# scripts/cross/vm-e2e.sh TRIPLE: boots Debian's own ARM kernel in qemu-system (full-system
# emulation, software only) with the ARM release binary in an initramfs, the guest's clock set
# to 2040-03-01 (the guest's, never the host's), and checks inside the guest:
#   - `run --simulate` (simulated receiver through a real pty) serves stratum 1, refid PPS, to
#     `query`, with 2040 timestamps, and `status --json` says stratum 1.
# Why a VM: qemu-user does not translate the TCGETS2/TCSETS2 ioctls that the serialport crate
# uses on every Linux tty, so the simulated receiver's pty cannot be opened under qemu-user.
# The 32-bit guest (armmp kernel, Cortex-A15) also runs the binary on a kernel clock past
# 2038-01-19. Kernel and busybox come from Debian's packages (scripts/cross/apt-fetch.sh),
# qemu-system-arm from Debian.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
triple=${1:?usage: vm-e2e.sh TRIPLE}
case "$triple" in
  arm-unknown-linux-musleabi)
    kernel_pkg=linux-image-armmp:armhf busybox_pkg=busybox-static:armel
    qemu=(qemu-system-arm -M virt -cpu cortex-a15) ;;
  aarch64-unknown-linux-gnu)
    kernel_pkg=linux-image-arm64:arm64 busybox_pkg=busybox-static:arm64
    qemu=(qemu-system-aarch64 -M virt -cpu cortex-a53) ;;
  *) echo "no VM for $triple" >&2; exit 2 ;;
esac
bin="$top/target/$triple/release/stratum1"
[ -x "$bin" ] || { echo "$bin missing: run scripts/cross/build.sh $triple first" >&2; exit 1; }
guest_date=2040-03-01T00:00:00

if ! command -v qemu-system-arm >/dev/null || ! command -v cpio >/dev/null; then
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 qemu-system-arm cpio >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 qemu-system-arm cpio >/dev/null
  }
fi
vm="$top/target/cross/vm/$triple"
if ! ls "$vm"/parts/boot/vmlinuz-* >/dev/null 2>&1 || [ ! -x "$vm/parts/bin/busybox" ]; then
  rm -rf "$vm/parts"
  "$top/scripts/cross/apt-fetch.sh" "$vm/parts" "$kernel_pkg" "$busybox_pkg"
  # Only the kernel image is needed (everything the guest uses is built in).
  rm -rf "$vm/parts/lib/modules" "$vm/parts/usr/lib/linux-image-"*
fi
kernel=$(ls "$vm"/parts/boot/vmlinuz-* | tail -n1)

# The initramfs: busybox, the binary (and for glibc its loader and libraries), an init script.
root="$vm/initramfs"
rm -rf "$root" && mkdir -p "$root"/{bin,proc,sys,dev,tmp,etc,lib}
cp "$vm/parts/bin/busybox" "$root/bin/busybox"
cp "$bin" "$root/stratum1"
# The guest's clock is set by a small helper of 64-bit time_t (see vm-settime.c).
if [ "$triple" = aarch64-unknown-linux-gnu ]; then
  aarch64-linux-gnu-strip -o "$root/stratum1" "$bin"
  for lib in ld-linux-aarch64.so.1 libc.so.6 libm.so.6 libgcc_s.so.1; do
    cp -L "/usr/aarch64-linux-gnu/lib/$lib" "$root/lib/$lib"
  done
  aarch64-linux-gnu-gcc -O2 -static -o "$root/bin/vm-settime" scripts/cross/vm-settime.c
else
  arm-linux-gnueabi-strip -o "$root/stratum1" "$bin"
  musl="$top/target/cross/armel-musl"
  arm-linux-gnueabi-gcc -O2 -c -nostdinc -isystem "$musl/usr/include/arm-linux-musleabi" \
    -isystem "$(arm-linux-gnueabi-gcc -print-file-name=include)" -o "$vm/vm-settime.o" scripts/cross/vm-settime.c
  scripts/cross/arm-musl-cc -o "$root/bin/vm-settime" "$vm/vm-settime.o"
fi
guest_epoch=$(date -u -d "$guest_date" +%s)
# The lib's unit-test binary (scripts/cross/build.sh --tests), for the PPS ioctl tests that need
# a kernel: qemu-user refuses ioctls it does not know, this guest's kernel answers them.
strip=arm-linux-gnueabi-strip
[ "$triple" = aarch64-unknown-linux-gnu ] && strip=aarch64-linux-gnu-strip
tests=$(cat "$top/target/$triple/lib-tests.path" 2>/dev/null || true)
[ -n "$tests" ] && [ -x "$tests" ] && "$strip" -o "$root/stratum1-tests" "$tests"
cat >"$root/etc/stratum1.toml" <<'EOF'
[server]
listen = ["127.0.0.1:12300"]
[clock]
mode = "software"
[control]
socket = "/tmp/control.sock"
EOF
cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmp /tmp
ifconfig lo 127.0.0.1 up
echo "VM-CLOCK $(/bin/vm-settime GUEST_EPOCH) $(uname -m)"
# busybox here may have a 32-bit time_t (Debian's armel build): what such a program makes of it.
echo "VM-BUSYBOX-DATE $(date -u +%Y-%m-%dT%H:%M:%SZ 2>&1)"
if [ -x /stratum1-tests ]; then
  cd /tmp && /stratum1-tests refclock::pps::kernel_abi refclock::pps::kernel::tests::opening_a_non_pps_file \
    cli::refclock_test::probe::tests::a_wrong_device 2>&1 | grep -E '^test |test result' | sed 's/^/VM-TESTS /'
  cd /
fi
STRATUM1_FORBID_SYSTEM_CLOCK=1 /stratum1 run --simulate --config /etc/stratum1.toml >/tmp/daemon.log 2>&1 &
i=0
while [ $i -lt 120 ]; do
  out=$(/stratum1 query 127.0.0.1:12300 --json 2>/dev/null | tail -n1)
  case "$out" in *'"refid":"PPS"'*'"stratum":1,'*) echo "VM-QUERY $out"; break ;; esac
  i=$((i + 1))
  sleep 2
done
# status reads a snapshot the daemon publishes every second: it may trail the served reply.
i=0
while [ $i -lt 15 ]; do
  st=$(/stratum1 status --json --socket /tmp/control.sock 2>&1)
  case "$st" in *'"stratum":1,'*) break ;; esac
  i=$((i + 1))
  sleep 1
done
echo "VM-STATUS $st"
tail -n 5 /tmp/daemon.log | sed 's/^/VM-LOG /'
echo VM-DONE
poweroff -f
EOF
sed -i "s/GUEST_EPOCH/$guest_epoch/" "$root/init"
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$vm/initramfs.gz"

echo "== $triple: booting ${qemu[*]} with the guest clock at $guest_date"
log="$vm/console.log"
timeout 900 "${qemu[@]}" -m 512 -smp 1 -nographic -no-reboot -rtc "base=$guest_date" \
  -kernel "$kernel" -initrd "$vm/initramfs.gz" -append "console=ttyAMA0 panic=-1 quiet stratum1-vm-guest" \
  </dev/null >"$log" 2>&1 || true
grep -a '^VM-' "$log" | cut -c1-400
grep -aq '^VM-DONE' "$log" || { tail -n 40 "$log" >&2; echo "the guest did not finish" >&2; exit 1; }

python3 - "$log" <<'PY'
import json, sys
lines = {}
for raw in open(sys.argv[1], "rb").read().decode("utf-8", "replace").splitlines():
    raw = raw.strip("\r")
    if raw.startswith("VM-"):
        tag, _, rest = raw.partition(" ")
        lines.setdefault(tag, rest)
import datetime
secs, machine = lines["VM-CLOCK"].split()
date = datetime.datetime.fromtimestamp(int(secs), datetime.timezone.utc).isoformat()
assert date.startswith("2040-03-01"), f"guest clock: {date}"
date = f"{date} ({machine}; busybox date says {lines.get('VM-BUSYBOX-DATE')})"
tests = [l[9:] for l in open(sys.argv[1], "rb").read().decode("utf-8", "replace").splitlines() if l.startswith("VM-TESTS ")]
if tests:
    summary = [t for t in tests if t.startswith("test result")]
    assert summary and summary[0].startswith("test result: ok.") and " 0 failed" in summary[0], tests
    ran = [t for t in tests if t.startswith("test ")]
    assert len(ran) >= 6, tests
    print(f"PPS ioctl tests on the guest's kernel: {summary[0]}")
assert "VM-QUERY" in lines, "no stratum 1 answer in the guest"
q = json.loads(lines["VM-QUERY"])
assert q["stratum"] == 1 and q["refid"] == "PPS" and abs(q["offset_s"]) < 0.01, q
assert q["time"].startswith("2040-03-01") and q["reference_time"].startswith("2040-03-01"), q
s = json.loads(lines["VM-STATUS"])
assert s["system"]["stratum"] == 1 and s["time"].startswith("2040-03-01"), s["system"]
print(f"guest at {date}: run --simulate served stratum 1/PPS to query (time {q['time']}, offset {q['offset_s']:.2e} s)")
PY
echo "== $triple: VM e2e passed"
