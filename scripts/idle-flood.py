#!/usr/bin/env python3
"""Scrape latency while N idle connections are held open to a stratum1 HTTP listener.

Usage: scripts/idle-flood.py HOST:PORT [--idle 1000] [--scrapes 5]

Opens --idle connections to HOST:PORT (half of them send the start of a request head and then
nothing, like slowloris; the rest send nothing), then times --scrapes sequential
`GET /metrics` on fresh connections, each with a 120 s limit, and prints each latency and the
worst. Loopback only: it refuses any other address. Everything is closed at the end.
"""
import argparse
import ipaddress
import resource
import socket
import sys
import time


def scrape(host, port, limit):
    t0 = time.monotonic()
    with socket.create_connection((host, port), timeout=limit) as c:
        c.settimeout(limit)
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"bad reply: {data[:80]!r}")
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--scrapes", type=int, default=5)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit("loopback addresses only")
    port = int(port)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    idle = []
    for k in range(a.idle):
        s = socket.create_connection((host, port), timeout=30)
        if k % 2 == 0:
            try:
                s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
            except OSError:
                pass
        idle.append(s)
    print(f"{len(idle)} idle connections open")
    worst = 0.0
    for k in range(a.scrapes):
        took = scrape(host, port, 120.0)
        worst = max(worst, took)
        print(f"scrape {k + 1}: {took * 1e3:.1f} ms")
    print(f"worst of {a.scrapes}: {worst * 1e3:.1f} ms")
    for s in idle:
        s.close()


if __name__ == "__main__":
    main()
