#!/usr/bin/env python3
"""tus_compare.py - resumed against @tus/server (+ @tus/file-store) on the same tus 1.0.0 work.

Two measurements, both servers side by side in the same run:

  HEAD    one upload per server (POST, then a 1 KiB PATCH so the offset is not 0),
          then wrk hammers HEAD /files/<id> over keep-alive connections
          (THREADS threads, CONNS connections, DURATION s): requests/s and p99.
          Target: resumed >= 5x @tus/server requests/s.
          All connections asking about ONE upload is the worst case for
          @tus/server: its MemoryLocker serialises requests per upload id and
          waiters poll with setImmediate. HEAD_IDS=N spreads the load over N
          uploads (round robin within each wrk thread) for the many-clients
          case; that needs a Lua request() call per request, which makes wrk
          itself the limit for resumed (~65k instead of ~100k req/s).
          wrk needs one shim in server.mjs to count @tus/server's HEAD
          responses at all (see WRK_LUA below).
  upload  POST with Upload-Length SIZE, then ONE PATCH streaming SIZE bytes from
          memory; MiB/s over the client's wall time (connect .. end of response).
          The final offset is checked with HEAD (must equal SIZE), so a failed or
          truncated upload cannot look fast. Target: resumed >= 2x @tus/server.
          Each timed upload directly follows an untimed one to the same server
          (UPLOAD_WARMUP=0 drops it). On this VM (Firecracker, free page
          reporting via virtio_balloon) memory freed for ~2 s is handed back to
          the host, and the first 1 GiB of page cache written after any pause
          pays for faulting it back in: 2-4x slower, with the cost showing up as
          the *server's* CPU time. Without the warm-up, whichever server went
          first in a round lost (measured: resumed ~450-800 MiB/s cold vs
          ~1700-2000 warm on tmpfs), so the ratio flipped with the order.

The machine is shared, so no single run means much: the two servers are measured
back to back in each of ROUNDS paired rounds (the order flips every round), the
per-round ratio is reported, and the verdict uses the median of those ratios,
which cancels drift between rounds.

With PIN=1 (default, needs >= 2 CPUs) every server runs on CPU 1 and the clients
(this script, wrk) on CPU 0, so each server gets the same single core whatever
its threading (node's libuv pool and resumed's single thread alike).

Not like for like, on purpose: resumed answers a PATCH only after fdatasync;
@tus/file-store never syncs. On a disk DEST resumed pays for durability inside
the timed window, @tus/server does not (DEST=/dev/shm takes that out).

Environment:
  ROUNDS=5  DURATION=10 (s per wrk run)  SIZE_MIB=1024  THREADS=2  CONNS=50
  HEAD_IDS=1 (uploads the HEAD load is spread over)  UPLOAD_WARMUP=1
  DEST      parent directory for both servers' stores (default: a fresh
            mktemp dir under /var/tmp); both stores always share one filesystem
  PIN=1     (0 disables CPU pinning)   NO_MAKE=1 (skip `make`)
  RESUMED_BIN (default build/resumed)  NODE (default node)
Exit status: 0 every target held; 1 a target missed; 2 a run failed (server
died, wrong status, offset != SIZE, wrk errors) or setup failed.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # importing proclib must not leave bench/__pycache__ in the work tree
from proclib import (Server, cleanup, cpu_seconds, fs_type, loadavg, on_signal, status_kb, temps,  # noqa: E402
                     tus_create, tus_head_offset, tus_request)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NODE_DIR = os.path.join(ROOT, "tests", "tus-node")

ROUNDS = int(os.environ.get("ROUNDS", "5"))
DURATION = int(os.environ.get("DURATION", "10"))
SIZE = int(os.environ.get("SIZE_MIB", "1024")) * 1024 * 1024
THREADS = int(os.environ.get("THREADS", "2"))
CONNS = int(os.environ.get("CONNS", "50"))
HEAD_IDS = int(os.environ.get("HEAD_IDS", "1"))
UPLOAD_WARMUP = os.environ.get("UPLOAD_WARMUP", "1") != "0"
DEST = os.environ.get("DEST", "")
PIN = os.environ.get("PIN", "1") != "0" and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
RESUMED_BIN = os.environ.get("RESUMED_BIN", os.path.join(ROOT, "build", "resumed"))
NODE = os.environ.get("NODE", "node")

HEAD_TARGET = 5.0    # resumed HEAD req/s >= 5x @tus/server
UPLOAD_TARGET = 2.0  # resumed upload MiB/s >= 2x @tus/server
MIB = 1024 * 1024

# wrk cannot do HEAD on its own: its http_parser is never told the request was
# HEAD, so a response without Content-Length is read "until EOF" and never
# completes (wg/wrk#198). resumed sends Content-Length: 0; server.mjs adds the
# same for @tus/server. done() prints exact numbers as one JSON line instead of
# making us parse wrk's rounded text ("1.23ms"). With several upload paths the
# requests are formatted once in init(): a wrk.format() per request would make
# wrk, not the server, the bottleneck.
WRK_LUA = r"""
wrk.method = "HEAD"
wrk.headers["Tus-Resumable"] = "1.0.0"
local paths = {%s}
if #paths > 1 then
  local reqs, n = {}, 0
  init = function(args)
    for i, p in ipairs(paths) do reqs[i] = wrk.format(nil, p) end
  end
  request = function()
    n = n + 1
    return reqs[n %% #reqs + 1]
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"p50_us":%%.0f,"p99_us":%%.0f,"max_us":%%.0f,' ..
    '"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def log(msg=""):
    print(msg, flush=True)


# ---------- setup: every dependency is fetched on demand so one command suffices ----------

def ensure_wrk():
    if shutil.which("wrk"):
        return
    log("# wrk missing: installing the Debian package")
    apt = ["apt-get", "install", "-y", "wrk"]
    if os.geteuid() != 0:
        apt = ["sudo", "-n"] + apt
    if subprocess.run(apt, stdout=subprocess.DEVNULL).returncode != 0:
        # A fresh container often has no package lists yet.
        subprocess.run(apt[:-3] + ["update"], stdout=subprocess.DEVNULL)
        subprocess.run(apt, stdout=subprocess.DEVNULL, check=True)
    if not shutil.which("wrk"):
        raise RuntimeError("wrk still not on PATH after apt-get install")


def ensure_node_deps():
    if not shutil.which(NODE):
        raise RuntimeError(f"{NODE} not found (need Node.js >= 20.19 for @tus/server 2.x)")
    if not os.path.exists(os.path.join(NODE_DIR, "node_modules", "@tus", "server", "package.json")):
        log("# installing @tus/server + @tus/file-store from tests/tus-node/package-lock.json (npm ci)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True,
                       stdout=subprocess.DEVNULL)
    vers = {}
    for pkg in ("server", "file-store"):
        with open(os.path.join(NODE_DIR, "node_modules", "@tus", pkg, "package.json")) as f:
            vers[pkg] = json.load(f)["version"]
    node_v = subprocess.run([NODE, "--version"], capture_output=True, text=True).stdout.strip()
    return vers, node_v


# ---------- servers ----------

def patch_small(port, path, data):
    status, h = tus_request(port, "PATCH", path, {"Upload-Offset": "0",
                                              "Content-Type": "application/offset+octet-stream"}, data)
    if status != 204:
        raise RuntimeError(f"PATCH {path} -> {status} {h}")


def patch_stream(port, path, buf):
    """One PATCH of all of buf, written with sendall() from memory (no file read,
    no copy in user space) so the client is not what limits the rate. Returns
    (status, wall seconds, client CPU seconds)."""
    head = (f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTus-Resumable: 1.0.0\r\n"
            f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {len(buf)}\r\nConnection: close\r\n\r\n").encode()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), timeout=600)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(head)
        s.sendall(memoryview(buf))
        r = http.client.HTTPResponse(s, method="PATCH")
        r.begin()
        r.read()
        status = r.status
    finally:
        s.close()
    return status, time.perf_counter() - t0, time.process_time() - cpu0


# ---------- the two measurements ----------

def write_lua(workdir, name, paths):
    lua = os.path.join(workdir, f"head-{name}.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA % ", ".join(json.dumps(p) for p in paths))
    return lua


def run_wrk(port, path, lua, duration):
    cmd = ["wrk", f"-t{THREADS}", f"-c{CONNS}", f"-d{duration}s", "--latency", "-s", lua,
           f"http://127.0.0.1:{port}{path}"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    m = re.search(r"^WRKJSON (\{.*\})$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"wrk rc={p.returncode}: {p.stdout[-500:]} {p.stderr[-500:]}")
    w = json.loads(m.group(1))
    w["rps"] = w["requests"] / (w["duration_us"] / 1e6)
    w["errors"] = sum(w[k] for k in ("connect", "read", "write", "status", "timeout"))
    return w


def measure_head(s, paths, lua, failures, tag):
    w = run_wrk(s.port, paths[0], lua, DURATION)
    # A 404 or a dead server must not pass as "fast": wrk counts non-2xx as
    # status errors, and the uploads must still answer HEAD correctly afterwards.
    ok = s.alive() and w["requests"] > 0 and w["errors"] == 0 and \
        all(tus_head_offset(s.port, p) == 1024 for p in paths)
    log(f"  {tag:8} HEAD   {s.name:8} {w['rps']:9.0f} req/s  p50 {w['p50_us'] / 1000:6.2f} ms  "
        f"p99 {w['p99_us'] / 1000:6.2f} ms  max {w['max_us'] / 1000:7.2f} ms  errors {w['errors']}")
    if not ok:
        failures.append(f"{tag} HEAD {s.name}: alive={s.alive()} wrk={w} {s.stderr_tail(300)}")
        return None
    return w


def measure_upload(s, buf, failures, tag):
    path = tus_create(s.port, len(buf))
    os.sync()  # flush anything earlier runs left dirty, outside the timed window
    c0 = cpu_seconds(s.pid)
    try:
        status, wall, ccpu = patch_stream(s.port, path, buf)
    except (OSError, http.client.HTTPException) as e:
        status, wall, ccpu = 0, 0.0, 0.0
        log(f"  {tag:8} upload {s.name:8} client error: {e}")
    alive = s.alive()
    scpu = cpu_seconds(s.pid) - c0 if alive else 0.0
    off = tus_head_offset(s.port, path) if alive else -1
    mibs = len(buf) / MIB / wall if wall else 0.0
    log(f"  {tag:8} upload {s.name:8} {mibs:9.0f} MiB/s  wall {wall:6.2f} s  status {status}  "
        f"offset {off}  srv CPU {scpu:5.2f} s  client CPU {ccpu:5.2f} s  VmHWM {status_kb(s.pid, 'VmHWM') / 1024:.0f} MiB")
    # Remove the upload (tus termination) and write back whatever is left, so the
    # next run neither competes with this one's writeback nor fills the disk.
    if alive:
        st, _ = tus_request(s.port, "DELETE", path)
        if st != 204:
            failures.append(f"{tag} upload {s.name}: DELETE -> {st}")
    os.sync()
    if status != 204 or off != len(buf) or not alive:
        failures.append(f"{tag} upload {s.name}: status={status} offset={off} (want {len(buf)}) alive={alive} "
                        f"{s.stderr_tail(300)}")
        return None
    return mibs


def guarded(failures, what, fn, *args):
    """A run that fails (server gone, refused, bad status) is recorded and the
    report still printed, rather than one exception hiding every number."""
    try:
        return fn(*args)
    except (OSError, RuntimeError, http.client.HTTPException, subprocess.SubprocessError) as e:
        failures.append(f"{what}: {e}")
        log(f"  {what}: FAILED: {e}")
        return None


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    if not os.environ.get("NO_MAKE"):
        if subprocess.run(["make", "-C", ROOT], stdout=subprocess.DEVNULL).returncode != 0:
            # Others edit src/ concurrently; benchmarking a stale binary silently
            # would be worse than stopping, so only an explicit NO_MAKE=1 does that.
            log(f"tus_compare: 'make -C {ROOT}' failed (NO_MAKE=1 uses the existing {RESUMED_BIN})")
            return 2
    if not os.access(RESUMED_BIN, os.X_OK):
        log(f"tus_compare: {RESUMED_BIN} missing")
        return 2
    ensure_wrk()
    vers, node_v = ensure_node_deps()
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()

    if PIN:
        os.sched_setaffinity(0, {0})  # this script and wrk (inherits) on CPU 0; servers on CPU 1
    parent = DEST or "/var/tmp"
    work = tempfile.mkdtemp(prefix="tus-compare-", dir=parent)
    temps.append(work)
    rdir, tdir = os.path.join(work, "resumed"), os.path.join(work, "tus-node")
    os.mkdir(rdir)
    os.mkdir(tdir)
    st = os.statvfs(work)
    if st.f_bavail * st.f_frsize < SIZE + 256 * MIB:
        log(f"tus_compare: {work} has less than {SIZE // MIB + 256} MiB free")
        return 2

    log(f"# tus_compare: {ROUNDS} paired rounds; HEAD: wrk {THREADS} threads, {CONNS} connections, {DURATION} s, "
        f"{HEAD_IDS} upload(s); upload warm-up {'on' if UPLOAD_WARMUP else 'off'}; "
        f"upload: one PATCH of {SIZE // MIB} MiB from memory")
    log(f"# @tus/server {vers['server']}, @tus/file-store {vers['file-store']}, node {node_v}, {wrk_v}")
    log(f"# stores: {work} ({fs_type(work)}); {os.cpu_count()} CPUs; pinning "
        f"{'servers CPU 1 / clients CPU 0' if PIN else 'off'}; load average {loadavg()}")

    t0 = time.time()
    buf = bytes(os.urandom(64 * MIB)) * (SIZE // (64 * MIB)) + os.urandom(SIZE % (64 * MIB))
    log(f"# {len(buf) // MIB} MiB of (64 MiB repeated) random data in memory in {time.time() - t0:.1f} s")

    servers = [
        Server("resumed", [RESUMED_BIN, "--quiet", "--dir", rdir, "--listen", "127.0.0.1:0"], work, PIN),
        # node needs a moment to load the ES modules
        Server("tus-node", [NODE, os.path.join(NODE_DIR, "server.mjs"), "0", tdir], work, PIN, wait=20),
    ]
    failures = []
    head_paths, luas = {}, {}
    for s in servers:
        head_paths[s.name] = [tus_create(s.port, 1 << 20) for _ in range(max(1, HEAD_IDS))]
        for p in head_paths[s.name]:
            patch_small(s.port, p, b"x" * 1024)
        luas[s.name] = write_lua(work, s.name, head_paths[s.name])
        # Warm-up (not measured): node's JIT and both servers' first-connection work.
        run_wrk(s.port, head_paths[s.name][0], luas[s.name], 2)

    rows = []
    for rnd in range(ROUNDS):
        order = servers if rnd % 2 == 0 else servers[::-1]
        tag = f"round {rnd + 1}"
        row = {"order": "/".join(s.name for s in order)}
        for s in order:
            row[("head", s.name)] = guarded(failures, f"{tag} HEAD {s.name}", measure_head,
                                            s, head_paths[s.name], luas[s.name], failures, tag)
        for s in order:
            if UPLOAD_WARMUP:
                guarded(failures, f"warm-up upload {s.name}", measure_upload, s, buf, failures, "warm-up")
            row[("up", s.name)] = guarded(failures, f"{tag} upload {s.name}", measure_upload,
                                          s, buf, failures, tag)
        rows.append(row)
        if not all(s.alive() for s in servers):
            break

    # ---------- report ----------
    def ratio(a, b):
        return a / b if a and b else None

    R, T = "resumed", "tus-node"
    log()
    log(f"## resumed vs @tus/server {vers['server']} (@tus/file-store {vers['file-store']}); "
        f"stores on {fs_type(work)}; ratios are resumed/tus-node")
    log()
    log("| round | first | HEAD req/s resumed | HEAD req/s tus-node | ratio | p99 ms resumed | p99 ms tus-node "
        "| MiB/s resumed | MiB/s tus-node | ratio |")
    log("|---|---|---|---|---|---|---|---|---|---|")
    hr, ur = [], []
    cols = {k: [] for k in ("hr", "ht", "pr", "pt", "ur", "ut")}

    def f(x, fmt):
        return format(x, fmt) if x is not None else "FAIL"

    for i, row in enumerate(rows):
        h_r, h_t = row[("head", R)], row[("head", T)]
        u_r, u_t = row[("up", R)], row[("up", T)]
        h_ratio = ratio(h_r and h_r["rps"], h_t and h_t["rps"])
        u_ratio = ratio(u_r, u_t)
        if h_ratio:
            hr.append(h_ratio)
        if u_ratio:
            ur.append(u_ratio)
        for key, val in (("hr", h_r and h_r["rps"]), ("ht", h_t and h_t["rps"]),
                         ("pr", h_r and h_r["p99_us"] / 1000), ("pt", h_t and h_t["p99_us"] / 1000),
                         ("ur", u_r), ("ut", u_t)):
            if val is not None:
                cols[key].append(val)
        log(f"| {i + 1} | {row['order'].split('/')[0]} | {f(h_r and h_r['rps'], '.0f')} | "
            f"{f(h_t and h_t['rps'], '.0f')} | {f(h_ratio, '.2f')} | {f(h_r and h_r['p99_us'] / 1000, '.2f')} | "
            f"{f(h_t and h_t['p99_us'] / 1000, '.2f')} | {f(u_r, '.0f')} | {f(u_t, '.0f')} | {f(u_ratio, '.2f')} |")
    log(f"| **median** | | {med(cols['hr']):.0f} | {med(cols['ht']):.0f} | **{med(hr):.2f}** | "
        f"{med(cols['pr']):.2f} | {med(cols['pt']):.2f} | {med(cols['ur']):.0f} | {med(cols['ut']):.0f} | "
        f"**{med(ur):.2f}** |")
    log()
    log("(the median ratio is the median of the per-round ratios, not the ratio of the medians)")
    log()

    missed = False
    for what, rs, target in (("HEAD req/s", hr, HEAD_TARGET), ("upload MiB/s", ur, UPLOAD_TARGET)):
        if len(rs) < len(rows) or not rs:
            log(f"  {what}: resumed/tus-node NOT MEASURED in every round ({len(rs)}/{len(rows)})")
            missed = True
            continue
        ok = med(rs) >= target
        missed |= not ok
        log(f"  {what}: resumed/tus-node = {med(rs):.2f} (median of {len(rs)} rounds, {min(rs):.2f}-{max(rs):.2f}; "
            f"target >= {target:g}): {'PASS' if ok else 'MISS'}")
    log(f"  load average now: {loadavg()} (shared machine: expect tens of percent of noise)")
    for s in servers:
        if not s.alive():
            failures.append(f"{s.name} died (exit {s.proc.returncode}): {s.stderr_tail()}")
        s.stop()
    if failures:
        log()
        log("## FAILURES")
        for x in failures:
            log("  - " + x)
        return 2
    return 1 if missed else 0


if __name__ == "__main__":
    rc = 2
    try:
        rc = main()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        log(f"tus_compare: {e}")
    finally:
        cleanup()
    sys.exit(rc)
