// Helpers for nginx.test.mjs: Debian's nginx started from a temp prefix with one of the
// configurations in docs/ (the very file, included by a minimal http{}/events{} harness),
// and tests/tools/faultproxy.py run as a command. Both are tied to a lib.mjs scope and
// killed by PID when it closes (nginx by its process group: master and workers). Not a
// test file itself.
//
// Env: NGINX (default /usr/sbin/nginx).

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { REPO, tempDir } from './lib.mjs';

const NGINX = process.env.NGINX || '/usr/sbin/nginx';
const FAULTPROXY = path.join(REPO, 'tests', 'tools', 'faultproxy.py');

// Process groups (nginx) and PIDs (faultproxy) still alive when this test process exits.
const liveGroups = new Set();
const livePids = new Set();
process.on('exit', () => {
  for (const pgid of liveGroups) {
    try { process.kill(-pgid, 'SIGKILL'); } catch { /* already gone */ }
  }
  for (const pid of livePids) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function waitExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => { clearTimeout(timer); resolve(true); });
  });
}

function groupAlive(pgid) {
  try { process.kill(-pgid, 0); return true; } catch { return false; }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => resolve(false));
  });
}

// ------------------------------------------------------------------ nginx --

// The doc file with the values of its "# @name" marker lines replaced: subs maps a marker
// name to the directive's new value (e.g. { listen: '127.0.0.1:8123' }). Every marker named
// in subs must occur, and nothing else in the file changes.
export function substitute(text, subs) {
  const seen = new Set();
  const out = text.replace(/^(\s*)([a-z_]+)(\s+)[^;#\n]*;(\s*#\s*@([a-z-]+)\b.*)$/gm,
    (line, indent, directive, space, comment, name) => {
      if (!(name in subs)) return line;
      seen.add(name);
      return `${indent}${directive}${space}${subs[name]};${comment}`;
    });
  for (const name of Object.keys(subs)) {
    if (!seen.has(name)) throw new Error(`no "# @${name}" marker line in the nginx configuration`);
  }
  return out;
}

// Starts nginx with docs/<docName> behind 127.0.0.1:<free port>, proxying to `upstream`
// (host:port of resumed). Resolves { url, port, prefix, conf, errorLog(), accessLog() }.
export async function startNginx(scope, { docName, upstream, subs = {} }) {
  if (!fs.existsSync(NGINX)) {
    throw new Error(`nginx not found at ${NGINX} (apt-get install nginx, or set NGINX)`);
  }
  const prefix = tempDir('nginx');
  scope.defer(() => fs.rmSync(prefix, { recursive: true, force: true }));
  // Workers run as nobody when the master is root: they must reach the temp dirs.
  fs.chmodSync(prefix, 0o755);
  const doc = fs.readFileSync(path.join(REPO, 'docs', docName), 'utf8');

  let lastError = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const site = path.join(prefix, docName);
    fs.writeFileSync(site, substitute(doc, { listen: `127.0.0.1:${port}`, upstream, ...subs }));
    const conf = path.join(prefix, 'harness.conf');
    fs.writeFileSync(conf, [
      '# Test harness: everything but the included docs/ file.',
      'worker_processes 1;',
      'events { worker_connections 256; }',
      'http {',
      // Chromium silently sends a request again when a reused keep-alive connection fails
      // before any response byte: the cut would then never reach uploader.js, whose resume
      // is what the tests are about. No keep-alive: every request has its own connection.
      '    keepalive_timeout 0;',
      '    log_format rl \'$remote_addr:$remote_port "$request" $status request_length=$request_length \'',
      '                  \'upstream=$upstream_addr upstream_status=$upstream_status rt=$request_time\';',
      `    access_log ${prefix}/access.log rl;`,
      `    client_body_temp_path ${prefix}/client_body;`,
      `    proxy_temp_path ${prefix}/proxy;`,
      `    fastcgi_temp_path ${prefix}/fastcgi;`,
      `    uwsgi_temp_path ${prefix}/uwsgi;`,
      `    scgi_temp_path ${prefix}/scgi;`,
      `    include ${site};`,
      '}',
      '',
    ].join('\n'));
    const globals = `daemon off; master_process on; pid ${prefix}/nginx.pid; error_log ${prefix}/error.log info;`;
    const args = ['-p', `${prefix}/`, '-c', conf, '-g', globals];

    const check = spawnSync(NGINX, ['-t', '-q', ...args], { encoding: 'utf8', timeout: 20_000 });
    if (check.status !== 0) {
      throw new Error(`nginx -t rejected the configuration (docs/${docName}):\n${check.stderr}${check.stdout}\n` +
        `--- ${conf} ---\n${fs.readFileSync(conf, 'utf8')}\n--- ${site} ---\n${fs.readFileSync(site, 'utf8')}`);
    }

    const child = spawn(NGINX, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    const nginx = {
      child, pid: child.pid, port, url: `http://127.0.0.1:${port}`, prefix, conf, site, stderr: '',
      errorLog: () => readOr(path.join(prefix, 'error.log')),
      accessLog: () => readOr(path.join(prefix, 'access.log')),
    };
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => { if (nginx.stderr.length < 100_000) nginx.stderr += d; });
    if (child.pid) liveGroups.add(child.pid);
    const stop = async () => {
      if (!child.pid) return;
      // SIGTERM: fast shutdown of the master and its workers; then the whole group by its id.
      if (child.exitCode === null && child.signalCode === null) {
        try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
        if (!(await waitExit(child, 5000))) {
          try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
          await waitExit(child, 5000);
        }
      }
      for (let i = 0; i < 50 && groupAlive(child.pid); i++) {
        if (i === 10) { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }
        await sleep(100);
      }
      if (!groupAlive(child.pid)) liveGroups.delete(child.pid);
    };

    // Ready when the port accepts connections (nginx prints nothing when it starts well).
    const deadline = Date.now() + 15_000;
    let ready = false;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      if (await canConnect(port)) { ready = true; break; }
      await sleep(50);
    }
    if (ready && child.exitCode === null) {
      scope.defer(stop);
      return nginx;
    }
    await stop();
    lastError = new Error(`nginx did not start on 127.0.0.1:${port} (exit ${child.exitCode}, signal ${child.signalCode}):\n` +
      `${nginx.stderr}\n${nginx.errorLog()}`);
    if (!/Address already in use/.test(lastError.message)) break; // only a lost port race is retried
  }
  throw lastError;
}

function readOr(file) {
  try { return fs.readFileSync(file, 'utf8'); } catch { return ''; }
}

// ------------------------------------------------------------- faultproxy --

// tests/tools/faultproxy.py --upstream <port>, driven through its standard input.
// Resolves { url, port, command(line), stats() } where stats() resolves
// { cuts, connections, bytes_up, bytes_down }.
export async function startFaultProxy(scope, upstreamPort, extraArgs = []) {
  const child = spawn('python3', [FAULTPROXY, '--upstream', String(upstreamPort), ...extraArgs],
    { stdio: ['pipe', 'pipe', 'pipe'] });
  const proxy = { child, pid: child.pid, port: null, url: null, stderr: '', exited: false };
  if (child.pid) livePids.add(child.pid);
  child.on('exit', () => { proxy.exited = true; livePids.delete(child.pid); });
  child.stdin.on('error', () => { /* it went away; reported through exited */ });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { if (proxy.stderr.length < 100_000) proxy.stderr += d; });
  scope.defer(async () => {
    if (proxy.exited) return;
    try { child.stdin.end('quit\n'); } catch { /* closed */ }
    if (!(await waitExit(child, 5000))) {
      try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
      if (!(await waitExit(child, 5000))) {
        try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
        await waitExit(child, 5000);
      }
    }
  });

  // stdout: the listening line, then one line per `stats` command, in order.
  const waiters = [];
  let buffered = '';
  let onListening;
  let listenTimer;
  const listening = new Promise((resolve, reject) => {
    onListening = resolve;
    listenTimer = setTimeout(() => reject(new Error(`faultproxy did not start within 10 s:\n${proxy.stderr}`)), 10_000);
    child.once('exit', (code, signal) => reject(new Error(`faultproxy exited (code ${code}, signal ${signal}):\n${proxy.stderr}`)));
    child.once('error', reject);
  });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    buffered += d;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const m = /^faultproxy: listening on 127\.0\.0\.1:(\d+)$/.exec(line);
      if (m) { onListening(Number(m[1])); continue; }
      const s = /^cuts=(\d+) connections=(\d+) bytes_up=(\d+) bytes_down=(\d+)$/.exec(line);
      if (s && waiters.length) {
        waiters.shift()({ cuts: +s[1], connections: +s[2], bytes_up: +s[3], bytes_down: +s[4] });
      }
    }
  });
  try {
    proxy.port = await listening;
  } finally {
    clearTimeout(listenTimer);
  }
  proxy.url = `http://127.0.0.1:${proxy.port}`;
  proxy.command = (line) => {
    if (proxy.exited) throw new Error(`faultproxy has exited:\n${proxy.stderr}`);
    child.stdin.write(`${line}\n`);
  };
  proxy.stats = () => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('faultproxy did not answer stats within 10 s')), 10_000);
    waiters.push((v) => { clearTimeout(timer); resolve(v); });
    proxy.command('stats');
  });
  return proxy;
}
