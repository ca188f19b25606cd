// Helpers shared by the browser tests (article-client.test.mjs, uppy.test.mjs,
// uploader.test.mjs):
// build/resumed started per test and killed by PID, headless Chromium started
// once per file and killed by process group, cleanup scopes, and the server's
// log and the page's console appended to a failing test's error. Not a test
// file itself (node --test only picks up *.test.mjs and the like).
//
// Env: RESUMED_BIN (default <repo>/build/resumed), CHROMIUM (default
//      /usr/bin/chromium), RESUMED_SEED (the article's text, for articleFiles).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
const BIN = process.env.RESUMED_BIN
  ? path.resolve(process.env.RESUMED_BIN)
  : path.join(REPO, 'build', 'resumed');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const MiB = 1024 * 1024;

export const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `resumed-browser-${prefix}-`));
}

// A file of size random bytes named name in a fresh temp dir (removed when
// the scope closes): { file (its path), data, size, sha }.
export function writeSource(scope, name, size) {
  const dir = tempDir('src');
  scope.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  const data = randomBytes(size);
  fs.writeFileSync(file, data);
  return { file, data, size, sha: sha256(data) };
}

// The data files under DIR/uploads (everything but *.meta and temp files).
export function dataFiles(dir) {
  const up = path.join(dir, 'uploads');
  if (!fs.existsSync(up)) return [];
  return fs.readdirSync(up)
    .filter((name) => !name.endsWith('.meta') && !name.startsWith('.'))
    .map((name) => path.join(up, name));
}

// ------------------------------------------------------- the article code --

// The article's code is not part of the repository: it is extracted at test
// time from the seed text that lives beside the checkout
// (<repo>/../shared/seed/000_62fda8adf1aeaf24.txt; env RESUMED_SEED overrides).
export const SEED = process.env.RESUMED_SEED
  ? path.resolve(process.env.RESUMED_SEED)
  : path.join(path.dirname(REPO), 'shared', 'seed', '000_62fda8adf1aeaf24.txt');

// The seed text has three top-level fenced code blocks, in order: server.js,
// uploader.js, index.html (the indented ```javascript snippets in its
// numbered list are excerpts, not files). Returns { uploaderJs, indexHtml }.
export function articleFiles() {
  if (!fs.existsSync(SEED)) {
    throw new Error(
      `the article's seed text is missing: ${SEED}\n` +
      'It is expected beside the repository at ../shared/seed/ (set RESUMED_SEED to override).');
  }
  const lines = fs.readFileSync(SEED, 'utf8').split(/\r?\n/);
  const blocks = [];
  let open = null;
  for (const line of lines) {
    if (open) {
      if (line.trim() === '```') { blocks.push(open); open = null; } else open.lines.push(line);
    } else {
      const m = /^(\s*)```(.*)$/.exec(line);
      if (m) open = { topLevel: m[1] === '' && m[2].trim() === '', lines: [] };
    }
  }
  const files = blocks.filter((b) => b.topLevel).map((b) => `${b.lines.join('\n')}\n`);
  const problem =
    files.length !== 3 ? `found ${files.length} top-level fenced code blocks, expected 3`
    : !files[1].includes('class Uploader') ? 'the 2nd code block is not uploader.js (no "class Uploader")'
    : !files[2].includes('<script src="uploader.js">') ? 'the 3rd code block is not index.html'
    : null;
  if (problem) throw new Error(`cannot extract the article's client from ${SEED}: ${problem}`);
  return { uploaderJs: files[1], indexHtml: files[2] };
}

// Processes still alive when this test process exits (e.g. a hook threw
// before the cleanups ran) are killed by PID; Chromium by its process group.
const livePids = new Set();
process.on('exit', () => {
  for (const pid of livePids) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

// A test's resources, released in reverse order whatever happens.
class Scope {
  #cleanups = [];
  defer(fn) { this.#cleanups.push(fn); }
  async close() {
    const errors = [];
    for (const fn of this.#cleanups.reverse()) {
      try { await fn(); } catch (err) { errors.push(err); }
    }
    this.#cleanups = [];
    if (errors.length) throw errors[0];
  }
}

// Runs body(scope); on failure appends resumed's stderr (its request log) and
// the page's console to the error, then releases everything. A server that
// died during the test, or a sanitizer report in its stderr (ASan build,
// RESUMED_BIN=build/asan/resumed), fails the test too.
export async function scenario(body) {
  const scope = new Scope();
  const diag = { server: null, earlier: [], console: [] };
  scope.diag = diag;
  try {
    await body(scope);
    for (const server of [...diag.earlier, diag.server].filter(Boolean)) {
      assert.ok(!server.exited || server.killed, 'resumed exited during the test');
    }
    await scope.close();
    const logs = [...diag.earlier, diag.server].filter(Boolean).map((s) => s.log).join('\n');
    const report = /ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:/.exec(logs);
    assert.ok(!report, `sanitizer report in resumed's stderr: ${report && report[0]}`);
  } catch (err) {
    const extra = [];
    for (const old of diag.earlier) {
      extra.push(`--- an earlier server (${old.exited ? 'exited' : 'still running'}); args: ${old.args.join(' ')}; stderr (last 20 lines) ---`,
        old.log.split('\n').slice(-21).join('\n'));
    }
    if (diag.server) {
      const state = diag.server.exited
        ? `server EXITED (code ${diag.server.child.exitCode}, signal ${diag.server.child.signalCode})`
        : 'server still running';
      extra.push(`--- ${state}; args: ${diag.server.args.join(' ')}; stderr (last 40 lines) ---`,
        diag.server.log.split('\n').slice(-41).join('\n'));
    }
    if (diag.console.length) extra.push('--- page console ---', diag.console.slice(-30).join('\n'));
    if (extra.length && err && typeof err.message === 'string') err.message += `\n${extra.join('\n')}`;
    throw err;
  } finally {
    await scope.close();
  }
}

function waitExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => { clearTimeout(timer); resolve(true); });
  });
}

// Resolves when promise settles or after ms, whichever is first (no timer left behind).
async function withTimeout(promise, ms) {
  let timer;
  try {
    await Promise.race([promise, new Promise((r) => { timer = setTimeout(r, ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

// ----------------------------------------------------------------- server --

// Starts build/resumed on listen (default 127.0.0.1:0: a free port) with --dir
// dir (default: a fresh temp dir, removed when the scope closes); resolves
// once it printed its listening line. Killed by PID (SIGTERM, then SIGKILL)
// when the scope closes. server.log (also server.stderr()) is its stderr so
// far: the request log. To restart a server where it was, pass the same dir
// and listen: new URL(server.url).host.
export async function startServer(scope, { dir = null, web = null, cwd = REPO, extraArgs = [], listen = '127.0.0.1:0' } = {}) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`resumed binary not found at ${BIN} (run make, or set RESUMED_BIN)`);
  }
  if (!dir) {
    dir = tempDir('data');
    scope.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  }
  const args = ['--listen', listen, '--dir', dir];
  if (web) args.push('--web', web);
  args.push(...extraArgs);
  const child = spawn(BIN, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  const server = {
    child, pid: child.pid, args, dir, url: null, exited: false, log: '',
    stderr() { return this.log; },
  };
  if (scope.diag.server) scope.diag.earlier.push(scope.diag.server);
  scope.diag.server = server;
  if (server.pid) livePids.add(server.pid);
  child.on('exit', () => { server.exited = true; livePids.delete(server.pid); });
  scope.defer(async () => {
    if (server.pid && !server.exited) {
      process.kill(server.pid, 'SIGTERM');
      if (!(await waitExit(child, 5000))) {
        process.kill(server.pid, 'SIGKILL');
        await waitExit(child, 5000);
      }
    }
  });
  // Keep draining stderr for the whole life of the process.
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => { server.log += chunk; });

  server.url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`resumed did not print its listening line within 10 s; stderr:\n${server.log}`));
    }, 10_000);
    const onData = () => {
      const m = /^resumed: listening on (http:\/\/127\.0\.0\.1:\d+)\s*$/m.exec(server.log);
      if (m) { cleanup(); resolve(m[1]); }
    };
    const onExit = (code, signal) => {
      cleanup();
      reject(new Error(`resumed exited (code ${code}, signal ${signal}) before listening; args ${args.join(' ')}; stderr:\n${server.log}`));
    };
    const onError = (err) => { cleanup(); reject(err); };
    function cleanup() {
      clearTimeout(timer);
      child.stderr.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    }
    child.stderr.on('data', onData);
    child.on('exit', onExit);
    child.on('error', onError);
  });
  return server;
}

// Sends signal (default SIGKILL: a crash, nothing flushed or closed) to a
// server started by startServer, by its PID, and resolves once it exited.
export async function killServer(server, signal = 'SIGKILL') {
  if (server.exited) return;
  server.killed = true; // on purpose: scenario() does not count it as a crash
  process.kill(server.pid, signal);
  if (!(await waitExit(server.child, 5000))) throw new Error(`resumed (pid ${server.pid}) did not exit on ${signal}`);
}

// ---------------------------------------------------------------- browser --

let browser = null;
let chrome = null; // { child, pid, profile, exited, log }

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// Starts Chromium ourselves (fresh --user-data-dir, own process group) and
// connects playwright-core to it over CDP; no browser is ever downloaded.
// For before(); closeBrowser is for after().
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  }
  const profile = tempDir('chromium-profile');
  const child = spawn(CHROMIUM, [
    ...CHROMIUM_ARGS, `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  chrome = { child, pid: child.pid, profile, exited: false, log: '' };
  if (child.pid) livePids.add(-child.pid);
  child.on('exit', () => { chrome.exited = true; });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => { if (chrome.log.length < 100_000) chrome.log += chunk; });
  const endpoint = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`Chromium did not start within 30 s:\n${chrome.log}`)), 30_000);
    const onData = () => {
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(chrome.log);
      if (m) done(null, m[1]);
    };
    const onExit = (code, signal) => done(new Error(`Chromium exited (code ${code}, signal ${signal}):\n${chrome.log}`));
    function done(err, value) {
      clearTimeout(timer);
      child.stderr.off('data', onData);
      child.off('exit', onExit);
      child.off('error', done);
      if (err) reject(err); else resolve(value);
    }
    child.stderr.on('data', onData);
    child.on('exit', onExit);
    child.on('error', done);
  });
  browser = await chromium.connectOverCDP(endpoint);
}

export async function closeBrowser() {
  try {
    if (browser) await withTimeout(browser.close(), 10_000);
  } finally {
    browser = null;
    if (chrome) {
      const { child, pid, profile } = chrome;
      // Chromium leads its own process group (detached): end the group by its id.
      if (!chrome.exited) {
        try { process.kill(-pid, 'SIGTERM'); } catch { /* already gone */ }
        if (!(await waitExit(child, 5000))) {
          try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ }
          await waitExit(child, 5000);
        }
      }
      try { process.kill(-pid, 'SIGKILL'); } catch { /* group already empty */ }
      livePids.delete(-pid);
      fs.rmSync(profile, { recursive: true, force: true });
      chrome = null;
    }
  }
}

// A page in a fresh browser context (own storage and caches; closed with the
// scope) whose console and errors go to the scope's diagnostics, with a CDP
// session that has the Network domain on. throttleUpload(bytesPerSecond) caps
// the upload speed (-1: no cap): Chromium's network emulation paces request
// bodies, so upload progress arrives in small steps and a stop or pause can
// land inside a request body. contextOptions go to browser.newContext (e.g.
// { viewport: { width: 375, height: 700 } }).
export async function openPage(scope, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  scope.defer(() => context.close());
  const page = await context.newPage();
  page.on('console', (msg) => scope.diag.console.push(`[${msg.type()}] ${msg.text()}`));
  page.on('pageerror', (err) => scope.diag.console.push(`[pageerror] ${err.message}`));
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const throttleUpload = (bytesPerSecond) => cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond,
  });
  return { context, page, cdp, throttleUpload };
}

// Chooses local files (a path or an array of paths) in an <input type=file> through CDP:
// playwright-core refuses files over 50 MB for a CDP-connected browser, and since Chromium
// runs on this machine a path is all it needs. Chromium fires the input's input and change
// events.
export async function setInputFiles(cdp, selector, files) {
  const { result } = await cdp.send('Runtime.evaluate', {
    expression: `document.querySelector(${JSON.stringify(selector)})`,
  });
  assert.ok(result.objectId, `no element matches ${selector}`);
  await cdp.send('DOM.enable');
  await cdp.send('DOM.setFileInputFiles', {
    files: Array.isArray(files) ? files : [files], objectId: result.objectId,
  });
  await cdp.send('Runtime.releaseObject', { objectId: result.objectId });
}
