#!/usr/bin/env python3
"""Independent checker: stratum1 `refclock test --replay` vs. the capture's own valid RMC seconds.

Usage: replay-coverage.py [--bin PATH] [--json OUT] LOG ...

Measures issue 3's check on captures from receivers we do not have (e.g. gpsd's regression
logs, test/daemon/*.log; keep them outside this repo): no time reported that the capture's
valid sentences do not support, no crash, and the share of valid-RMC seconds reported.

Per log:
  rmc_secs     distinct UTC seconds named by checksum-valid $..RMC with status A, mode (if any) != N,
               and a parsable time+date (2-digit year: 80-99 -> 19xx, 00-79 -> 20xx)
  reported     distinct seconds of `{"event":"time"}` lines
  covered      RMC seconds reported as-is or moved by +1024/+2048 weeks (rollover-corrected)
  unsupported  reported seconds whose time of day no valid time-bearing sentence carries
               (RMC A/mode!=N, GGA quality>0, GLL A/mode!=N, GNS any mode letter != N, ZDA any)
  strict_unsup reported seconds that equal no valid RMC second nor any dated ZDA second, even after
               +-1024/2048 weeks (informational: GGA/GLL-only seconds dated from earlier RMC land here)
Also: RMC 'A' without date, RMC A with mode E/M/S (our decoder's stricter rule), duplicate RMC
seconds, backwards steps among valid RMC seconds, exit status and stderr.
"""
import datetime as dt
import json
import os
import re
import subprocess
import sys

BIN = os.environ.get("STRATUM1_BIN", "target/release/stratum1")
SENT = re.compile(rb"\$([A-Z0-9]{2,10}),([\x20-\x7e]*?)\*([0-9A-Fa-f]{2})")
WEEKS = [dt.timedelta(weeks=1024 * k) for k in (0, 1, 2)]


def strip_comments(data: bytes) -> bytes:
    out, i = [], 0
    for line in data.split(b"\n"):
        if line.startswith(b"#"):
            continue
        out.append(line)
    return b"\n".join(out)


def parse_tod(s):
    m = re.fullmatch(r"(\d\d)(\d\d)(\d\d)(\.\d+)?", s)
    if not m:
        return None
    h, mi, se = int(m[1]), int(m[2]), int(m[3])
    if h > 23 or mi > 59 or se > 60 or (se == 60 and (h, mi) != (23, 59)):
        return None
    return (h, mi, se)


def parse_ddmmyy(s):
    if not re.fullmatch(r"\d{6}", s):
        return None
    d, m, y = int(s[:2]), int(s[2:4]), int(s[4:])
    y += 1900 if y >= 80 else 2000
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def key(date, tod):
    """Second identifier as a string; the leap second keeps :60."""
    return f"{date.isoformat()}T{tod[0]:02}:{tod[1]:02}:{tod[2]:02}Z"


def shift(k, delta):
    date = dt.date.fromisoformat(k[:10]) + delta
    return date.isoformat() + k[10:]


def analyse_capture(path):
    data = strip_comments(open(path, "rb").read())
    res = dict(sentences=0, bad_checksum=0, rmc=0, rmc_valid=0, rmc_A_nodate=0, rmc_A_mode_EMS=0,
               rmc_A_notime=0)
    rmc_secs, rmc_seq, tods, zda_secs = set(), [], set(), set()
    rmc_A_EMS_secs = set()
    for m in SENT.finditer(data):
        addr, body, ck = m[1].decode(), m[2], int(m[3], 16)
        x = 0
        for b in m[1] + b"," + body:
            x ^= b
        if x != ck:
            res["bad_checksum"] += 1
            continue
        res["sentences"] += 1
        f = body.decode().split(",")
        kind = addr[-3:] if len(addr) == 5 else None
        g = lambda i: f[i] if i < len(f) else ""
        if kind == "RMC":
            res["rmc"] += 1
            tod, status, date = parse_tod(g(0)), g(1), parse_ddmmyy(g(8))
            mode = g(11)[:1] if len(f) > 11 else ""
            if status != "A" or mode == "N":
                continue
            if tod is None:
                res["rmc_A_notime"] += 1
                continue
            tods.add(tod)
            if date is None:
                res["rmc_A_nodate"] += 1
                continue
            if mode in ("E", "M", "S"):
                res["rmc_A_mode_EMS"] += 1
                rmc_A_EMS_secs.add(key(date, tod))
            res["rmc_valid"] += 1
            k = key(date, tod)
            rmc_secs.add(k)
            rmc_seq.append(k)
        elif kind == "GGA":
            tod = parse_tod(g(0))
            if tod and g(5) not in ("", "0"):
                tods.add(tod)
        elif kind == "GLL":
            tod = parse_tod(g(4))
            if tod and g(5) == "A" and g(6)[:1] != "N":
                tods.add(tod)
        elif kind == "GNS":
            tod = parse_tod(g(0))
            if tod and any(c != "N" for c in g(5)):
                tods.add(tod)
        elif kind == "ZDA":
            tod = parse_tod(g(0))
            if tod:
                tods.add(tod)
                try:
                    zda_secs.add(key(dt.date(int(g(3)), int(g(2)), int(g(1))), tod))
                except ValueError:
                    pass
    res["rmc_secs"] = len(rmc_secs)
    res["rmc_dup_sentences"] = len(rmc_seq) - len(rmc_secs)
    res["rmc_backwards_steps"] = sum(1 for a, b in zip(rmc_seq, rmc_seq[1:]) if b < a)
    res["rmc_span"] = [min(rmc_secs), max(rmc_secs)] if rmc_secs else None
    return res, rmc_secs, tods, zda_secs, rmc_A_EMS_secs


def run(path, binary):
    p = subprocess.run([binary, "refclock", "test", "--replay", path, "--json"],
                       capture_output=True, timeout=300)
    times, summary, bad = [], None, 0
    for line in p.stdout.decode(errors="replace").splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if o.get("event") == "time":
            times.append(o)
        elif o.get("event") == "summary":
            summary = o
    return p.returncode, p.stderr.decode(errors="replace"), times, summary, bad


def check(path, binary=BIN):
    cap, rmc_secs, tods, zda_secs, ems = analyse_capture(path)
    rc, err, times, summary, bad = run(path, binary)
    rep = []
    for t in times:
        u = t["utc"]
        m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", u)
        rep.append(m[1] + "Z" if m else u)
    rep_set = set(rep)
    covered = {k for k in rmc_secs if any(shift(k, w) in rep_set for w in WEEKS)}
    rolled = {k for k in rmc_secs if k not in rep_set and k in covered}
    unsupported = sorted(k for k in rep_set
                         if (int(k[11:13]), int(k[14:16]), int(k[17:19])) not in tods)
    dated = rmc_secs | zda_secs
    strict = sorted(k for k in rep_set if not any(shift(k, -w) in dated for w in WEEKS))
    st = (summary or {}).get("nmea", {}).get("stats", {})
    r = dict(
        log=os.path.basename(path)[:-4], **cap,
        reported=len(rep_set), reported_events=len(rep),
        reported_dups=len(rep) - len(rep_set),
        reported_not_increasing=sum(1 for a, b in zip(rep, rep[1:]) if b <= a),
        covered=len(covered), rollover_matched=len(rolled),
        coverage=(100.0 * len(covered) / len(rmc_secs)) if rmc_secs else None,
        missed=sorted(rmc_secs - covered),
        missed_mode_EMS=len((rmc_secs - covered) & ems),
        unsupported=len(unsupported), unsupported_list=unsupported[:20],
        strict_unsupported=len(strict), strict_list=strict[:20],
        rc=rc, stderr=err.strip()[-2000:], bad_json_lines=bad, summary_present=summary is not None,
        verdict=(summary or {}).get("verdict"),
        exit_code=(summary or {}).get("exit_code"),
        crash=(summary is None or rc != (summary or {}).get("exit_code") or rc < 0 or "panick" in err),
        dec={k: st.get(k) for k in ("rejected_no_fix", "rejected_no_date", "rejected_backwards",
                                     "rejected_late", "rejected_same_second", "unconfirmed",
                                     "contradictions", "date_conflicts", "sessions", "parse_errors",
                                     "rollover_corrections", "checksum_errors", "no_checksum",
                                     "cycles", "rmc_valid_cycles")},
        last_parse_error=st.get("last_parse_error"),
    )
    return r


def main(argv):
    binary, out, logs = BIN, None, []
    it = iter(argv)
    for a in it:
        if a == "--bin":
            binary = next(it)
        elif a == "--json":
            out = next(it)
        else:
            logs.append(a)
    if not logs:
        sys.exit(__doc__)
    results = []
    hdr = f"{'log':28} {'rmcA':>5} {'rep':>5} {'cov%':>6} {'unsup':>5} {'strict':>6} {'rc':>3} notes"
    print(hdr)
    for p in logs:
        r = check(p, binary)
        results.append(r)
        notes = []
        if r["rmc_dup_sentences"]:
            notes.append(f"dupRMC={r['rmc_dup_sentences']}")
        if r["rmc_backwards_steps"]:
            notes.append(f"back={r['rmc_backwards_steps']}")
        if r["rmc_A_nodate"]:
            notes.append(f"A-nodate={r['rmc_A_nodate']}")
        if r["rmc_A_mode_EMS"]:
            notes.append(f"A-modeEMS={r['rmc_A_mode_EMS']}")
        if r["rollover_matched"]:
            notes.append(f"rollover={r['rollover_matched']}")
        if r["stderr"]:
            notes.append("stderr")
        if r["crash"]:
            notes.append("CRASH")
        if r["rc"]:
            notes.append(f"verdict={r['verdict']}")
        cov = "-" if r["coverage"] is None else f"{r['coverage']:.1f}"
        print(f"{r['log']:28} {r['rmc_secs']:>5} {r['reported']:>5} {cov:>6} {r['unsupported']:>5} "
              f"{r['strict_unsupported']:>6} {r['rc']:>3} {' '.join(notes)}")
    tot_rmc = sum(r["rmc_secs"] for r in results)
    tot_cov = sum(r["covered"] for r in results)
    print(f"TOTAL logs={len(results)} rmc_secs={tot_rmc} covered={tot_cov} "
          f"({100.0 * tot_cov / max(tot_rmc, 1):.2f}%) unsupported={sum(r['unsupported'] for r in results)} "
          f"strict_unsupported={sum(r['strict_unsupported'] for r in results)} "
          f"nonzero_rc={sum(1 for r in results if r['rc'] != 0)} crashes={[r['log'] for r in results if r['crash']]} "
          f"below98={[r['log'] for r in results if r['coverage'] is not None and r['coverage'] < 98]}")
    if out:
        with open(out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
