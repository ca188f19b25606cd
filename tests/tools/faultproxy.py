#!/usr/bin/env python3
"""faultproxy: a TCP proxy that breaks connections on purpose (Python stdlib only).

As a module::

    from faultproxy import FaultProxy
    with FaultProxy(upstream_port) as p:            # listens on 127.0.0.1:<p.port>
        p.cut(1 << 20, 4 << 20, mode='alternate')   # cut every connection after 1-4 MiB sent upstream
        p.throttle(2 << 20)                         # client->server at most 2 MiB/s per connection
        p.stall(); p.unstall()                      # stop / restart forwarding (connections stay open)
        p.drip(0.001)                               # forward 1 byte at a time, 1 ms apart
        p.reorder(0, 0.5)                           # connect each new connection upstream 0-0.5 s late
        p.set_upstream(new_port)                    # new connections go to a restarted server
        p.cuts, p.cut_log, p.connections, p.bytes_up, p.bytes_down, p.reordered
    # close() (or leaving the with block) stops the listener and every connection and thread.

Faults (all can be changed at any time, from any thread; they apply to open connections too):

- cut(lo, hi=None, mode='random', limit=None): on each connection, after a number of
  client->server bytes drawn uniformly from [lo, hi] (hi defaults to lo) has been forwarded,
  the connection is cut on both sides.  mode: 'rst' (SO_LINGER 0, then close: a TCP reset),
  'fin' (shutdown, then close: an orderly end of stream), 'random' (either, per cut) or
  'alternate' (rst, fin, rst, ...).  limit: stop cutting after that many cuts in total (None:
  never stop).  The count starts at the connection's current byte count when cut() is called.
  no_cuts() turns cutting off.  cut_now(mode) cuts every open connection at once.
- throttle(bytes_per_second): limit client->server throughput of every connection (None: off).
- stall() / unstall(): stop forwarding in both directions, sockets kept open (new connections
  are accepted and connected upstream, but stall as well).
- drip(interval): forward one byte per `interval` seconds in both directions (None: off).
- reorder(lo, hi=None): reordering of connection attempts.  Each connection accepted from then on
  is connected upstream only after a delay drawn uniformly from [lo, hi] seconds (hi defaults to
  lo), counted from its accept; meanwhile the proxy reads and holds the client's bytes (up to
  64 KiB, and no further than a cut would allow) and forwards them once connected, even if the
  client has closed in between (a FIN; its bytes still arrive, then the end of stream).  So a
  later connection can reach the server before an earlier one: a client that gave up on a
  connection and opened another can see its stale request arrive after the new one.  Delays are
  drawn in accept order (with `seed`, connection N always gets the same delay).  no_reorder()
  turns it off for new connections; connections already waiting keep their delay.  cut_now()
  and close() end waiting connections too.

FaultProxy(..., record=True) keeps every client->server byte forwarded: recorded_streams() returns
them per connection, in connection order (for looking at the requests a client sent).

Counters: cuts (int), cut_log (list of (connection number, client->server bytes forwarded,
'rst'|'fin')), connections (accepted so far), bytes_up / bytes_down (forwarded in total),
reordered (connections that reached the upstream after a connection accepted later than them
had), upstream_order (connection numbers in the order they reached the upstream).
open_connections() and active_uploads(within=0.3) (connections that moved client->server bytes
that recently) look at the connections now.  wait_for(predicate, timeout) polls a predicate on
the proxy (e.g. lambda p: p.bytes_up > 1e6).

A connection whose upstream cannot be reached (server down) is closed at once (a FIN to the
client, after it was accepted), which is what a client behind a real proxy sees.

As a command::

    faultproxy.py --upstream PORT [--port N] [--cut LO[-HI]] [--mode rst|fin|random|alternate]
                  [--limit N] [--throttle BPS] [--drip SEC] [--stall] [--reorder LO[-HI]]

prints `faultproxy: listening on 127.0.0.1:PORT` on stdout, then reads commands on standard
input, one per line: `upstream PORT`, `cut LO [HI [MODE [LIMIT]]]`, `nocut`, `cutnow [MODE]`,
`throttle BPS|off`, `stall`, `unstall`, `drip SEC|off`, `reorder LO [HI]|off` (seconds),
`stats` (prints `cuts=N connections=N bytes_up=N bytes_down=N`), `quit`.  Sizes take K, M, G
suffixes.
SIGTERM / SIGINT / end of input stop it.
"""

import random
import select
import socket
import struct
import sys
import threading
import time

__all__ = ['FaultProxy', 'parse_size']

_BUF = 65536          # per read, and the most held per direction before reading pauses
_TICK = 0.05          # longest a connection thread sleeps before looking at the settings again


def parse_size(s):
    """'64K' -> 65536, '1.5M' -> 1572864, '100' -> 100 (powers of 1024)."""
    s = str(s).strip()
    mult = 1
    if s and s[-1].upper() in 'KMG':
        mult = 1024 ** ('KMG'.index(s[-1].upper()) + 1)
        s = s[:-1]
    return int(float(s) * mult)


class _Conn:
    __slots__ = ('no', 'client', 'upstream', 'up', 'budget', 'cut_gen', 'tokens', 'tstamp',
                 'next_drip', 'thread', 'cut_req', 'last_up', 'accepted', 'delay')

    def __init__(self, no, client):
        self.no = no
        self.client = client
        self.upstream = None
        self.up = 0               # client->server bytes forwarded on this connection
        self.budget = None        # cut when up reaches this (None: no cut)
        self.cut_gen = -1         # the cut() generation budget was drawn for
        self.tokens = 0.0
        self.tstamp = time.monotonic()
        self.next_drip = 0.0
        self.thread = None
        self.cut_req = None       # mode of a pending cut_now()
        self.last_up = None       # time.monotonic() of the last client->server bytes forwarded
        self.accepted = time.monotonic()
        self.delay = 0.0          # seconds to wait after accepted before connecting upstream


class FaultProxy:
    """TCP proxy on 127.0.0.1 (port 0 = any free port) to 127.0.0.1:upstream_port with faults.
    See the module docstring."""

    def __init__(self, upstream_port, upstream_host='127.0.0.1', port=0, seed=None, record=False):
        self._lock = threading.Lock()
        self.record = record
        self.recorded = {}        # connection number -> client->server bytes forwarded (record=True)
        self._upstream = (upstream_host, int(upstream_port))
        self._rng = random.Random(seed)
        self._closed = False
        self._conns = {}
        # settings
        self._cut = None          # (lo, hi, mode, limit)
        self._cut_gen = 0
        self._alt = 0
        self._rate = None
        self._stalled = False
        self._drip = None
        self._reorder = None      # (lo, hi) seconds
        # counters
        self.cuts = 0
        self.cut_log = []
        self.connections = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.upstream_failures = 0
        self.reordered = 0
        self.upstream_order = []
        self._max_upstream_no = 0

        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind(('127.0.0.1', port))
        self._lsock.listen(128)
        self._lsock.settimeout(_TICK)
        self.port = self._lsock.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, name='faultproxy-accept',
                                               daemon=True)
        self._accept_thread.start()

    # ------------------------------------------------------------------ settings
    @property
    def upstream_port(self):
        return self._upstream[1]

    def set_upstream(self, port, host=None):
        """New connections go to host:port (open ones stay where they are)."""
        with self._lock:
            self._upstream = (host or self._upstream[0], int(port))

    def cut(self, lo, hi=None, mode='random', limit=None):
        hi = lo if hi is None else hi
        if mode not in ('rst', 'fin', 'random', 'alternate'):
            raise ValueError('mode must be rst, fin, random or alternate')
        if not 0 < lo <= hi:
            raise ValueError('need 0 < lo <= hi')
        with self._lock:
            self._cut = (int(lo), int(hi), mode, limit)
            self._cut_gen += 1

    def no_cuts(self):
        with self._lock:
            self._cut = None
            self._cut_gen += 1

    def cut_now(self, mode='rst'):
        """Cut every open connection (mode 'rst' or 'fin'); counted in cuts and cut_log."""
        with self._lock:
            for c in self._conns.values():
                c.cut_req = mode

    def throttle(self, bytes_per_second):
        with self._lock:
            self._rate = float(bytes_per_second) if bytes_per_second else None

    def stall(self):
        with self._lock:
            self._stalled = True

    def unstall(self):
        with self._lock:
            self._stalled = False

    def drip(self, interval):
        with self._lock:
            self._drip = None if interval is None else float(interval)

    def reorder(self, lo, hi=None):
        """Connect each connection accepted from now on upstream after a delay in [lo, hi] s."""
        hi = lo if hi is None else hi
        if not 0 <= lo <= hi:
            raise ValueError('need 0 <= lo <= hi')
        with self._lock:
            self._reorder = (float(lo), float(hi))

    def no_reorder(self):
        with self._lock:
            self._reorder = None

    def recorded_streams(self):
        """[bytes] of each connection's client->server bytes (record=True), oldest first."""
        with self._lock:
            return [bytes(self.recorded[k]) for k in sorted(self.recorded)]

    def active_uploads(self, within=0.3):
        """Open connections that forwarded client->server bytes in the last `within` seconds."""
        now = time.monotonic()
        with self._lock:
            return sum(1 for c in self._conns.values()
                       if c.last_up is not None and now - c.last_up <= within)

    def open_connections(self):
        with self._lock:
            return len(self._conns)

    def wait_for(self, predicate, timeout=10.0, interval=0.01):
        """Poll predicate(self) until true (returns True) or timeout (returns False)."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                return False
            time.sleep(interval)
        return True

    # ------------------------------------------------------------------ lifecycle
    def close(self):
        """Stop listening, close every connection, join every thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = [c.thread for c in self._conns.values() if c.thread]
        self._accept_thread.join(5)
        for t in threads:
            t.join(5)
        try:
            self._lsock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ internals
    def _accept_loop(self):
        while True:
            with self._lock:
                if self._closed:
                    break
            try:
                cs, _ = self._lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self._lock:
                if self._closed:
                    cs.close()
                    break
                self.connections += 1
                c = _Conn(self.connections, cs)
                if self._reorder is not None:
                    c.delay = self._rng.uniform(*self._reorder)
                self._conns[c.no] = c
                c.thread = threading.Thread(target=self._serve, args=(c,),
                                            name='faultproxy-conn-%d' % c.no, daemon=True)
            c.thread.start()

    def _draw_budget(self, c):
        """Called with the lock held: (re)draw c.budget when the cut settings changed."""
        if c.cut_gen == self._cut_gen:
            return
        c.cut_gen = self._cut_gen
        if self._cut is None:
            c.budget = None
        else:
            lo, hi, _, _ = self._cut
            c.budget = c.up + self._rng.randint(lo, hi)

    def _pick_mode(self):
        mode = self._cut[2] if self._cut else 'rst'
        if mode == 'random':
            return self._rng.choice(('rst', 'fin'))
        if mode == 'alternate':
            self._alt += 1
            return 'rst' if self._alt % 2 else 'fin'
        return mode

    def _serve(self, c):
        try:
            self._serve_inner(c)
        except OSError:
            pass
        finally:
            for s in (c.client, c.upstream):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass
            with self._lock:
                self._conns.pop(c.no, None)

    def _connect_upstream(self, c):
        with self._lock:
            addr = self._upstream
        try:
            s = socket.create_connection(addr, timeout=5)
        except OSError:
            with self._lock:
                self.upstream_failures += 1
            return None
        with self._lock:
            if c.no < self._max_upstream_no:
                self.reordered += 1
            self._max_upstream_no = max(self._max_upstream_no, c.no)
            self.upstream_order.append(c.no)
        return s

    def _hold(self, c, to_up):
        """reorder(): until c.accepted + c.delay, read the client's bytes into to_up (as many as
        the forwarding loop would take).  Returns (client_eof, cut mode or None, closed)."""
        cs = c.client
        cs.setblocking(False)
        eof = False
        while True:
            with self._lock:
                if self._closed:
                    return eof, None, True
                self._draw_budget(c)
                cut_req = c.cut_req
                budget = c.budget
            if cut_req:
                return eof, cut_req, False
            left = c.accepted + c.delay - time.monotonic()
            if left <= 0:
                return eof, None, False
            allow = _BUF - len(to_up)
            if budget is not None:
                allow = min(allow, budget - c.up - len(to_up))
            if eof or allow <= 0:
                time.sleep(min(left, _TICK))
                continue
            try:
                r, _, _ = select.select([cs], [], [], min(left, _TICK))
            except (OSError, ValueError):
                return True, None, False
            if not r:
                continue
            try:
                d = cs.recv(allow)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b''
            if d:
                to_up += d
            else:
                eof = True

    def _serve_inner(self, c):
        to_up = bytearray()       # read from the client, not yet written upstream
        to_down = bytearray()
        client_eof = upstream_eof = False
        if c.delay > 0:
            client_eof, cut_req, closed = self._hold(c, to_up)
            if closed:
                return
            if cut_req:
                self._do_cut(c, cut_req)
                return
        c.upstream = self._connect_upstream(c)
        if c.upstream is None:
            return
        for s in (c.client, c.upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
        cs, us = c.client, c.upstream
        up_shut = down_shut = False
        while True:
            with self._lock:
                if self._closed:
                    return
                self._draw_budget(c)
                stalled = self._stalled
                rate = self._rate
                drip = self._drip
                cut_req = c.cut_req
                budget = c.budget
            if cut_req:
                self._do_cut(c, cut_req)
                return
            now = time.monotonic()
            # how much may be read from the client now
            up_allow = _BUF - len(to_up)
            if budget is not None:
                up_allow = min(up_allow, budget - c.up - len(to_up))
            if rate is not None:
                c.tokens = min(c.tokens + (now - c.tstamp) * rate, max(rate / 20.0, 1.0))
                up_allow = min(up_allow, int(c.tokens))
            c.tstamp = now
            down_allow = _BUF - len(to_down)
            if drip is not None:
                if now < c.next_drip:
                    up_allow = down_allow = 0
                else:
                    up_allow = min(up_allow, 1)
                    down_allow = min(down_allow, 1)
            if stalled:
                up_allow = down_allow = 0
            rl, wl = [], []
            if up_allow > 0 and not client_eof:
                rl.append(cs)
            if down_allow > 0 and not upstream_eof:
                rl.append(us)
            if to_up and not stalled:
                wl.append(us)
            if to_down and not stalled:
                wl.append(cs)
            if not rl and not wl:
                # nothing to do until the stall ends, a drip or a throttle token is due, or a
                # setting changes
                time.sleep(min(_TICK, drip or _TICK, 0.005 if rate else _TICK))
                continue
            try:
                r, _w, _ = select.select(rl, wl, [], _TICK)
            except (OSError, ValueError):
                return
            with self._lock:
                if self._stalled or self._closed or c.cut_req or self._drip != drip \
                        or self._rate != rate or self._cut_gen != c.cut_gen:
                    continue       # settings changed while select() waited: look again first
            if cs in r:
                try:
                    d = cs.recv(up_allow)
                except (BlockingIOError, InterruptedError):
                    d = None
                except OSError:
                    d = b''
                if d == b'':
                    client_eof = True
                elif d:
                    to_up += d
                    if rate is not None:
                        c.tokens -= len(d)
                    if drip is not None:
                        c.next_drip = time.monotonic() + drip
            if us in r:
                try:
                    d = us.recv(down_allow)
                except (BlockingIOError, InterruptedError):
                    d = None
                except OSError:
                    d = b''
                if d == b'':
                    upstream_eof = True
                elif d:
                    to_down += d
                    if drip is not None:
                        c.next_drip = time.monotonic() + drip
            if to_up and not stalled:
                try:
                    n = us.send(to_up) if to_up else 0
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError:
                    return
                if n:
                    with self._lock:
                        self.bytes_up += n
                        if self.record:
                            self.recorded.setdefault(c.no, bytearray()).extend(to_up[:n])
                    del to_up[:n]
                    c.up += n
                    c.last_up = time.monotonic()
            if to_down and not stalled:
                try:
                    n = cs.send(to_down) if to_down else 0
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError:
                    return
                if n:
                    del to_down[:n]
                    with self._lock:
                        self.bytes_down += n
            # the cut: exactly `budget` client->server bytes have been handed to the upstream socket
            if budget is not None and c.up >= budget and not to_up:
                with self._lock:
                    limit = self._cut[3] if self._cut else None
                    if self._cut is not None and c.budget == budget and (limit is None or self.cuts < limit):
                        mode = self._pick_mode()
                    else:
                        mode = None
                        if c.budget == budget:
                            c.budget = None      # limit reached: this connection is left alone
                if mode:
                    self._do_cut(c, mode)
                    return
            # half-closes pass through
            if client_eof and not to_up and not up_shut:
                up_shut = True
                try:
                    us.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            if upstream_eof and not to_down and not down_shut:
                down_shut = True
                try:
                    cs.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            if up_shut and down_shut:
                return

    def _do_cut(self, c, mode):
        with self._lock:
            self.cuts += 1
            self.cut_log.append((c.no, c.up, mode))
        for s in (c.upstream, c.client):
            if s is None:          # cut while waiting to connect (reorder)
                continue
            try:
                if mode == 'rst':
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                else:
                    s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        c.client = c.upstream = None


# ---------------------------------------------------------------------- CLI

def _command(p, line, out):
    a = line.split()
    if not a:
        return True
    cmd, args = a[0], a[1:]
    if cmd == 'upstream':
        p.set_upstream(int(args[0]))
    elif cmd == 'cut':
        lo = parse_size(args[0])
        hi = parse_size(args[1]) if len(args) > 1 else lo
        mode = args[2] if len(args) > 2 else 'random'
        limit = int(args[3]) if len(args) > 3 else None
        p.cut(lo, hi, mode, limit)
    elif cmd == 'nocut':
        p.no_cuts()
    elif cmd == 'cutnow':
        p.cut_now(args[0] if args else 'rst')
    elif cmd == 'throttle':
        p.throttle(None if args[0] == 'off' else parse_size(args[0]))
    elif cmd == 'stall':
        p.stall()
    elif cmd == 'unstall':
        p.unstall()
    elif cmd == 'drip':
        p.drip(None if args[0] == 'off' else float(args[0]))
    elif cmd == 'reorder':
        if args[0] == 'off':
            p.no_reorder()
        else:
            p.reorder(float(args[0]), float(args[1]) if len(args) > 1 else None)
    elif cmd == 'stats':
        out.write('cuts=%d connections=%d bytes_up=%d bytes_down=%d\n'
                  % (p.cuts, p.connections, p.bytes_up, p.bytes_down))
        out.flush()
    elif cmd == 'quit':
        return False
    else:
        sys.stderr.write('faultproxy: unknown command %r\n' % cmd)
    return True


def main(argv=None):
    import argparse
    import signal
    ap = argparse.ArgumentParser(description='TCP fault proxy (see the module docstring).')
    ap.add_argument('--upstream', type=int, required=True, help='upstream port on 127.0.0.1')
    ap.add_argument('--port', type=int, default=0, help='listen port (default: any)')
    ap.add_argument('--cut', help='LO[-HI] client->server bytes per connection before a cut')
    ap.add_argument('--mode', default='random', choices=('rst', 'fin', 'random', 'alternate'))
    ap.add_argument('--limit', type=int, default=None, help='stop cutting after N cuts')
    ap.add_argument('--throttle', help='client->server bytes per second')
    ap.add_argument('--drip', type=float, help='seconds between single bytes')
    ap.add_argument('--stall', action='store_true')
    ap.add_argument('--reorder', help='LO[-HI] seconds each new connection waits before it is '
                    'connected upstream')
    ap.add_argument('--seed', type=int)
    o = ap.parse_args(argv)
    p = FaultProxy(o.upstream, port=o.port, seed=o.seed)
    if o.cut:
        lo, _, hi = o.cut.partition('-')
        p.cut(parse_size(lo), parse_size(hi or lo), o.mode, o.limit)
    if o.throttle:
        p.throttle(parse_size(o.throttle))
    if o.drip is not None:
        p.drip(o.drip)
    if o.stall:
        p.stall()
    if o.reorder:
        lo, _, hi = o.reorder.partition('-')
        p.reorder(float(lo), float(hi or lo))

    def stop(*_):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    sys.stdout.write('faultproxy: listening on 127.0.0.1:%d\n' % p.port)
    sys.stdout.flush()
    try:
        for line in sys.stdin:
            try:
                if not _command(p, line, sys.stdout):
                    break
            except (ValueError, IndexError) as e:
                sys.stderr.write('faultproxy: bad command %r: %s\n' % (line.strip(), e))
    except KeyboardInterrupt:
        pass
    finally:
        p.close()
        sys.stderr.write('faultproxy: %d cuts, %d connections\n' % (p.cuts, p.connections))
    return 0


if __name__ == '__main__':
    sys.exit(main())
