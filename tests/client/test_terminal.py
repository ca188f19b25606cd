"""Progress on a terminal: the client runs with stderr on a pseudo-terminal (stdout stays a pipe),
and what it drew is replayed through a small terminal emulator.  While the uploads run there is
one live line per active file (name, bar, "x / y", percent, rate, ETA) redrawn in place; no
progress line is ever wider than the terminal less one column (so it never wraps); the cursor
only ever moves back over the live lines it drew; messages (a retry caused by a cut connection,
completions) land above the live lines and stay intact; at the end the live lines are gone and
the screen holds exactly the messages and the summary; stdout holds only URL<TAB>FILE lines."""

import errno
import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import threading

import clientlib
import harness
from clientlib import (CLIENT, FAST, FaultProxy, Server, TestFailure, check, client_env, eq,
                       expect_download, files_url, make_file, tmpdir)

MiB = 1 << 20
PREFIX = 'resumed-upload: '


# ---------------------------------------------------------------------------
# the client on a pseudo-terminal
# ---------------------------------------------------------------------------

class PtyClient:
    """The client with stderr on a pty of rows x cols (stdin /dev/null, stdout a pipe).  The
    process is registered with clientlib, so finish_test kills it by PID."""

    def __init__(self, args, rows, cols):
        self.args = [str(a) for a in args]
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
        self.err_chunks, self.out_chunks = [], []
        try:
            self.proc = clientlib._register(subprocess.Popen(
                [CLIENT] + self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                env=client_env(), cwd=tmpdir()))
        finally:
            os.close(slave)
        self.threads = [threading.Thread(target=self._read_pty, daemon=True),
                        threading.Thread(target=self._read_out, daemon=True)]
        for t in self.threads:
            t.start()

    def _read_pty(self):
        while True:
            try:
                d = os.read(self.master, 65536)
            except OSError as e:     # EIO: every slave descriptor is closed (the client exited)
                if e.errno != errno.EIO:
                    raise
                break
            if not d:
                break
            self.err_chunks.append(d)

    def _read_out(self):
        while True:
            d = self.proc.stdout.read1(65536)
            if not d:
                break
            self.out_chunks.append(d)

    def wait(self, timeout=40):
        try:
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                clientlib._kill(self.proc)
                raise TestFailure('client on a terminal did not finish within %.0f s; stderr tail: %r'
                                  % (timeout, b''.join(self.err_chunks)[-2000:]))
            for t in self.threads:
                t.join(10)
            check(not any(t.is_alive() for t in self.threads), 'the pty or stdout reader did not end')
        finally:
            os.close(self.master)
        self.proc.stdout.close()
        raw = b''.join(self.err_chunks)
        self.err = raw.decode('utf-8', 'replace')
        check(raw == self.err.encode('utf-8'), 'stderr on the terminal is not valid UTF-8: %r' % raw[-2000:])
        self.out = b''.join(self.out_chunks).decode('utf-8', 'replace')
        for m in harness.SANITIZER_MARKERS:
            check(m not in self.err, 'sanitizer report on the terminal:\n' + self.err[self.err.find(m):][:3000])
        return rc


# ---------------------------------------------------------------------------
# a small terminal emulator
# ---------------------------------------------------------------------------

class Screen:
    """Replays what the client wrote to its terminal.  Rows are unbounded downwards (nothing
    scrolls away); the visible screen is the last `rows` rows reached.  Understands printable
    text, CR, LF (down one row, same column: the pty's ONLCR turned the client's \\n into \\r\\n),
    ESC[nA, ESC[J, ESC[K, and xterm's deferred auto-wrap at the last column; anything else fails.

    A line beginning with "resumed-upload: " is a message and may wrap; any other line is a
    progress line and must stay within cols-1 columns.  Every ESC[nA must go back over progress
    lines only: those n rows are recorded as a frame (the live lines drawn since the last redraw).
    events: ('frame', [line, ...]) and ('message', text), in the order they happened."""

    def __init__(self, rows, cols):
        self.rows, self.cols = rows, cols
        self.lines = [[]]
        self.cont = [False]          # the row continues the previous one (auto-wrapped)
        self.r = self.c = 0
        self.lowest = 0              # the lowest row the cursor reached (the screen's bottom)
        self.pending = False         # at the last column, the next character wraps
        self.events = []
        self.text = ''
        self.pos = 0

    def fail(self, what):
        lo = max(0, self.pos - 400)
        raise TestFailure('terminal output: %s at byte %d of the stderr stream;\nbytes before: %r\n'
                          'bytes after: %r\nscreen:\n%s' % (what, self.pos, self.text[lo:self.pos],
                                                           self.text[self.pos:self.pos + 200],
                                                           '\n'.join(self.logical_lines())))

    def _row(self, r):
        while len(self.lines) <= r:
            self.lines.append([])
            self.cont.append(False)
        return self.lines[r]

    def _start(self, r):
        while r > 0 and self.cont[r]:
            r -= 1
        return r

    def _logical(self, r):
        """The text of the logical line holding row r (wrapped rows joined)."""
        s = self._start(r)
        e = s + 1
        while e < len(self.lines) and self.cont[e]:
            e += 1
        return ''.join(''.join(self.lines[i]) for i in range(s, e))

    def _is_message(self, r):
        return ''.join(self.lines[self._start(r)]).startswith(PREFIX)

    def _down(self):
        self.r += 1
        self._row(self.r)
        self.lowest = max(self.lowest, self.r)

    def _put(self, ch):
        if self.pending:
            if not self._is_message(self.r):
                self.fail('a progress line wrapped')
            self._down()
            self.cont[self.r] = True
            self.lines[self.r] = []
            self.c = 0
            self.pending = False
        if self.c >= self.cols - 1 and not self._is_message(self.r):
            self.fail('a progress line reached column %d of a %d-column terminal' % (self.c + 1, self.cols))
        row = self._row(self.r)
        while len(row) < self.c:
            row.append(' ')
        if self.c < len(row):
            row[self.c] = ch
        else:
            row.append(ch)
        if self.c == self.cols - 1:
            self.pending = True
        else:
            self.c += 1

    def feed(self, text):
        self.text = text
        i, n = 0, len(text)
        while i < n:
            self.pos = i
            ch = text[i]
            if ch == '\x1b':
                m = re.compile(r'\x1b\[([0-9]*)([A-Za-z])').match(text, i)
                if not m:
                    self.fail('an escape sequence the client should not send')
                arg, op = m.group(1), m.group(2)
                if op == 'A':
                    self._up(int(arg or '1'))
                elif op == 'J' and arg in ('', '0'):
                    self.lines[self.r] = self.lines[self.r][:self.c]
                    del self.lines[self.r + 1:]
                    del self.cont[self.r + 1:]
                elif op == 'K' and arg in ('', '0'):
                    self.lines[self.r] = self.lines[self.r][:self.c]
                else:
                    self.fail('unexpected escape sequence %r' % m.group(0))
                self.pending = False
                i = m.end()
                continue
            if ch == '\r':
                self.c = 0
                self.pending = False
            elif ch == '\n':
                if self._is_message(self.r):
                    self.events.append(('message', self._logical(self.r)))
                self._down()
                self.pending = False
            elif ch < ' ' or ch == '\x7f':
                self.fail('control character %r' % ch)
            else:
                self._put(ch)
            i += 1
        self.pos = n

    def _up(self, n):
        top = max(0, self.lowest - self.rows + 1)
        if n < 1 or self.r - n < top:
            self.fail('cursor up %d from row %d: above the first line printed or the screen\'s top (row %d)'
                      % (n, self.r, top))
        rows = list(range(self.r - n, self.r))
        for r in rows:
            if self.cont[r] or self._is_message(r):
                self.fail('cursor up %d goes back over a message line (%r), not only over progress lines'
                          % (n, self._logical(r)))
        self.events.append(('frame', [''.join(self.lines[r]) for r in rows]))
        self.r -= n

    def logical_lines(self):
        out, r = [], 0
        while r < len(self.lines):
            if not self.cont[r]:
                out.append(self._logical(r))
            r += 1
        while out and out[-1] == '':
            out.pop()
        return out


# ---------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------

SIZE = r'[\d.]+ (?:B|KiB|MiB|GiB)'
# "NAME [####------] 1.0 MiB / 4.0 MiB  25%  2.0 MiB/s  ETA 0:02" (or "...  retrying in 1s")
FULL_RX = re.compile(r'(?P<name>\S+) \[(?P<bar>[#-]+)\] (?P<sent>%s) / (?P<total>%s) +(?P<pct>\d+)%%  '
                     r'(?:(?P<rate>%s)/s  ETA (?P<eta>\d+:\d\d(?::\d\d)?|--:--)|retrying in \d+s)'
                     % (SIZE, SIZE, SIZE))
# on a narrow terminal, no bar and the line is cut: "NAME  1.0 MiB / 4.0 MiB  25%  2.0 MiB/s  E"
NARROW_RX = re.compile(r'(?P<name>\S+)  (?P<sent>%s) / (?P<total>%s) +(?P<pct>\d+)%%(?:  .*)?' % (SIZE, SIZE))


def _bytes(s):
    v, unit = s.split(' ')
    return float(v) * 1024 ** ['B', 'KiB', 'MiB', 'GiB'].index(unit)


def _which(name, args):
    """The file argument a progress line's name stands for: the argument itself, or "..." and
    enough of its end to tell the files apart."""
    hits = [a for a in args if name == a or (name.startswith('...') and len(name) >= 15 and a.endswith(name[3:]))]
    check(len(hits) == 1, 'progress line name %r matches %d of the files %r' % (name, len(hits), args))
    return hits[0]


# Each file goes through its own connection at 2 MiB/s: about 4 s, with 20 redraws.  (The
# client counts bytes that left its send queue, and the proxy's receive buffer takes the first
# few MiB at once, so they seem to go at once.)
SIZE_MIB = 8
RATE = 2 * MiB


def _terminal_run(cols, names, whole_lines, rows=24):
    """Uploads two files with -j 2 on a cols-column terminal; whole_lines: every live line fits
    (with a bar), else they are cut."""
    srv = Server()
    p = FaultProxy(srv.port)
    p.throttle(RATE)
    p.cut(MiB, mode='rst', limit=1)       # one connection is cut once, after 1 MiB
    ep = files_url(p.port)
    size = SIZE_MIB * MiB
    files = []
    for name in names:
        _, data = make_file(size, name=name)
        files.append(('files/' + name, data))   # relative to the client's cwd, tmpdir()
    args = [a for a, _ in files]
    c = PtyClient(FAST + ['-j', '2'] + args + [ep], rows, cols)
    rc = c.wait(40)
    eq(rc, 0, 'exit status on a terminal (stderr: %r)' % c.err[-3000:])
    eq(p.cuts, 1, 'connections cut')

    # stdout: exactly URL<TAB>FILE per file, no terminal control
    check('\x1b' not in c.out and '\r' not in c.out, 'control characters on stdout (a pipe): %r' % c.out)
    got = {}
    for l in c.out.split('\n'):
        if l:
            check(l.count('\t') == 1, 'stdout line is not "<url>\\t<file>": %r' % l)
            url, f = l.split('\t')
            check(f not in got, 'two stdout lines for %r: %r' % (f, c.out))
            got[f] = url
    eq(sorted(got), sorted(args), 'FILE column of stdout')
    for a, data in files:
        check(got[a].startswith(ep), 'upload URL %r not under %r' % (got[a], ep))
        expect_download(got[a], data, a)

    scr = Screen(rows, cols)
    scr.feed(c.err)
    frames = [(i, e[1]) for i, e in enumerate(scr.events) if e[0] == 'frame']
    msgs = [(i, e[1]) for i, e in enumerate(scr.events) if e[0] == 'message']
    check(len(frames) >= 5, 'only %d redraws of the live lines in a 4 s upload: %r' % (len(frames), c.err))

    # the final screen: the live lines are gone; every message the client wrote is there, in
    # order and intact (none overwritten or erased by a redraw), and the summary ends it
    written = re.findall(re.escape(PREFIX) + r'[^\x1b\r\n]*', c.err)
    final = scr.logical_lines()
    eq(final, written, 'final screen (after the live lines were cleared) vs the messages written')
    eq([t for _, t in msgs], written, 'message lines as they were completed on the screen')
    check(re.fullmatch(r'resumed-upload: 2 uploaded, 0 failed, %d\.0 MiB in [\d.]+s \(%s/s\)' % (2 * SIZE_MIB, SIZE), final[-1]),
          'the last line on the screen is not the summary: %r' % final)
    retries = [l for l in final if re.fullmatch(re.escape(PREFIX) + r'(\S+): .*; retrying in [\d.]+s '
                                                r'\(attempt 2 of \d+\)', l)]
    eq(len(retries), 1, 'retry lines on the final screen (one connection was cut): %r' % final)
    cut_file = retries[0][len(PREFIX):].split(': ')[0]
    check(cut_file in args, 'retry line names %r' % cut_file)
    resumed = [l for l in final if re.fullmatch(re.escape(PREFIX) + re.escape(cut_file)
                                                + r': resuming at \d+ of %d bytes' % size, l)]
    eq(len(resumed), 1, 'resume lines of %s on the final screen: %r' % (cut_file, final))
    done = {}
    for i, t in msgs:
        m = re.fullmatch(re.escape(PREFIX) + r'(\S+): uploaded %d\.0 MiB in [\d.]+s \(%s/s\)' % (SIZE_MIB, SIZE), t)
        if m:
            done[m.group(1)] = i
    eq(sorted(done), sorted(args), 'files with an "uploaded" line')
    eq(len(final), 5, 'lines on the final screen (retry, resume, 2 uploaded, summary): %r' % final)
    retry_at = [i for i, t in msgs if t == retries[0]][0]
    check(retry_at < done[cut_file] and any(ei > retry_at for ei, _ in frames),
          'the retry line was not printed mid-run, above live lines: %r' % final)

    # the frames: one live line per active file, each well-formed
    rx = FULL_RX if whole_lines else NARROW_RX
    seen = {a: [] for a in args}          # file -> [(frame no, event index, pct, match)]
    both = 0
    for k, (ei, lines) in enumerate(frames):
        check(1 <= len(lines) <= 2, 'a redraw of %d live lines for 2 files: %r' % (len(lines), lines))
        names = []
        for l in lines:
            m = rx.fullmatch(l)
            check(m is not None, 'live line not "NAME %sSENT / TOTAL  PCT%%  RATE/s  ETA T": %r'
                  % ('[BAR] ' if rx is FULL_RX else '', l))
            a = _which(m.group('name'), args)
            names.append(a)
            pct, sent, total = int(m.group('pct')), _bytes(m.group('sent')), _bytes(m.group('total'))
            eq(total, float(size), 'total size in %r' % l)
            check(0 <= pct <= 100 and abs(sent / total * 100 - pct) <= 2.5,
                  'percent %d%% does not match %s / %s in %r' % (pct, m.group('sent'), m.group('total'), l))
            if rx is FULL_RX:
                bar = m.group('bar')
                check(abs(bar.count('#') / len(bar) - pct / 100) <= 1 / len(bar) + 0.011
                      and re.fullmatch('#*-*', bar), 'bar %r does not show %d%%' % (bar, pct))
            seen[a].append((k, ei, pct, m))
        eq(len(set(names)), len(names), 'files named by the live lines of one redraw: %r' % lines)
        both += len(names) == 2
    check(both >= 3, 'only %d redraws showed both running files' % both)
    for a in args:
        ks = [k for k, _, _, _ in seen[a]]
        check(ks, 'no live line for %s' % a)
        # from its first to its last live line, the file is in every redraw, and none after its
        # "uploaded" line
        eq(ks, list(range(ks[0], ks[-1] + 1)), 'redraws showing %s (a gap: a running file not shown)' % a)
        check(seen[a][-1][1] < done[a], 'a live line for %s after its "uploaded" line' % a)
        # percent never goes back, except when a failure sends the display back to what the
        # server holds (the retry line follows the redraw that shows it at the latest)
        rl = [i for i, t in msgs if t.startswith(PREFIX + a + ': ') and 'retrying in' in t]
        for j in range(1, len(seen[a])):
            x, y = seen[a][j - 1], seen[a][j]
            if y[2] < x[2]:
                nxt = seen[a][j + 1][1] if j + 1 < len(seen[a]) else len(scr.events)
                check(any(x[1] < i < nxt for i in rl),
                      '%s: percent went from %d%% back to %d%% without a failure: %r then %r'
                      % (a, x[2], y[2], x[3].group(0), y[3].group(0)))
    if rx is FULL_RX:
        timed = [m for a in args for _, _, _, m in seen[a] if m.group('eta') and m.group('eta') != '--:--'
                 and _bytes(m.group('rate')) > 0]
        check(len(timed) >= 3, 'fewer than 3 live lines with a rate and an ETA')
    return scr


LONG = 'terminal-progress-with-a-rather-long-file-name-%s.bin'


def test_terminal_progress():
    # 100 columns: the whole line fits, with a bar; a long name is shortened with "...".  The
    # short name's live line is longer than its messages, so a message written over it must
    # clear what the line left.
    _terminal_run(100, ['short.bin', LONG % 'two'], True)


def test_terminal_narrow():
    # 60 columns: a shortened name (30) and the sizes, percent, rate and ETA (36 at least) make
    # more than 59, so every live line has to be cut to fit
    _terminal_run(60, [LONG % 'one', LONG % 'two'], False)


def test_terminal_utf8_names():
    # names of two-byte characters: shortening a name and cutting a line to the width count
    # bytes, and must never split a character (the screen must stay valid UTF-8)
    _terminal_run(60, ['\u00e9' * 21 + '-one.bin', '\u00fc' * 21 + '-two.bin'], False)
