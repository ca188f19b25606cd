"""Process bookkeeping shared by the benchmarks: everything started is tracked
and killed by PID on exit or signal, temp paths removed; /proc readers."""
import os
import shutil

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
