"""The manual (docs/resumed-upload.1), --help and README.md's section on the client agree: the
same long and short options, paired the same way, with the same defaults; the exit statuses;
the synopsis; the version; and the manual renders with groff without a warning.  The parsers work on text, so a drifted
copy of a document fails the same checks (see _check_* below)."""

import os
import re
import shlex
import subprocess

from clientlib import REPO, check, eq, expect_rc, run_client

MANUAL = os.path.join(REPO, 'docs', 'resumed-upload.1')
README = os.path.join(REPO, 'README.md')
LONG_RX = re.compile(r'(?<![\w-])--[a-z][a-z0-9-]*')
SHORT_RX = re.compile(r'(?<![\w-])-[A-Za-z](?![\w-])')


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def _help():
    c = run_client(['--help'])
    expect_rc(c, 0, '--help')
    return c.out


# ---------------------------------------------------------------------------
# --help
# ---------------------------------------------------------------------------

def help_options(text):
    """{long option: its short option or None} of the option lines of --help
    ("  -p, --protocol P  ..." / "      --checksum ALG  ...")."""
    opts = {}
    for line in text.split('\n'):
        m = re.match(r'\s+(-[A-Za-z](?![\w-]))?(?:,\s*)?(--[a-z][a-z0-9-]*)?(?=\s|$)', line)
        if not m or not (m.group(1) or m.group(2)):
            continue
        check(m.group(2), '--help: a short option without a long one: %r' % line)
        check(m.group(2) not in opts, '--help lists %s twice' % m.group(2))
        opts[m.group(2)] = m.group(1)
    return opts


def help_exit_statuses(text):
    m = re.search(r'^Exit status:(.*(?:\n[ \t]+\S.*)*)', text, re.M)
    check(m is not None, '--help has no "Exit status:" line: %r' % text)
    return sorted(set(int(n) for n in re.findall(r'(?<![\w.])(\d+) ', m.group(1))))


# ---------------------------------------------------------------------------
# the manual
# ---------------------------------------------------------------------------

def roff_text(s):
    """A roff line as text: font escapes dropped, \\- as -, \\e as \\, quotes of macro arguments
    dropped."""
    s = re.sub(r'\\f(?:\[[^\]]*\]|\(..|.)', '', s)
    s = s.replace('\\-', '-').replace('\\e', '\\').replace('\\&', '').replace('\\ ', ' ')
    if s.startswith('.'):
        s = re.sub(r'^\.\S+\s*', '', s).replace('"', '')
    return s


def man_sections(text):
    """{section name: [roff lines]} (comments left out)."""
    out, cur = {}, None
    for line in text.split('\n'):
        if line.startswith('.\\"') or line.startswith("'\\\""):
            continue
        m = re.match(r'\.SH\s+"?([^"]*)"?\s*$', line)
        if m:
            cur = m.group(1).strip()
            check(cur not in out, 'the manual has two %s sections' % cur)
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return out


def tp_tags(lines):
    """The tag lines of the .TP paragraphs (the line after each .TP)."""
    return [lines[i + 1] for i, l in enumerate(lines[:-1]) if re.match(r'\.TP\b', l)]


def man_options(text):
    """{long option: its short option or None} of the tags of the OPTIONS section."""
    secs = man_sections(text)
    check('OPTIONS' in secs, 'the manual has no OPTIONS section')
    opts = {}
    for tag in tp_tags(secs['OPTIONS']):
        t = roff_text(tag)
        longs, shorts = LONG_RX.findall(t), SHORT_RX.findall(t)
        check(len(longs) == 1 and len(shorts) <= 1, 'manual OPTIONS tag %r (as text %r) does not name one long '
              'option and at most one short one' % (tag, t))
        check(longs[0] not in opts, 'the manual describes %s twice' % longs[0])
        opts[longs[0]] = shorts[0] if shorts else None
    return opts


def man_option_bodies(text):
    """{long option: the text of its OPTIONS paragraph (tag line excluded)}."""
    lines = man_sections(text).get('OPTIONS', [])
    out, cur = {}, None
    for i, l in enumerate(lines):
        if re.match(r'\.TP\b', l):
            cur = None
        elif i > 0 and re.match(r'\.TP\b', lines[i - 1]):
            longs = LONG_RX.findall(roff_text(l))
            cur = longs[0] if longs else None
            if cur:
                out[cur] = ''
        elif cur:
            out[cur] += ' ' + roff_text(l)
    return out


def help_defaults(text):
    """{long option: the value of "(default V)" on its --help line}."""
    out = {}
    for line in text.split('\n'):
        m = re.match(r'\s+(?:-[A-Za-z], )?\s*(--[a-z][a-z0-9-]*).*\(default ([^)\s]+)\)', line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def man_long_mentions(text):
    """Every long option named anywhere in the manual."""
    return set(LONG_RX.findall(roff_text_all(text)))


def roff_text_all(text):
    return '\n'.join(roff_text(l) for l in text.split('\n') if not l.startswith('.\\"'))


def man_example_shorts(text):
    """Short options in the EXAMPLES section's resumed-upload command lines."""
    out = set()
    for line in man_sections(text).get('EXAMPLES', []):
        for seg in roff_text(line).split('|'):
            if seg.strip().startswith('resumed-upload'):
                out.update(SHORT_RX.findall(seg))
    return out


def man_exit_statuses(text):
    secs = man_sections(text)
    check('EXIT STATUS' in secs, 'the manual has no EXIT STATUS section')
    out = []
    for tag in tp_tags(secs['EXIT STATUS']):
        t = re.sub(r'\s+', '', roff_text(tag))
        check(re.fullmatch(r'\d+|128\+N', t), 'manual EXIT STATUS tag is not a number nor 128+N: %r' % tag)
        out.append(int(t) if t.isdigit() else t)
    return out


def man_th_version(text):
    """The version in the .TH line's source field ("resumed 0.1"), or None."""
    for line in text.split('\n'):
        if line.startswith('.TH'):
            fields = shlex.split(line)
            if len(fields) < 5:
                return None
            m = re.search(r'(?<![\w.])(\d+(?:\.\d+)+)(?![\w.])', fields[4])
            return m.group(1) if m else None
    return None


def man_synopsis(text):
    lines = man_sections(text).get('SYNOPSIS', [])
    return ' '.join(roff_text(l).strip() for l in lines if l.strip() and not re.match(r'\.(PP|br|sp)\b', l))


def groff_warnings(path):
    try:
        p = subprocess.run(['groff', '-man', '-Tutf8', '-ww', '-z', path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
    except FileNotFoundError:
        raise AssertionError('groff is not installed (Debian: groff-base; scripts/install-deps.sh test)')
    return p.returncode, p.stderr.decode('utf-8', 'replace')


# ---------------------------------------------------------------------------
# README.md
# ---------------------------------------------------------------------------

def readme_client_options(text):
    """(long, short) options named in README.md's "## The command-line client" section: in its
    code blocks' resumed-upload command lines, and in `inline code` that begins with an option
    (not `curl -T` or `man -l ...`)."""
    m = re.search(r'^## The command-line client.*?$(.*?)(?=^## |\Z)', text, re.M | re.S)
    check(m is not None, 'README.md has no "## The command-line client" section')
    sec = m.group(1)
    longs, shorts = set(), set()
    blocks = re.findall(r'^```[^\n]*\n(.*?)^```', sec, re.M | re.S)
    for b in blocks:
        for line in b.split('\n'):
            for seg in line.split('#')[0].split('|'):
                if seg.strip().startswith('resumed-upload'):
                    longs.update(LONG_RX.findall(seg))
                    shorts.update(SHORT_RX.findall(seg))
    prose = re.sub(r'^```[^\n]*\n.*?^```', '', sec, flags=re.M | re.S)
    for span in re.findall(r'`([^`\n]+)`', prose):
        if re.match(r'--?[A-Za-z]', span):
            first = span.split()[0]
            (longs if first.startswith('--') else shorts).add(first)
    return longs, shorts


# ---------------------------------------------------------------------------
# the checks (on text, so that a drifted copy can be tried)
# ---------------------------------------------------------------------------

def _check_options(man, hlp):
    h, m = help_options(hlp), man_options(man)
    check(len(h) >= 10, 'parsed only %d options from --help: %r' % (len(h), h))
    eq(sorted(set(m) - set(h)), [], 'long options in the manual\'s OPTIONS but not in --help')
    eq(sorted(set(h) - set(m)), [], 'long options in --help but not in the manual\'s OPTIONS')
    for o in sorted(h):
        eq(m[o], h[o], 'short option of %s in the manual (--help: %r)' % (o, h[o]))
    bodies = man_option_bodies(man)
    defaults = help_defaults(hlp)
    check(len(defaults) >= 5, 'parsed only %d "(default V)" from --help: %r' % (len(defaults), defaults))
    for o, v in sorted(defaults.items()):
        check(re.search(r'\bdefault:? %s(?![\w.])' % re.escape(v), bodies.get(o, '')),
              'the manual\'s paragraph on %s does not give its default %s (--help does): %r'
              % (o, v, bodies.get(o)))
    eq(sorted(man_long_mentions(man) - set(h)), [], 'options named in the manual that --help does not know')
    shorts = set(s for s in h.values() if s)
    eq(sorted(man_example_shorts(man) - shorts), [], 'short options in the manual\'s EXAMPLES unknown to --help')


def _check_exit_statuses(man, hlp):
    # --help sums them up: what it names, the manual describes
    ms, hs = man_exit_statuses(man), help_exit_statuses(hlp)
    check({0, 1, 2} <= set(ms), 'exit statuses 0, 1, 2 not all in the manual\'s EXIT STATUS: %r' % ms)
    eq(sorted(set(hs) - set(ms)), [], 'exit statuses --help names that the manual\'s EXIT STATUS does not')


def _check_synopsis(man, hlp):
    m = re.search(r'^Usage: (.*)$', hlp, re.M)
    check(m is not None, '--help has no "Usage:" line')
    eq(man_synopsis(man), m.group(1).strip(), 'the manual\'s SYNOPSIS vs the --help usage line')


def _check_readme(readme, hlp):
    h = help_options(hlp)
    longs, shorts = readme_client_options(readme)
    check(len(longs) >= 10, 'found only %d options in README.md\'s client section: %r' % (len(longs), longs))
    eq(sorted(longs - set(h)), [], 'long options in README.md\'s client section unknown to --help')
    eq(sorted(shorts - set(s for s in h.values() if s)), [],
       'short options in README.md\'s client section unknown to --help')


def _check_version(man, version_out):
    v = man_th_version(man)
    if v is None:
        return False          # the .TH line carries no version: nothing to compare
    m = re.fullmatch(r'resumed-upload (\S+)\n?', version_out)
    check(m is not None, '--version output is not "resumed-upload VERSION": %r' % version_out)
    eq(m.group(1), v, 'version of --version vs the manual\'s .TH line')
    return True


def _check_renders(path):
    rc, err = groff_warnings(path)
    eq((rc, err), (0, ''), 'groff -man -Tutf8 -ww -z %s: (exit status, warnings)' % path)


# ---------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------

def test_manual_options_match_help():
    _check_options(_read(MANUAL), _help())


def test_manual_exit_statuses_and_synopsis():
    man, hlp = _read(MANUAL), _help()
    _check_exit_statuses(man, hlp)
    _check_synopsis(man, hlp)


def test_manual_version():
    c = run_client(['--version'])
    expect_rc(c, 0, '--version')
    _check_version(_read(MANUAL), c.out)


def test_manual_renders_without_warnings():
    _check_renders(MANUAL)


def test_readme_options_exist():
    _check_readme(_read(README), _help())


def test_help_options_are_accepted():
    # --help does not list an option the program would call unknown (each alone: a usage error
    # for the missing FILE/URL or value, never "unknown option"); the detector itself is checked
    # on an option that does not exist
    def unknown(opt):
        c = run_client([opt])
        return "unknown option '%s'" % opt in c.err
    check(unknown('--no-such-option'), 'the client no longer says "unknown option" for --no-such-option')
    check(unknown('-Z'), 'the client no longer says "unknown option" for -Z')
    h = help_options(_help())
    for o in sorted(h):
        if o in ('--help', '--version'):
            continue
        for name in (o, h[o]):
            if name:
                check(not unknown(name), '--help lists %s but the client calls it an unknown option' % name)
