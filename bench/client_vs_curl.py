#!/usr/bin/env python3
"""client_vs_curl.py - build/resumed-upload against `curl -T`, same file, same server, same run.

Target (from the issue): uploading 1 GiB on loopback, resumed-upload's rate is
within 10% of curl's (>= 0.90x), with both clients' CPU seconds side by side.

Creates one random file of --size bytes in a fresh work directory under --dir
(on the same filesystem as the server's store, which lives next to it), starts
`build/resumed --listen 127.0.0.1:0 --dir STORE` and then, in --rounds rounds
(the order of the two clients alternates every round), uploads the file with:

  curl            POST /files/ (Tus-Resumable, Upload-Length; done by this script,
                  not timed), then
                  curl -sS -X PATCH -T FILE -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0'
                       -H 'Content-Type: application/offset+octet-stream' -H 'Expect:' URL
  resumed-upload  resumed-upload --quiet --no-state FILE http://127.0.0.1:PORT/files/
                  (its own POST is inside its timed window: one loopback round trip)

Per run: wall time from starting the client process to reaping it, the client
process's user+sys CPU seconds (os.wait4 rusage: the client and anything it
waited for, nothing else), MiB/s = size / wall, and the server's CPU seconds
(utime+stime delta of /proc/PID/stat). After each run, untimed: HEAD must report
Upload-Offset == size, the upload is read back with GET and compared with the
file byte for byte, then removed with a tus DELETE and sync(2) is called, so no
run competes with the previous one's writeback and the disk does not fill.

Memory (--prefault): on this VM (Firecracker, virtio_balloon free page
reporting) free memory is handed back to the host about 2 s after it is freed,
and a server filling the page cache with pages the host must fault back in
spends 2-4x the CPU (seen as the *server's* CPU time; see bench/tus_compare.py).
Each run frees a whole upload (DELETE), so whether the next run finds backed
pages depends on how the 2 s fall: measured with curl on both sides, every
second upload was slow (~600 vs ~1500 MiB/s), and an untimed warm-up upload
right before every timed one did not help (it only shifts the phase); after a
3 s pause every upload was slow. So right before each upload (warm-up or timed)
the script writes to --prefault bytes of fresh anonymous memory (default
--size + 256M, ~0.7 s, not timed) and frees it, leaving backed free pages for
the server; rates then stay within about +-15% run to run. --prefault 0 turns
this off; it is skipped when MemAvailable is short.

Warm-up (--warmup): "first" (default) runs each client once, untimed, right
before its timed run in round 1 (the first upload of a process tree is often
slower: binaries, first connection, first blocks of the store); "each" does
that in every round; "none" never.

With pinning (default when there are >= 2 CPUs and taskset exists) the server
runs on CPU 1 and this script and both clients on CPU 0.

Reported: one line per run, then per client the median over rounds (min-max)
of MiB/s, wall and CPU seconds, the median of the per-round rate ratios
resumed-upload/curl (both ran back to back in each round, so drift between
rounds cancels), and a last line such as
  resumed-upload/curl rate: 0.98x; CPU: 1.20 s vs 1.05 s

Needs build/resumed and build/resumed-upload (this script builds nothing:
`make build/resumed build/resumed-upload`) and curl.
Exit status: 0 when every run succeeded (a missed target is reported, not
fatal); 1 when something failed (setup, a client, a check, the server).
"""

import argparse
import http.client
import mmap
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.dont_write_bytecode = True  # importing proclib must not leave bench/__pycache__ in the work tree
from proclib import (TUS, Server, cleanup, cpu_seconds, fs_type, loadavg, on_signal, procs, temps,  # noqa: E402
                     tus_create, tus_head_offset, tus_request)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MIB = 1024 * 1024
PAGE = mmap.PAGESIZE
TARGET = 0.90  # resumed-upload rate >= 0.90x curl's
CURL, CLIENT = "curl", "resumed-upload"


def log(msg=""):
    print(msg, flush=True)


def parse_bytes(s):
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*", s, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {s!r} (e.g. 1G, 256M, 1048576)")
    return int(m.group(1)) * 1024 ** " KMGT".index((m.group(2) or " ").upper())


def parse_size(s):
    n = parse_bytes(s)
    if n <= 0:
        raise argparse.ArgumentTypeError("size must be > 0")
    return n


def fmt_size(n):
    return f"{n / (1 << 30):g} GiB" if n >= 1 << 30 else f"{n / MIB:g} MiB"


def same_content(port, path, datafile, size):
    """GET the finished upload and compare it with the file; None if equal, else why not."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        c.request("GET", path, headers=TUS)
        r = c.getresponse()
        if r.status != 200:
            r.read()
            return f"GET {path} -> {r.status}"
        off = 0
        with open(datafile, "rb") as f:
            while True:
                got = r.read(4 * MIB)
                if not got:
                    break
                if f.read(len(got)) != got:
                    return f"content differs in the 4 MiB from offset {off}"
                off += len(got)
        return None if off == size else f"GET returned {off} bytes, expected {size}"
    finally:
        c.close()


# ---------- one client run ----------

def prefault(nbytes):
    """Write to nbytes of fresh anonymous memory and free it again, so that the
    page cache the server fills next comes from pages the host backs right now
    (see "Memory" at the top). Not timed."""
    if nbytes <= 0:
        return
    m = mmap.mmap(-1, nbytes)
    try:
        m[::PAGE] = b"\x01" * ((nbytes + PAGE - 1) // PAGE)
    finally:
        m.close()


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def run_proc(cmd, workdir):
    """Runs cmd to completion. Returns (exit code, wall s, user s, sys s, stdout, stderr)."""
    out = open(os.path.join(workdir, "client.stdout"), "w+b")
    err = open(os.path.join(workdir, "client.stderr"), "w+b")
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        procs.append(p)
        _, wstatus, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(wstatus)
        procs.remove(p)
        out.seek(0)
        err.seek(0)
        return (p.returncode, wall, ru.ru_utime, ru.ru_stime,
                out.read().decode(errors="replace"), err.read().decode(errors="replace"))
    finally:
        out.close()
        err.close()


def upload(tool, a, srv, datafile, workdir):
    """One upload with tool, checked and removed afterwards. Returns a dict; raises RuntimeError on failure."""
    base = f"http://127.0.0.1:{srv.port}/files/"
    if tool == CURL:
        path = tus_create(srv.port, a.size)
        cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}",
               "-X", "PATCH", "-T", datafile, "-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0",
               "-H", "Content-Type: application/offset+octet-stream", "-H", "Expect:",
               f"http://127.0.0.1:{srv.port}{path}"]
    else:
        path = None
        cmd = [a.client, "--quiet", "--no-state", datafile, base]
    os.sync()  # earlier runs' writeback stays out of the timed window
    prefault(a.prefault)
    s0 = cpu_seconds(srv.pid)
    rc, wall, user, sys_, out, err = run_proc(cmd, workdir)
    scpu = cpu_seconds(srv.pid) - s0 if srv.alive() else float("nan")
    errtail = err.strip()[-400:]
    if tool == CURL:
        f = out.split()
        if rc != 0 or len(f) != 2 or f[0] != "204" or int(float(f[1])) != a.size:
            raise RuntimeError(f"curl exit {rc}, '%{{http_code}} %{{size_upload}}' = {out.strip()!r} "
                               f"(want '204 {a.size}'): {errtail}")
    else:
        lines = [ln for ln in out.splitlines() if ln.strip()]
        m = re.fullmatch(r"(\S+)\t(.*)", lines[0]) if len(lines) == 1 else None
        if rc != 0 or not m or m.group(2) != datafile:
            raise RuntimeError(f"{CLIENT} exit {rc}, stdout {out[-300:]!r} (want one '<url>\\t{datafile}' line): "
                               f"{errtail}")
        u = urllib.parse.urlsplit(m.group(1))
        if u.scheme != "http" or u.netloc != f"127.0.0.1:{srv.port}" or not u.path.startswith("/files/"):
            raise RuntimeError(f"{CLIENT} printed an upload URL that is not on this server: {m.group(1)!r}")
        path = u.path
    if not srv.alive():
        raise RuntimeError(f"resumed died (exit {srv.proc.returncode}): {srv.stderr_tail()}")
    off = tus_head_offset(srv.port, path)
    if off != a.size:
        raise RuntimeError(f"{tool}: server holds {off} bytes, expected {a.size}")
    bad = same_content(srv.port, path, datafile, a.size)
    if bad:
        raise RuntimeError(f"{tool}: {bad}")
    st, _ = tus_request(srv.port, "DELETE", path)
    if st != 204:
        raise RuntimeError(f"DELETE {path} -> {st}")
    os.sync()
    return dict(wall=wall, user=user, sys=sys_, cpu=user + sys_, mibs=a.size / MIB / wall, srv=scpu,
                stderr=errtail)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    ap = argparse.ArgumentParser(description="resumed-upload vs curl -T: MiB/s and client CPU seconds, "
                                 "uploading one file to build/resumed on loopback.")
    ap.add_argument("--size", type=parse_size, default=parse_size("1G"),
                    help="bytes per upload, suffix K/M/G/T = powers of 1024 (default 1G)")
    ap.add_argument("--rounds", type=int, default=3, help="measured rounds, each runs both clients (default 3)")
    ap.add_argument("--dir", default="/var/tmp",
                    help="parent of the work directory that holds the file and the server's store "
                         "(default /var/tmp)")
    ap.add_argument("--warmup", choices=("first", "each", "none"), default="first",
                    help="untimed run of a client before its timed run: in round 1 only (default), "
                         "in every round, or never")
    ap.add_argument("--prefault", type=parse_bytes, default=None,
                    help="anonymous memory written and freed right before every upload "
                         "(default: --size + 256M; 0 turns it off)")
    ap.add_argument("--no-pin", dest="pin", action="store_false",
                    help="do not pin the server to CPU 1 and the clients to CPU 0")
    ap.add_argument("--server", default=os.path.join(ROOT, "build", "resumed"),
                    help="the server binary (default build/resumed)")
    ap.add_argument("--client", default=os.path.join(ROOT, "build", "resumed-upload"),
                    help="the client binary (default build/resumed-upload)")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error("--rounds must be >= 1")
    if a.prefault is None:
        a.prefault = a.size + 256 * MIB

    for b in (a.server, a.client):
        if not os.access(b, os.X_OK):
            log(f"client_vs_curl: {b} missing: run `make build/resumed build/resumed-upload`")
            return 1
    if not shutil.which("curl"):
        log("client_vs_curl: curl not found")
        return 1
    pin = a.pin and (os.cpu_count() or 1) >= 2 and bool(shutil.which("taskset"))
    if pin:
        os.sched_setaffinity(0, {0})  # this script and the clients (inherited) on CPU 0, the server on CPU 1

    work = tempfile.mkdtemp(prefix="client-vs-curl-", dir=a.dir)
    temps.append(work)
    st = os.statvfs(work)
    need = 2 * a.size + 256 * MIB  # the file, one upload at a time, slack
    if st.f_bavail * st.f_frsize < need:
        log(f"client_vs_curl: {work} has less than {need // MIB} MiB free")
        return 1
    store = os.path.join(work, "store")
    os.mkdir(store)
    # The file and one upload in the page cache, the prefault area, and slack.
    if a.prefault and mem_available() < 2 * a.size + a.prefault + 512 * MIB:
        log(f"client_vs_curl: only {mem_available() // MIB} MiB available: not prefaulting (expect noisy rates)")
        a.prefault = 0

    curl_v = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    v = subprocess.run([a.client, "--version"], capture_output=True, text=True)
    client_v = (v.stdout or v.stderr).strip().split("\n")[0] if v.returncode == 0 else ""
    log(f"# client_vs_curl: {fmt_size(a.size)} per upload, {a.rounds} rounds (order alternates), "
        f"warm-up {a.warmup}, prefault {fmt_size(a.prefault) if a.prefault else 'off'}, pinning {'server CPU 1 / clients CPU 0' if pin else 'off'}, {os.cpu_count()} CPUs")
    log(f"# {' '.join(curl_v.split()[:2])}; {CLIENT}: {client_v or '?'} ({a.client})")

    datafile = os.path.join(work, "data.bin")
    t0 = time.time()
    with open(datafile, "wb") as f:
        left = a.size
        while left:
            n = min(left, 4 * MIB)
            f.write(os.urandom(n))
            left -= n
    os.sync()
    log(f"# data: {datafile} ({fs_type(work)}), {fmt_size(a.size)} random, made in {time.time() - t0:.1f} s; "
        f"store {store}")

    srv = Server("resumed", [a.server, "--listen", "127.0.0.1:0", "--dir", store], work, pin)
    log(f"# resumed pid {srv.pid} on 127.0.0.1:{srv.port}; load average {loadavg()}")
    log()

    failures = []
    results = {CURL: [], CLIENT: []}
    ratios = []
    for rnd in range(a.rounds):
        order = (CURL, CLIENT) if rnd % 2 == 0 else (CLIENT, CURL)
        row = {}
        for tool in order:
            runs = [("warm-up", False)] if a.warmup == "each" or (a.warmup == "first" and rnd == 0) else []
            for tag, timed in runs + [(f"round {rnd + 1}", True)]:
                try:
                    r = upload(tool, a, srv, datafile, work)
                except (RuntimeError, OSError, http.client.HTTPException, subprocess.SubprocessError) as e:
                    failures.append(f"{tag} {tool}: {e}")
                    log(f"  {tag:8} {tool:14} FAILED: {e}")
                    break
                log(f"  {tag:8} {tool:14} {r['mibs']:7.0f} MiB/s  wall {r['wall']:6.2f} s  "
                    f"CPU {r['cpu']:5.2f} s (user {r['user']:.2f} sys {r['sys']:.2f})  "
                    f"server CPU {r['srv']:5.2f} s" + (f"  stderr: {r['stderr'][:120]!r}" if r["stderr"] else ""))
                if timed:
                    results[tool].append(r)
                    row[tool] = r
            if not srv.alive():
                break
        if len(row) == 2:
            ratios.append(row[CLIENT]["mibs"] / row[CURL]["mibs"])
        if not srv.alive():
            failures.append(f"resumed died (exit {srv.proc.returncode}): {srv.stderr_tail()}")
            break

    log()
    log(f"## {fmt_size(a.size)} upload to resumed on loopback: median of {a.rounds} rounds (min-max); "
        f"MiB/s = 1048576 B/s; CPU = the client process's user+sys")
    log()
    log("| client | MiB/s | wall s | CPU s | user s | sys s | server CPU s |")
    log("|---|---|---|---|---|---|---|")
    for tool in (CURL, CLIENT):
        rs = results[tool]
        if not rs:
            log(f"| {tool} | (no successful run) | | | | | |")
            continue

        def col(k, fmt):
            xs = [x[k] for x in rs]
            return f"{format(med(xs), fmt)} ({format(min(xs), fmt)}-{format(max(xs), fmt)})"
        log(f"| {tool} | {col('mibs', '.0f')} | {col('wall', '.2f')} | {col('cpu', '.2f')} | "
            f"{med([x['user'] for x in rs]):.2f} | {med([x['sys'] for x in rs]):.2f} | "
            f"{med([x['srv'] for x in rs]):.2f} |")
    log()
    if ratios:
        ok = med(ratios) >= TARGET
        log(f"  per-round rate ratios {CLIENT}/curl: {', '.join(f'{x:.2f}' for x in ratios)}; "
            f"target >= {TARGET:.2f}x: {'PASS' if ok else 'MISS'}")
    log(f"  load average now: {loadavg()} (shared machine: expect run-to-run noise, see min-max)")
    if failures:
        log()
        log("## FAILURES")
        for x in failures:
            log("  - " + x)
    log()
    if ratios:
        log(f"{CLIENT}/curl rate: {med(ratios):.2f}x; CPU: {med([x['cpu'] for x in results[CLIENT]]):.2f} s vs "
            f"{med([x['cpu'] for x in results[CURL]]):.2f} s")
    else:
        log(f"{CLIENT}/curl rate: not measured")
    if failures:
        log(f"client_vs_curl: {len(failures)} run(s) failed (see ## FAILURES)")
        return 1
    return 0


if __name__ == "__main__":
    rc = 1
    try:
        rc = main()
    except (RuntimeError, OSError, subprocess.SubprocessError, http.client.HTTPException) as e:
        log(f"client_vs_curl: {e}")
    finally:
        cleanup()
    sys.exit(rc)
