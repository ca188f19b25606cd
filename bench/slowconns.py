#!/usr/bin/env python3
"""slowconns.py - memory per concurrent slow upload in resumed, and that all are served.

Starts build/resumed (--quiet, --dir in a temp dir, --max-connections N+64, no per-client caps,
RLIMIT_NOFILE raised for it and for this client), then opens N concurrent
uploads with asyncio:

  POST /upload  X-File-Id: slow-<i>  X-Start-Byte: 0  Content-Length: CL

each sending PIECE bytes every INTERVAL seconds (first piece at a random
offset so the writes are spread out). Never more than CL-1 bytes are sent, so
no upload completes. RSS:

  baseline = VmRSS after startup, before any connection;
  loaded   = the largest VmRSS sampled once a second during DURATION seconds
             while all N connections are open and sending;
  per-connection = (loaded - baseline) / N, in KiB.   Target: <= 4 KiB.

Then every connection is closed (FIN, mid-body: "dropped connection") and the
script waits until the server's open-fd count is back to its baseline. Then
GET /status for every id (all of them, over a few keep-alive connections) must
equal the bytes that connection sent (bytes of a dropped upload are kept).
"All N served" = every connection was accepted and stayed open without an
early response or reset, and every /status matched.

Environment / defaults:
  N=2000  CL=100000  PIECE=1024  INTERVAL=0.5  DURATION=20
  RESUMED_BIN (default build/resumed)  SLOW_DIR (parent of the data dir,
  default the system temp dir)  RESUMED_ARGS (extra flags)
Exit status: 0 when all N were served and the RSS target held, 1 otherwise.
"""

import asyncio
import os
import random
import re
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time

from proclib import cleanup, cpu_seconds, on_signal, procs, status_kb, temps

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

N = int(os.environ.get("N", "2000"))
CL = int(os.environ.get("CL", "100000"))
PIECE = int(os.environ.get("PIECE", "1024"))
INTERVAL = float(os.environ.get("INTERVAL", "0.5"))
DURATION = float(os.environ.get("DURATION", "20"))
RESUMED_BIN = os.environ.get("RESUMED_BIN", os.path.join(ROOT, "build", "resumed"))
SLOW_DIR = os.environ.get("SLOW_DIR", tempfile.gettempdir())
RESUMED_ARGS = shlex.split(os.environ.get("RESUMED_ARGS", ""))
TARGET_KIB = 4.0
STATUS_CONNS = 8











def fd_counts(pid):
    """(all fds, socket fds) of the process."""
    total = socks = 0
    d = f"/proc/{pid}/fd"
    try:
        for fd in os.listdir(d):
            total += 1
            try:
                if os.readlink(os.path.join(d, fd)).startswith("socket:"):
                    socks += 1
            except OSError:
                pass
    except OSError:
        pass
    return total, socks


def sockstat():
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    return line.strip()
    except OSError:
        pass
    return "?"


def smaps_breakdown(pid):
    """Rss in KiB by kind: heap, anon (other anonymous, incl. thread stacks and
    mmap'ed malloc arenas), file (binary, libraries)."""
    out = {"heap": 0, "anon": 0, "file": 0}
    kind = "anon"
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                first = line.split(None, 1)[0]
                if "-" in first and not first.endswith(":"):
                    parts = line.split()
                    name = parts[5] if len(parts) > 5 else ""
                    kind = "heap" if name == "[heap]" else "file" if name.startswith("/") else "anon"
                elif first == "Rss:":
                    out[kind] += int(line.split()[1])
    except OSError:
        pass
    return out


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
        return want
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard


class Conn:
    __slots__ = ("i", "fid", "sent", "reader", "writer", "error", "early", "task", "rtask")

    def __init__(self, i):
        self.i = i
        self.fid = f"slow-{i:05d}"
        self.sent = 0
        self.reader = self.writer = None
        self.error = None  # connect/send failure
        self.early = None  # the server wrote something / closed before we did
        self.task = self.rtask = None


async def sender(c, port, sem, connected, all_connected):
    async with sem:
        try:
            c.reader, c.writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as e:
            c.error = f"connect: {e}"
            connected[0] += 1
            if connected[0] == N:
                all_connected.set()
            return
    connected[0] += 1
    if connected[0] == N:
        all_connected.set()
    c.rtask = asyncio.ensure_future(watch(c))
    head = (f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-File-Id: {c.fid}\r\n"
            f"X-Start-Byte: 0\r\nContent-Length: {CL}\r\n\r\n").encode()
    piece = os.urandom(PIECE)
    try:
        c.writer.write(head)
        await asyncio.sleep(random.random() * INTERVAL)
        while c.early is None:
            n = min(PIECE, CL - 1 - c.sent)
            if n > 0:
                c.writer.write(piece[:n])
                c.sent += n
                await c.writer.drain()
            await asyncio.sleep(INTERVAL)
    except asyncio.CancelledError:
        raise
    except OSError as e:
        c.error = f"send after {c.sent} bytes: {e!r}"


async def watch(c):
    """Anything the server sends (or an EOF) before we close is an early end."""
    try:
        data = await c.reader.read(4096)
    except asyncio.CancelledError:
        raise
    except OSError as e:
        c.early = f"read error {e!r}"
        return
    c.early = ("EOF" if not data else data.split(b"\r\n", 1)[0].decode(errors="replace")) + \
        f" (after {c.sent} bytes sent)"


async def status_worker(port, conns, results):
    reader = writer = None
    for c in conns:
        for attempt in range(3):
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(f"GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-File-Id: {c.fid}\r\n\r\n"
                             .encode())
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
                body = await asyncio.wait_for(reader.readexactly(int(m.group(1))), 10) if m else b""
                code = int(head.split(b" ", 2)[1])
                results[c.i] = (code, body.decode(errors="replace").strip())
                if re.search(rb"\r\nconnection:\s*close", head, re.I):
                    writer.close()
                    writer = None
                break
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError) as e:
                results[c.i] = (0, f"error {e!r}")
                if writer is not None:
                    writer.close()
                writer = None
    if writer is not None:
        writer.close()


async def run(port, pid):
    conns = [Conn(i) for i in range(N)]
    sem = asyncio.Semaphore(200)  # connects in flight
    connected = [0]
    all_connected = asyncio.Event()
    t0 = time.time()
    for c in conns:
        c.task = asyncio.ensure_future(sender(c, port, sem, connected, all_connected))
    try:
        await asyncio.wait_for(all_connected.wait(), 120)
    except asyncio.TimeoutError:
        pass
    ramp = time.time() - t0
    await asyncio.sleep(INTERVAL + 0.2)  # every connection has written its head and a piece
    print(f"# {connected[0]}/{N} connections attempted in {ramp:.1f} s; sampling for {DURATION:.0f} s", flush=True)

    samples = []
    t_end = time.time() + DURATION
    cpu0 = cpu_seconds(pid)
    load_fds = (0, 0)
    smaps = None
    while time.time() < t_end:
        if smaps is None and time.time() > t_end - DURATION / 2:
            smaps = smaps_breakdown(pid)
        rss = status_kb(pid, "VmRSS")
        fds = fd_counts(pid)
        open_now = sum(1 for c in conns if c.writer is not None and c.early is None and c.error is None)
        samples.append((rss, open_now))
        load_fds = max(load_fds, fds)
        await asyncio.sleep(1.0)
    cpu_load = cpu_seconds(pid) - cpu0
    sock = sockstat()
    hwm = status_kb(pid, "VmHWM")
    threads = status_kb(pid, "Threads")

    # Close everything (FIN mid-body). Buffered bytes are flushed before the close.
    for c in conns:
        c.task.cancel()
    await asyncio.gather(*(c.task for c in conns), return_exceptions=True)
    for c in conns:
        if c.rtask:
            c.rtask.cancel()
    await asyncio.gather(*(c.rtask for c in conns if c.rtask), return_exceptions=True)
    for c in conns:
        if c.writer is not None:
            c.writer.close()
    await asyncio.gather(*(c.writer.wait_closed() for c in conns if c.writer is not None), return_exceptions=True)
    return conns, samples, dict(ramp=ramp, cpu_load=cpu_load, sock=sock, hwm=hwm, threads=threads,
                                load_fds=load_fds, smaps=smaps or {})


async def check_status(port, conns):
    results = {}
    slices = [conns[k::STATUS_CONNS] for k in range(STATUS_CONNS)]
    await asyncio.gather(*(status_worker(port, s, results) for s in slices))
    return results


def main():
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    if not os.access(RESUMED_BIN, os.X_OK):
        print(f"slowconns: {RESUMED_BIN} missing (run bench/run.sh, which builds it)", file=sys.stderr)
        return 1
    if CL - 1 < PIECE:
        print("slowconns: CL must be larger than PIECE", file=sys.stderr)
        return 1
    client_lim = raise_nofile(N + STATUS_CONNS + 256)
    server_lim = max(4 * N + 1024, resource.getrlimit(resource.RLIMIT_NOFILE)[0])

    work = tempfile.mkdtemp(prefix="resumed-slow-", dir=SLOW_DIR)
    temps.append(work)
    ddir = os.path.join(work, "data")
    os.mkdir(ddir)
    errpath = os.path.join(work, "resumed.stderr")
    err = open(errpath, "wb")

    def pre():
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (server_lim, server_lim))
        except (ValueError, OSError):
            h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))

    cmd = [RESUMED_BIN, "--quiet", "--dir", ddir, "--listen", "127.0.0.1:0",
           "--max-connections", str(N + 64),
           # every simulated client is 127.0.0.1: lift the per-client limits
           "--max-connections-per-ip", "0", "--max-unfinished", "0"] + RESUMED_ARGS
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=pre)
    err.close()
    procs.append(p)

    def tail():
        with open(errpath, "rb") as f:
            return f.read()[-2000:].decode(errors="replace").strip()

    port = None
    deadline = time.time() + 10
    while time.time() < deadline and p.poll() is None:
        with open(errpath, "rb") as f:
            m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", f.read())
        if m:
            port = int(m.group(1))
            break
        time.sleep(0.02)
    if port is None:
        print(f"slowconns: resumed did not start (exit={p.poll()}): {tail()}", file=sys.stderr)
        return 1
    with open(f"/proc/{p.pid}/limits") as f:
        lim = next((l.split()[3] for l in f if l.startswith("Max open files")), "?")
    time.sleep(0.5)
    base = status_kb(p.pid, "VmRSS")
    base_smaps = smaps_breakdown(p.pid)
    base_fds = fd_counts(p.pid)
    print(f"# slowconns: N={N} uploads, Content-Length {CL}, {PIECE} B every {INTERVAL} s; "
          f"resumed pid {p.pid} port {port}, nofile {lim} (client {client_lim}), dir {ddir}", flush=True)
    print(f"# baseline VmRSS {base} KiB, fds {base_fds[0]}", flush=True)

    conns, samples, info = asyncio.run(run(port, p.pid))
    alive_after_load = p.poll() is None

    # Wait until the server has closed its side of every connection (fd count back down).
    t0 = time.time()
    fds = fd_counts(p.pid)
    while alive_after_load and time.time() - t0 < 90:
        fds = fd_counts(p.pid)
        if fds[0] <= base_fds[0] + 2:
            break
        time.sleep(0.2)
    settle = time.time() - t0
    print(f"# closed all; server fds back to {fds[0]} (baseline {base_fds[0]}) after {settle:.1f} s", flush=True)

    results = asyncio.run(check_status(port, conns)) if p.poll() is None else {}
    alive = p.poll() is None

    # ---- evaluate
    loaded_samples = [s for s in samples if s[1] == N]
    use = loaded_samples if loaded_samples else samples
    loaded = max((s[0] for s in use), default=0)
    last = use[-1][0] if use else 0
    per_conn = (loaded - base) / N if N else 0.0
    per_conn_last = (last - base) / N if N else 0.0
    errors = [c for c in conns if c.error]
    early = [c for c in conns if c.early]
    matched = mism = 0
    bad_status = []
    for c in conns:
        code, body = results.get(c.i, (0, "no answer"))
        if code == 200 and body == str(c.sent):
            matched += 1
        else:
            mism += 1
            if len(bad_status) < 10:
                bad_status.append(f"{c.fid}: sent {c.sent}, /status -> {code} {body[:60]!r}")
    total_sent = sum(c.sent for c in conns)
    served = (not errors) and (not early) and matched == N and alive

    print()
    print(f"## {N} concurrent slow uploads ({PIECE} B / {INTERVAL} s each, Content-Length {CL})")
    print()
    print("| metric | value |")
    print("|---|---|")
    print(f"| connect ramp | {info['ramp']:.1f} s |")
    print(f"| samples with all {N} open and sending | {len(loaded_samples)}/{len(samples)} |")
    print(f"| server socket fds / all fds at load | {info['load_fds'][1]} / {info['load_fds'][0]} |")
    print(f"| VmRSS baseline | {base} KiB |")
    print(f"| VmRSS loaded (max / last sample) | {loaded} / {last} KiB |")
    print(f"| VmHWM at load | {info['hwm']} KiB |")
    print(f"| **RSS per connection** (max / last) | **{per_conn:.2f}** / {per_conn_last:.2f} KiB |")
    sm = info["smaps"]
    print(f"| Rss by kind, baseline -> load (heap / other anon / file) | "
          f"{base_smaps['heap']} / {base_smaps['anon']} / {base_smaps['file']} -> "
          f"{sm.get('heap', 0)} / {sm.get('anon', 0)} / {sm.get('file', 0)} KiB |")
    print(f"| server threads | {info['threads']} |")
    print(f"| server CPU during {DURATION:.0f} s of load | {info['cpu_load']:.2f} s |")
    print(f"| kernel sockets at load | {info['sock']} |")
    print(f"| bytes sent in total | {total_sent} |")
    print(f"| connect/send errors | {len(errors)} |")
    print(f"| early responses / EOF from server | {len(early)} |")
    print(f"| /status == bytes sent | {matched}/{N} |")
    print()
    print(f"  RSS per connection {per_conn:.2f} KiB (target <= {TARGET_KIB:.0f} KiB): "
          f"{'PASS' if per_conn <= TARGET_KIB else 'MISS'}")
    print(f"  all {N} served: {'PASS' if served else 'MISS'}")
    if errors:
        print("  connect/send errors (first 5): " + "; ".join(f"{c.fid}: {c.error}" for c in errors[:5]))
    if early:
        print("  early server responses (first 5): " + "; ".join(f"{c.fid}: {c.early}" for c in early[:5]))
    if bad_status:
        print(f"  /status mismatches ({mism}; first {len(bad_status)}):")
        for b in bad_status:
            print("    " + b)
    if not alive:
        print(f"  SERVER DIED (exit {p.returncode}); stderr: {tail()}")
    print("  (RSS excludes kernel socket buffers; one shared 2-core VM, numbers are noisy)")
    return 0 if served and per_conn <= TARGET_KIB else 1


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        cleanup()
    sys.exit(rc)
