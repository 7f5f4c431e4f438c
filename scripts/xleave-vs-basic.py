#!/usr/bin/env python3
"""What interleaved mode changes in chronyd's measurements of stratum1, on loopback.

Usage (root, after `cargo build --release` and scripts/fetch-peers.sh):
    scripts/xleave-vs-basic.py [--seconds 300] [--port 11801]

Starts `target/release/stratum1 run --simulate` (software clock, STRATUM1_FORBID_SYSTEM_CLOCK
set) listening on 127.0.0.1 and 127.0.0.2, waits until it serves stratum 1, then one
`chronyd -x` (CAP_SYS_TIME dropped, never touches the clock) polling both addresses every
second: 127.0.0.1 with `xleave`, 127.0.0.2 without. After --seconds it reads chronyd's
measurements log and prints, per server, the samples by mode (chrony's I/B flag), the mean,
standard deviation and largest |offset|, and the mean delay, then one JSON line. Both sources
are the same server process, so the difference between the two is the measurement method.
Everything it starts is stopped at the end.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "target/peers/root")


def wait_synchronised(binary, sock, limit):
    start = time.monotonic()
    while time.monotonic() - start < limit:
        out = subprocess.run([binary, "status", "--json", "--socket", sock], capture_output=True, text=True)
        if out.returncode == 0:
            try:
                if json.loads(out.stdout.strip().splitlines()[-1])["system"]["stratum"] == 1:
                    return
            except (ValueError, KeyError, IndexError):
                pass
        time.sleep(0.5)
    sys.exit("stratum1 never synchronised")


def parse_measurements(path, skip_s):
    """Per server address: (mode letter, offset s, delay s) after the first skip_s seconds."""
    rows = {}
    first = None
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) < 18 or not p[0][0].isdigit():
                continue
            t = time.mktime(time.strptime(p[0] + " " + p[1], "%Y-%m-%d %H:%M:%S"))
            first = first if first is not None else t
            if t - first < skip_s:
                continue
            # Date Time IP L St 123 567 ABCD LP RP Score Offset Peer-del Peer-disp Root-del
            # Root-disp Refid MTxRx
            mode = p[17][1] if len(p[17]) > 1 else "?"
            rows.setdefault(p[2], []).append((mode, float(p[11]), float(p[12])))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--port", type=int, default=11801)
    ap.add_argument("--skip", type=int, default=30, help="seconds of samples to leave out at the start")
    a = ap.parse_args()
    if not 10 <= a.seconds <= 3600:
        sys.exit("--seconds: 10-3600")
    binary = os.path.join(ROOT, "target/release/stratum1")
    chronyd = os.path.join(PEERS, "usr/sbin/chronyd")
    for f in (binary, chronyd):
        if not os.path.exists(f):
            sys.exit(f"missing {f}")
    tmp = tempfile.mkdtemp(prefix="xleave-")
    procs = []
    try:
        sock = os.path.join(tmp, "control.sock")
        cfg = os.path.join(tmp, "stratum1.toml")
        with open(cfg, "w") as f:
            f.write(
                f'[server]\nlisten = ["127.0.0.1:{a.port}", "127.0.0.2:{a.port}"]\n'
                f'[clock]\nmode = "software"\n[control]\nsocket = "{sock}"\n'
            )
        env = dict(os.environ, STRATUM1_FORBID_SYSTEM_CLOCK="1", RUST_LOG="warn")
        procs.append(subprocess.Popen([binary, "run", "--simulate", "--config", cfg], env=env))
        wait_synchronised(binary, sock, 120)
        cdir = os.path.join(tmp, "chrony")
        os.mkdir(cdir)
        os.chmod(tmp, 0o711)
        os.chmod(cdir, 0o770)
        shutil.chown(cdir, "nobody")
        directives = [
            "port 0",
            "cmdport 0",
            f"bindcmdaddress {cdir}/chronyd.sock",
            f"pidfile {cdir}/chronyd.pid",
            f"logdir {cdir}",
            "log measurements",
            f"server 127.0.0.1 port {a.port} iburst xleave minpoll 0 maxpoll 0",
            f"server 127.0.0.2 port {a.port} iburst minpoll 0 maxpoll 0",
        ]
        procs.append(
            subprocess.Popen(
                ["setpriv", "--bounding-set=-sys_time", "--", chronyd, "-d", "-x", "-u", "nobody", "-f", "/dev/null"]
                + directives,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        time.sleep(a.seconds)
        chronyc = [os.path.join(PEERS, "usr/bin/chronyc"), "-h", f"{cdir}/chronyd.sock"]
        print(subprocess.run(chronyc + ["sourcestats"], capture_output=True, text=True).stdout, file=sys.stderr)
        rows = parse_measurements(os.path.join(cdir, "measurements.log"), a.skip)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"seconds": a.seconds, "skipped_s": a.skip}
    for addr, label in ((f"127.0.0.1", "xleave"), ("127.0.0.2", "basic")):
        r = rows.get(addr, [])
        offs = [o for _, o, _ in r]
        modes = {m: sum(1 for x, _, _ in r if x == m) for m in sorted({x for x, _, _ in r})}
        if len(offs) < 2:
            result[label] = {"samples": len(offs)}
            continue
        result[label] = {
            "samples": len(offs),
            "modes": modes,
            "mean_offset_s": statistics.fmean(offs),
            "stdev_offset_s": statistics.stdev(offs),
            "max_abs_offset_s": max(abs(o) for o in offs),
            "mean_delay_s": statistics.fmean(d for _, _, d in r),
        }
        s = result[label]
        print(
            f"{label:7} {addr}: {s['samples']} samples {modes}, offset mean {s['mean_offset_s'] * 1e6:+.2f} µs, "
            f"stdev {s['stdev_offset_s'] * 1e6:.2f} µs, max |offset| {s['max_abs_offset_s'] * 1e6:.2f} µs, "
            f"delay mean {s['mean_delay_s'] * 1e6:.2f} µs",
            file=sys.stderr,
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
