"""Self-test of tests/tools/faultproxy.py: forwards bytes both ways, cuts where told (RST and FIN),
honours limits, switches upstream, stalls, throttles, drips, and close() stops everything."""

import os
import socket
import subprocess
import sys
import threading
import time

from clientlib import FaultProxy, REPO, _register, check, eq, sha, wait_until

import faultproxy


class Upstream:
    """In-process TCP server: 'echo' sends back what it gets; 'sink' records what each connection
    received and how it ended ('eof' or 'reset')."""

    def __init__(self, kind='echo'):
        self.kind = kind
        self.ls = socket.socket()
        self.ls.bind(('127.0.0.1', 0))
        self.ls.listen(16)
        self.ls.settimeout(0.1)
        self.port = self.ls.getsockname()[1]
        self.conns = []          # [{'data': bytearray, 'end': None|'eof'|'reset'}]
        self.closed = False
        self.socks = []
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while not self.closed:
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            rec = {'data': bytearray(), 'end': None}
            self.conns.append(rec)
            self.socks.append(c)
            threading.Thread(target=self._handle, args=(c, rec), daemon=True).start()

    def _handle(self, c, rec):
        try:
            c.settimeout(20)
        except OSError:       # close() came first
            return
        while True:
            try:
                d = c.recv(65536)
            except ConnectionResetError:
                rec['end'] = 'reset'
                break
            except OSError:
                rec['end'] = 'error'
                break
            if not d:
                rec['end'] = 'eof'
                break
            rec['data'] += d
            if self.kind == 'echo':
                try:
                    c.sendall(d)
                except OSError:
                    rec['end'] = 'reset'
                    break
        try:
            c.close()
        except OSError:
            pass

    def close(self):
        self.closed = True
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        self.ls.close()
        self.t.join(2)


def _connect(port):
    s = socket.create_connection(('127.0.0.1', port), timeout=10)
    return s


def _recv_all(s, n):
    got = bytearray()
    while len(got) < n:
        d = s.recv(65536)
        if not d:
            break
        got += d
    return bytes(got)


def _send_until_dead(s, data):
    """Send data; return ('ok'|'reset'|'pipe', bytes sent before the error was seen)."""
    sent = 0
    try:
        for i in range(0, len(data), 16384):
            s.sendall(data[i:i + 16384])
            sent = i + 16384
        return 'ok', sent
    except ConnectionResetError:
        return 'reset', sent
    except BrokenPipeError:
        return 'pipe', sent


def _end_seen_by_client(s):
    """After a cut: 'eof' (FIN) or 'reset' (RST) on the client side."""
    s.settimeout(5)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return 'eof'
    except ConnectionResetError:
        return 'reset'
    except socket.timeout:
        return 'timeout'


def test_forwards_both_ways():
    up = Upstream('echo')
    try:
        p = FaultProxy(up.port, record=True)
        check(p.port != up.port and p.port > 0, 'proxy port %r' % p.port)
        data = os.urandom(3 << 20)
        s = _connect(p.port)
        t = threading.Thread(target=s.sendall, args=(data,))
        t.start()
        got = _recv_all(s, len(data))
        t.join()
        eq(sha(got), sha(data), 'echoed bytes through the proxy (sha256)')
        s.close()
        eq((p.bytes_up, p.bytes_down), (len(data), len(data)), '(bytes_up, bytes_down)')
        eq((p.connections, p.cuts), (1, 0), '(connections, cuts)')
        eq([sha(b) for b in p.recorded_streams()], [sha(data)], 'recorded client->server stream')
        # the half-close passes through: client FIN -> upstream sees EOF
        wait_until(lambda: up.conns and up.conns[0]['end'] == 'eof', 5, 'upstream EOF after client close')
    finally:
        up.close()


def test_cut_fin_at_exact_byte():
    up = Upstream('sink')
    try:
        p = FaultProxy(up.port)
        p.cut(100000, mode='fin')
        s = _connect(p.port)
        s.sendall(os.urandom(100000))
        eq(_end_seen_by_client(s), 'eof', 'client side of a FIN cut')
        # the proxy has closed its end: more data is refused
        check(_send_until_dead(s, os.urandom(1 << 20))[0] in ('reset', 'pipe'),
              'sending after a FIN cut did not fail')
        s.close()
        wait_until(lambda: up.conns and up.conns[0]['end'] is not None, 5, 'upstream end')
        eq((len(up.conns[0]['data']), up.conns[0]['end']), (100000, 'eof'),
           'upstream (bytes received, end) after a FIN cut at 100000')
        eq(p.cuts, 1, 'cuts')
        eq(p.cut_log, [(1, 100000, 'fin')], 'cut_log')
    finally:
        up.close()


def test_cut_rst():
    up = Upstream('sink')
    try:
        p = FaultProxy(up.port)
        p.cut(50000, mode='rst')
        s = _connect(p.port)
        data = os.urandom(50000)
        s.sendall(data)
        eq(_end_seen_by_client(s), 'reset', 'client side of an RST cut')
        s.close()
        wait_until(lambda: up.conns and up.conns[0]['end'] is not None, 5, 'upstream end')
        rec = up.conns[0]
        eq(rec['end'], 'reset', 'upstream side of an RST cut')
        check(len(rec['data']) <= 50000 and bytes(rec['data']) == data[:len(rec['data'])],
              'upstream got %d bytes, not a prefix of at most 50000' % len(rec['data']))
        eq(p.cut_log, [(1, 50000, 'rst')], 'cut_log')
    finally:
        up.close()


def test_cut_range_modes_and_limit():
    up = Upstream('sink')
    try:
        p = FaultProxy(up.port, seed=7)
        p.cut(1000, 5000, mode='alternate', limit=6)
        for i in range(8):
            s = _connect(p.port)
            res, _ = _send_until_dead(s, os.urandom(20000))
            if i < 6:
                check(res != 'ok' or _end_seen_by_client(s) in ('eof', 'reset'),
                      'connection %d was not cut' % (i + 1))
            s.close()
            if i < 6:
                wait_until(lambda: p.cuts == i + 1, 5, 'cut %d' % (i + 1))
        eq(p.cuts, 6, 'cuts with limit=6 over 8 connections')
        for no, n, mode in p.cut_log:
            check(1000 <= n <= 5000, 'cut at %d outside [1000, 5000]' % n)
        eq([m for _, _, m in p.cut_log], ['rst', 'fin'] * 3, 'modes of alternate cuts')
        # connections 7 and 8 went through whole
        wait_until(lambda: len(up.conns) == 8 and all(c['end'] for c in up.conns), 5, 'upstream ends')
        eq([len(c['data']) for c in up.conns[6:]], [20000, 20000], 'bytes of the uncut connections')
        # random mode: cut points differ, every one in range
        p.cut(100, 300, mode='random')
        for i in range(5):
            s = _connect(p.port)
            _send_until_dead(s, os.urandom(5000))
            _end_seen_by_client(s)
            s.close()
        wait_until(lambda: p.cuts == 11, 5, '5 more cuts')
        check(all(100 <= n <= 300 for _, n, _ in p.cut_log[6:]), 'random cuts in range: %r' % p.cut_log[6:])
        p.no_cuts()
        s = _connect(p.port)
        eq(_send_until_dead(s, os.urandom(10000))[0], 'ok', 'send after no_cuts()')
        s.close()
        eq(p.cuts, 11, 'cuts after no_cuts()')
    finally:
        up.close()


def test_cut_now_and_set_upstream():
    a, b = Upstream('echo'), Upstream('echo')
    try:
        p = FaultProxy(a.port)
        s1 = _connect(p.port)
        s1.sendall(b'one')
        eq(_recv_all(s1, 3), b'one', 'echo via upstream a')
        p.set_upstream(b.port)
        eq(p.upstream_port, b.port, 'upstream_port')
        s2 = _connect(p.port)
        s2.sendall(b'two')
        eq(_recv_all(s2, 3), b'two', 'echo via upstream b')
        wait_until(lambda: len(b.conns) == 1, 5, 'connection at b')
        eq((len(a.conns), bytes(b.conns[0]['data'])), (1, b'two'), '(connections at a, data at b)')
        # the open connection to a still works
        s1.sendall(b'again')
        eq(_recv_all(s1, 5), b'again', 'old connection still on a')
        p.cut_now('rst')
        eq(_end_seen_by_client(s1), 'reset', 'cut_now on connection 1')
        eq(_end_seen_by_client(s2), 'reset', 'cut_now on connection 2')
        eq(p.cuts, 2, 'cuts after cut_now')
        # upstream gone: the client's connection is closed, the proxy keeps running
        b.close()
        s3 = _connect(p.port)
        check(_end_seen_by_client(s3) in ('eof', 'reset'), 'connection to a dead upstream not closed')
        p.set_upstream(a.port)
        s4 = _connect(p.port)
        s4.sendall(b'back')
        eq(_recv_all(s4, 4), b'back', 'echo after switching back to a')
        for s in (s1, s2, s3, s4):
            s.close()
    finally:
        a.close()
        b.close()


def test_stall_throttle_drip():
    up = Upstream('sink')
    try:
        p = FaultProxy(up.port)
        s = _connect(p.port)
        s.sendall(b'x' * 1000)
        wait_until(lambda: up.conns and len(up.conns[0]['data']) == 1000, 5, 'first 1000 bytes')
        p.stall()
        s.sendall(b'y' * 1000)
        time.sleep(0.3)
        eq(len(up.conns[0]['data']), 1000, 'bytes upstream while stalled')
        p.unstall()
        wait_until(lambda: len(up.conns[0]['data']) == 2000, 5, 'bytes forwarded after unstall')
        # throttle: 200 KB/s, 1 MB cannot arrive within 0.5 s (upper bound only)
        p.throttle(200000)
        t = threading.Thread(target=s.sendall, args=(b'z' * 1000000,), daemon=True)
        t.start()
        time.sleep(0.5)
        n = len(up.conns[0]['data']) - 2000
        check(0 < n < 400000, 'throttled to 200000 B/s, yet %d bytes arrived in 0.5 s' % n)
        p.throttle(None)
        wait_until(lambda: len(up.conns[0]['data']) == 1002000, 10, 'all bytes after unthrottle')
        t.join(5)
        # drip: 1 byte per 2 ms, so 100 bytes need more than 0.1 s, and all arrive intact
        p.drip(0.002)
        payload = os.urandom(100)
        t0 = time.monotonic()
        s.sendall(payload)
        wait_until(lambda: len(up.conns[0]['data']) == 1002100, 10, 'dripped bytes')
        check(time.monotonic() - t0 >= 0.1, 'drip of 100 bytes at 2 ms each took under 0.1 s')
        eq(bytes(up.conns[0]['data'][-100:]), payload, 'dripped bytes')
        p.drip(None)
        s.close()
    finally:
        up.close()


def test_close_stops_everything():
    up = Upstream('echo')
    try:
        before = threading.active_count()
        p = faultproxy.FaultProxy(up.port)
        conns = [_connect(p.port) for _ in range(3)]
        for c in conns:
            c.sendall(b'hi')
            eq(_recv_all(c, 2), b'hi', 'echo')
        p.stall()
        p.close()
        for c in conns:
            check(_end_seen_by_client(c) in ('eof', 'reset'), 'a connection survived close()')
            c.close()
        wait_until(lambda: threading.active_count() <= before, 5, 'proxy threads to end')
        try:
            x = socket.create_connection(('127.0.0.1', p.port), timeout=2)
            x.close()
            raise AssertionError('proxy port %d still accepts after close()' % p.port)
        except ConnectionRefusedError:
            pass
    finally:
        up.close()


def test_command_line():
    up = Upstream('echo')
    proc = _register(subprocess.Popen([sys.executable, os.path.join(REPO, 'tests', 'tools', 'faultproxy.py'),
                             '--upstream', str(up.port), '--cut', '10K', '--mode', 'fin'],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    try:
        line = proc.stdout.readline().decode()
        check(line.startswith('faultproxy: listening on 127.0.0.1:'), 'first line %r' % line)
        port = int(line.strip().rsplit(':', 1)[1])
        s = _connect(port)
        _send_until_dead(s, os.urandom(50000))
        s.close()
        wait_until(lambda: up.conns and up.conns[0]['end'], 5, 'upstream end')
        eq(len(up.conns[0]['data']), 10240, 'bytes before the CLI cut at 10K')
        proc.stdin.write(b'nocut\nstats\n')
        proc.stdin.flush()
        stats = proc.stdout.readline().decode()
        check(stats.startswith('cuts=1 connections=1 bytes_up=10240'), 'stats %r' % stats)
        proc.stdin.write(b'quit\n')
        proc.stdin.flush()
        eq(proc.wait(10), 0, 'exit status after quit')
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        up.close()
