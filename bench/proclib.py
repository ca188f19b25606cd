"""Process bookkeeping shared by the benchmarks: everything started is tracked
and killed by PID on exit or signal, temp paths removed; /proc readers; the
servers under test and the small tus requests made to them (never timed)."""
import http.client
import os
import re
import shutil
import subprocess
import time
import urllib.parse

TICK = os.sysconf("SC_CLK_TCK")
procs = []  # Popen objects we started
temps = []  # paths to remove at exit


def cleanup():
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()  # by PID
                p.wait(timeout=10)
            except Exception:
                pass
    for t in temps:
        if os.path.isdir(t):
            shutil.rmtree(t, ignore_errors=True)
        elif os.path.exists(t):
            try:
                os.unlink(t)
            except OSError:
                pass


def on_signal(signum, frame):
    cleanup()
    os._exit(128 + signum)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rfind(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def status_kb(pid, key):
    """A field of /proc/PID/status in KiB (or a plain count); 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# The filesystem type holding path (the longest mount point above it), for reports.
def fs_type(path):
    best, typ = "", "?"
    real = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            mnt, t = line.split()[1:3]
            mnt = mnt.replace("\\040", " ")
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, typ = mnt, t
    return typ


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Server:
    """A server under test: stderr kept in WORKDIR/NAME.stderr, the port read from
    its "listening on http://127.0.0.1:PORT" line, killed by PID at exit (procs).
    pin: on CPU 1 (taskset). wait: seconds allowed to print that line."""

    def __init__(self, name, argv, workdir, pin=False, wait=10):
        self.name = name
        self.errpath = os.path.join(workdir, name + ".stderr")
        with open(self.errpath, "wb") as err:
            cmd = (["taskset", "-c", "1"] if pin else []) + argv
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        procs.append(self.proc)
        self.pid = self.proc.pid
        self.port = None
        deadline = time.time() + wait
        while time.time() < deadline and self.proc.poll() is None:
            with open(self.errpath, "rb") as f:
                m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.02)
        if self.port is None:
            raise RuntimeError(f"{name} printed no listening line within {wait} s (exit={self.proc.poll()}): "
                               f"{self.stderr_tail()}")

    def stderr_tail(self, n=2000):
        try:
            with open(self.errpath, "rb") as f:
                return f.read()[-n:].decode(errors="replace").strip()
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.terminate()  # by PID
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


TUS = {"Tus-Resumable": "1.0.0"}


def tus_request(port, method, path, headers=None, body=None, timeout=60):
    """One tus request on a fresh connection: (status, {lowercase name: value})."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers={**TUS, **(headers or {})})
        r = c.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def tus_create(port, length):
    """POST /files/ with Upload-Length; the new upload's path."""
    status, h = tus_request(port, "POST", "/files/", {"Upload-Length": str(length)})
    if status != 201 or "location" not in h:
        raise RuntimeError(f"POST /files/ -> {status} {h}")
    # resumed answers with a path, @tus/server with an absolute URL.
    return urllib.parse.urlsplit(h["location"]).path


def tus_head_offset(port, path):
    status, h = tus_request(port, "HEAD", path)
    if status != 200 or "upload-offset" not in h:
        raise RuntimeError(f"HEAD {path} -> {status} {h}")
    return int(h["upload-offset"])
