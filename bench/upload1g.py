#!/usr/bin/env python3
"""upload1g.py - streaming-upload throughput of resumed against a minimal C sink.

Creates 1 GiB of random data once (in /dev/shm when it has room), starts
bench/bin/sink and build/resumed and uploads the file to each of them in
interleaved rounds (1 warm-up round, then ROUNDS measured rounds; the order of
the two servers alternates every round):

  resumed:    POST /upload  X-File-Id, X-Start-Byte: 0, X-File-Size, Content-Length
  sink:       POST /upload  Content-Length (page cache only, never synced)
  sink-fsync: the same sink with --fsync: fdatasync before replying (disk only),
              the least any server that acknowledges durably must do

Each destination is measured separately (DESTS, default "shm disk"):
  shm   both servers write into a directory in /dev/shm (tmpfs: resumed's
        periodic fdatasync is a no-op, so this compares the HTTP + write path);
  disk  both write into a directory on the disk (BENCH_DISK_DIR, default the
        system temp dir). The sink never syncs; resumed fdatasyncs every
        --sync-interval (64 MiB by default) and before it answers, as its
        durability contract demands; sink-fsync is the like-for-like baseline.

Per run: MiB/s (wall time from connect to the end of the response, measured by
the client), server CPU seconds (utime+stime delta from /proc/PID/stat, all
threads), server peak RSS (VmHWM from /proc/PID/status, over the process life).
Uploaded files are deleted between runs and sync(2) is called outside the timing.

Environment:
  ROUNDS=3  WARMUP=1  SIZE_MIB=1024  DESTS="shm disk"  CLIENT=blast|curl
  PIN=1 (server on CPU 1, client on CPU 0 with taskset; PIN=0 to disable)
  RESUMED_BIN (default build/resumed)  SINK_BIN, BLAST_BIN (default bench/bin/*)
  RESUMED_ARGS (extra flags for resumed, e.g. "--sync-interval 1G")
  BENCH_DISK_DIR (parent directory for the "disk" destination)
Exit status: 0 when every run succeeded (targets missed are reported, not
fatal), 1 when a run failed or a server died.
"""

import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from proclib import Server, cleanup, cpu_seconds, fs_type, loadavg, on_signal, procs, status_kb, temps

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

ROUNDS = int(os.environ.get("ROUNDS", "3"))
WARMUP = int(os.environ.get("WARMUP", "1"))
SIZE = int(os.environ.get("SIZE_MIB", "1024")) * 1024 * 1024
DESTS = os.environ.get("DESTS", "shm disk").split()
CLIENT = os.environ.get("CLIENT", "blast")
PIN = os.environ.get("PIN", "1") != "0" and os.cpu_count() and os.cpu_count() >= 2 and shutil.which("taskset")
RESUMED_BIN = os.environ.get("RESUMED_BIN", os.path.join(ROOT, "build", "resumed"))
SINK_BIN = os.environ.get("SINK_BIN", os.path.join(HERE, "bin", "sink"))
BLAST_BIN = os.environ.get("BLAST_BIN", os.path.join(HERE, "bin", "blast"))
RESUMED_ARGS = shlex.split(os.environ.get("RESUMED_ARGS", ""))
DISK_DIR = os.environ.get("BENCH_DISK_DIR", tempfile.gettempdir())

MIB = 1024 * 1024


def make_data():
    st = os.statvfs("/dev/shm") if os.path.isdir("/dev/shm") else None
    need_shm = SIZE * (3 if "shm" in DESTS else 1) + 256 * MIB
    if st and st.f_bavail * st.f_frsize >= need_shm:
        d = tempfile.mkdtemp(prefix="resumed-bench-", dir="/dev/shm")
    else:
        d = tempfile.mkdtemp(prefix="resumed-bench-data-")
    temps.append(d)
    path = os.path.join(d, "data.bin")
    t0 = time.time()
    with open(path, "wb") as f:
        left = SIZE
        while left:
            n = min(left, 4 * MIB)
            f.write(os.urandom(n))
            left -= n
    print(f"# data: {SIZE // MIB} MiB random in {path} ({fs_type(path)}), made in {time.time() - t0:.1f} s",
          flush=True)
    return path


def run_client(port, datafile, headers):
    """Returns (status, body, wall_s, client_cpu_s, sent) or raises."""
    pin = ["taskset", "-c", "0"] if PIN else []
    url_addr = f"127.0.0.1:{port}"
    if CLIENT == "blast":
        cmd = pin + [BLAST_BIN, url_addr, datafile, "/upload"] + [f"{k}: {v}" for k, v in headers]
    else:
        cmd = pin + ["curl", "-sS", "-o", "-", "-X", "POST", "-T", datafile, "-H", "Expect:",
                     "-w", "\\n%{http_code} %{size_upload} %{time_total}"]
        for k, v in headers:
            cmd += ["-H", f"{k}: {v}"]
        cmd.append(f"http://{url_addr}/upload")
    out = tempfile.TemporaryFile()
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
    procs.append(p)
    err = p.stderr.read()
    _, wstatus, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(wstatus)
    procs.remove(p)
    cpu = ru.ru_utime + ru.ru_stime
    out.seek(0)
    text = out.read().decode(errors="replace")
    out.close()
    if CLIENT == "blast":
        parts = text.strip().split(" ", 4)
        if len(parts) < 4:
            raise RuntimeError(f"blast failed (rc={p.returncode}): {text!r} {err.decode(errors='replace')}")
        status, sent, wall = int(parts[0]), int(parts[1]), float(parts[2])
        body = parts[4] if len(parts) > 4 else ""
    else:
        body, _, tail = text.rpartition("\n")
        f = tail.split()
        if len(f) != 3:
            raise RuntimeError(f"curl failed (rc={p.returncode}): {text[-300:]!r} {err.decode(errors='replace')}")
        status, sent, wall = int(f[0]), int(float(f[1])), float(f[2])
    if p.returncode != 0 and status == 0:
        raise RuntimeError(f"{CLIENT} rc={p.returncode}: {err.decode(errors='replace').strip()}")
    return status, body.strip(), wall, cpu, sent


def clear_dir(d):
    for root, dirs, files in os.walk(d):
        for fn in files:
            os.unlink(os.path.join(root, fn))


def check_resumed_dir(d, datafile):
    """After a completed upload: one plain data file of the right size and
    content, next to metadata that says it is finished (else a failure), and no
    article link (else a warning). Returns (failures, warnings)."""
    bad, warn = [], []
    up = os.path.join(d, "uploads")
    files = sorted(os.listdir(up)) if os.path.isdir(up) else []
    data = [f for f in files if not f.endswith(".meta")]
    metas = [f for f in files if f.endswith(".meta")]
    if len(data) != 1:
        bad.append(f"uploads/ holds {len(data)} data files ({files[:5]})")
    for m in metas:
        with open(os.path.join(up, m)) as f:
            if "\nfinished 1\n" not in f.read():
                bad.append(f"{m} does not record the upload as finished")
    art = os.path.join(d, "article")
    if os.path.isdir(art) and os.listdir(art):
        warn.append(f"article/ not empty after completion: {os.listdir(art)[:3]}")
    if len(data) == 1:
        p = os.path.join(up, data[0])
        sz = os.path.getsize(p)
        if sz != SIZE:
            bad.append(f"stored file has {sz} bytes, expected {SIZE}")
        else:
            with open(p, "rb") as a, open(datafile, "rb") as b:
                for off in (0, SIZE // 2, max(0, SIZE - MIB)):
                    a.seek(off)
                    b.seek(off)
                    if a.read(MIB) != b.read(MIB):
                        bad.append(f"stored content differs near offset {off}")
                        break
    return bad, warn


def fmt_range(xs):
    return f"{min(xs):.0f}-{max(xs):.0f}"


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    for b in (RESUMED_BIN, SINK_BIN) + ((BLAST_BIN,) if CLIENT == "blast" else ()):
        if not os.access(b, os.X_OK):
            print(f"upload1g: {b} missing (run bench/run.sh, which builds it)", file=sys.stderr)
            return 1
    if CLIENT not in ("blast", "curl"):
        print("upload1g: CLIENT must be blast or curl", file=sys.stderr)
        return 1

    print(f"# upload1g: {SIZE // MIB} MiB per upload, {WARMUP} warm-up + {ROUNDS} measured rounds, "
          f"client={CLIENT}, pinning={'server CPU1 / client CPU0' if PIN else 'off'}, "
          f"{os.cpu_count()} CPUs", flush=True)
    datafile = make_data()
    load0 = loadavg()
    print(f"# load average now: {load0} (other work on the machine skews wall times)", flush=True)

    failures, warnings = [], []
    servers = {}  # (dest, name) -> Server
    stores = {}  # (dest, name) -> its store directory, emptied after every run
    for dest in DESTS:
        parent = "/dev/shm" if dest == "shm" else DISK_DIR
        w = tempfile.mkdtemp(prefix=f"resumed-bench-{dest}-", dir=parent)
        temps.append(w)
        sdir = os.path.join(w, "sink")
        rdir = os.path.join(w, "resumed")
        os.mkdir(sdir)
        os.mkdir(rdir)
        print(f"# dest {dest}: {w} ({fs_type(w)})", flush=True)
        servers[(dest, "sink")] = Server("sink", [SINK_BIN, "--quiet", "--dir", sdir, "--listen", "127.0.0.1:0"],
                                         w, PIN)
        stores[(dest, "sink")] = sdir
        if dest != "shm":  # on tmpfs fdatasync is a no-op: same as the plain sink
            fdir = os.path.join(w, "sink-fsync")
            os.mkdir(fdir)
            servers[(dest, "sink-fsync")] = Server("sink-fsync", [SINK_BIN, "--quiet", "--fsync", "--dir", fdir,
                                                                  "--listen", "127.0.0.1:0"], w, PIN)
            stores[(dest, "sink-fsync")] = fdir
        servers[(dest, "resumed")] = Server("resumed", [RESUMED_BIN, "--quiet", "--dir", rdir, "--listen",
                                                        "127.0.0.1:0"] + RESUMED_ARGS, w, PIN)
        stores[(dest, "resumed")] = rdir
    time.sleep(0.2)
    start_rss = {k: status_kb(s.pid, "VmRSS") for k, s in servers.items()}

    results = {k: [] for k in servers}  # list of dicts
    checked = set()
    for rnd in range(WARMUP + ROUNDS):
        warm = rnd < WARMUP
        names = ["sink", "sink-fsync", "resumed"]
        order = names[rnd % 3:] + names[:rnd % 3]  # rotate who goes first
        for dest in DESTS:
            for name in order:
                if (dest, name) not in servers:
                    continue
                s = servers[(dest, name)]
                if not s.alive():
                    continue
                fid = f"bench/{dest}/round-{rnd}"
                headers = [("X-File-Id", fid), ("X-Start-Byte", "0"), ("X-File-Size", str(SIZE))] \
                    if name == "resumed" else []
                os.sync()
                c0 = cpu_seconds(s.pid)
                try:
                    status, body, wall, ccpu, sent = run_client(s.port, datafile, headers)
                except Exception as e:  # client-level failure
                    status, body, wall, ccpu, sent = 0, str(e), 0.0, 0.0, 0
                alive = s.alive()
                c1 = cpu_seconds(s.pid) if alive else c0
                hwm = status_kb(s.pid, "VmHWM") if alive else 0
                ok = status == 200 and body == f"Success {SIZE}" and sent == SIZE and alive
                tag = "warm-up" if warm else f"round {rnd - WARMUP + 1}"
                mibs = SIZE / MIB / wall if wall > 0 else 0.0
                print(f"  {tag:8} {dest:4} {name:8} {status} {mibs:7.0f} MiB/s  wall {wall:6.3f} s  "
                      f"srv CPU {c1 - c0:5.2f} s  client CPU {ccpu:5.2f} s  VmHWM {hwm / 1024:6.1f} MiB  "
                      f"{body[:60]!r}", flush=True)
                if not ok:
                    why = f"{dest}/{name} {tag}: status={status} sent={sent} body={body[:200]!r}"
                    if not alive:
                        why += f" SERVER DIED (exit {s.proc.returncode}); stderr: {s.stderr_tail()}"
                    failures.append(why)
                if name == "resumed" and ok and dest not in checked:
                    checked.add(dest)
                    bad, warn = check_resumed_dir(stores[(dest, name)], datafile)
                    failures += [f"{dest}/resumed {tag}: {c}" for c in bad]
                    warnings += [f"{dest}/resumed {tag}: {c}" for c in warn]
                clear_dir(stores[(dest, name)])
                if not warm and ok:
                    results[(dest, name)].append(dict(mibs=mibs, cpu=c1 - c0, ccpu=ccpu, hwm=hwm,
                                                      round=rnd))

    peak = {k: (status_kb(s.pid, "VmHWM") if s.alive() else 0) for k, s in servers.items()}
    for k, s in servers.items():
        if not s.alive():
            failures.append(f"{k[0]}/{k[1]} died (exit {s.proc.returncode}): {s.stderr_tail()}")

    print()
    print(f"## Upload of {SIZE // MIB} MiB, median of {ROUNDS} interleaved rounds (client={CLIENT}; "
          f"MiB/s = 1048576 B/s)")
    print()
    print("| dest | server | MiB/s median (min-max) | resumed/sink | srv CPU s | client CPU s | "
          "RSS start MiB | peak RSS (VmHWM) MiB |")
    print("|---|---|---|---|---|---|---|---|")
    verdicts = []

    def paired(dest, base):
        """Median of per-round resumed/base ratios: both ran back to back in each
        round, so the machine's drift between rounds cancels out."""
        by_round = {x["round"]: x["mibs"] for x in results.get((dest, base), [])}
        pairs = [x["mibs"] / by_round[x["round"]] for x in results.get((dest, "resumed"), [])
                 if x["round"] in by_round]
        return (statistics.median(pairs), min(pairs), max(pairs), len(pairs)) if pairs else None

    for dest in DESTS:
        med = {}
        for name in ("sink", "sink-fsync", "resumed"):
            if (dest, name) not in servers:
                continue
            r = results[(dest, name)]
            if not r:
                print(f"| {dest} | {name} | (no successful run) | | | | | |")
                continue
            med[name] = statistics.median(x["mibs"] for x in r)
            ratio = f"{med[name] / med['sink']:.2f}" if "sink" in med else "n/a"
            print(f"| {dest} | {name} | {med[name]:.0f} ({fmt_range([x['mibs'] for x in r])}) | {ratio} | "
                  f"{statistics.median(x['cpu'] for x in r):.2f} | {statistics.median(x['ccpu'] for x in r):.2f} | "
                  f"{start_rss[(dest, name)] / 1024:.1f} | {peak[(dest, name)] / 1024:.1f} |")
        # The target compares like with like: on disk, a sink that also makes the
        # bytes durable before it answers; on tmpfs syncing costs nothing anyway.
        target_base = "sink-fsync" if (dest, "sink-fsync") in servers else "sink"
        for base in ("sink", "sink-fsync"):
            p = paired(dest, base)
            if (dest, base) not in servers:
                continue
            if not p:
                verdicts.append(f"{dest}: throughput resumed/{base}: NOT MEASURED")
                continue
            is_target = base == target_base
            verdict = ("PASS" if p[0] >= 0.85 else "MISS") if is_target else "(page cache only, not like for like)"
            verdicts.append(f"{dest}: throughput resumed/{base} = {p[0]:.2f} (median of {p[3]} per-round ratios "
                            f"{p[1]:.2f}-{p[2]:.2f}{'; target >= 0.85' if is_target else ''}): {verdict}")
        rp = peak[(dest, "resumed")]
        if rp:
            verdicts.append(f"{dest}: resumed peak RSS = {rp / 1024:.1f} MiB (target < 16 MiB): "
                            f"{'PASS' if rp < 16 * 1024 else 'MISS'}")
    print()
    for v in verdicts:
        print("  " + v)
    print(f"  load average before / after: {load0} / {loadavg()}")
    if warnings:
        print()
        print("## WARNINGS (on-disk layout after a completed upload)")
        for w in warnings:
            print("  - " + w)
    if failures:
        print()
        print("## FAILURES")
        for f in failures:
            print("  - " + f)
    print()
    print("  (one shared 2-core VM: expect run-to-run noise of tens of percent, see min-max)")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        cleanup()
    sys.exit(rc)
