// Helpers shared by the interop tests (tus-js-client.test.mjs, tus-js-client-more.test.mjs):
// build/resumed started per test and always killed by PID, the tus-js-client module,
// a request recorder, SHA-256 of stored uploads. Not a test file itself (node --test
// only picks up *.test.mjs and the like).
//
// Env: RESUMED_BIN (default <repo>/build/resumed; a relative path is taken from the repo).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import * as tus from 'tus-js-client';

const tusMod = tus.default && tus.default.Upload ? tus.default : tus;
export const { Upload, FileUrlStorage } = tusMod;

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const BIN = process.env.RESUMED_BIN
  ? path.resolve(REPO, process.env.RESUMED_BIN)
  : path.join(REPO, 'build', 'resumed');

export const MiB = 1024 * 1024;
export const TEST_TIMEOUT = 60_000;
export const BODY_TIMEOUT = 45_000;
const SANITIZER = /ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:/;

export const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
export const fileSha = (file) => sha256(fs.readFileSync(file));

// ----------------------------------------------------------------- server --

// Servers still running when the process exits (e.g. the runner was interrupted) are killed by PID.
const live = new Set();
process.on('exit', () => {
  for (const pid of live) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

// Starts resumed on 127.0.0.1:0 with a fresh temp --dir; resolves once it printed
// "resumed: listening on http://127.0.0.1:PORT". srv.tmp is a scratch dir removed with it.
export async function startServer(extraArgs = []) {
  assert.ok(fs.existsSync(BIN), `server binary not found: ${BIN} (run make)`);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'resumed-interop-'));
  const dir = path.join(base, 'data');
  const tmp = path.join(base, 'tmp');
  fs.mkdirSync(dir);
  fs.mkdirSync(tmp);
  const child = spawn(BIN, ['--listen', '127.0.0.1:0', '--dir', dir, ...extraArgs], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  live.add(child.pid);
  let stderr = '';
  let exited = false;
  child.on('exit', () => { exited = true; live.delete(child.pid); });
  const port = await new Promise((resolve, reject) => {
    child.on('error', (err) => reject(err));
    const timer = setTimeout(() => reject(new Error(`no listening line within 10 s; stderr: ${stderr}`)), 10_000);
    child.stderr.on('data', (d) => {
      stderr += d.toString();
      const m = /resumed: listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`resumed exited (code ${code}, signal ${sig}) before listening; stderr: ${stderr}`));
    });
  }).catch((err) => {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    fs.rmSync(base, { recursive: true, force: true });
    throw err;
  });
  return {
    port,
    dir,
    tmp,
    child,
    endpoint: `http://127.0.0.1:${port}/files/`,
    stderr: () => stderr,
    get exited() { return exited; },
    async stop() {
      if (!exited && child.exitCode === null && child.signalCode === null) {
        const done = new Promise((r) => child.once('exit', r));
        process.kill(child.pid, 'SIGKILL');
        await done;
      }
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}

// Runs body(srv) against a fresh server; always kills it (by PID) and removes its dir, and
// runs the cleanups body registered with srv.defer(fn) (proxies). A server that died, or a
// sanitizer report on its stderr, fails the test; on failure the tail of the server's
// request log is appended to the error.
export async function withServer(body, extraArgs = []) {
  const srv = await startServer(extraArgs);
  const cleanups = [];
  srv.defer = (fn) => cleanups.push(fn);
  let timer;
  try {
    // fail (and clean up) before node:test's own timeout, which would leave the server running
    const guard = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`test body did not finish within ${BODY_TIMEOUT / 1000} s`)),
        BODY_TIMEOUT);
    });
    await Promise.race([body(srv), guard]);
    assert.ok(!srv.exited, 'resumed exited during the test');
    const rep = SANITIZER.exec(srv.stderr());
    assert.ok(!rep, `sanitizer report on resumed's stderr: ${rep && rep[0]}`);
  } catch (err) {
    if (err && typeof err.message === 'string') {
      err.message += `\n--- resumed stderr (tail) ---\n${srv.stderr().split('\n').slice(-40).join('\n')}`;
    }
    throw err;
  } finally {
    clearTimeout(timer);
    for (const fn of cleanups.reverse()) {
      try { await fn(); } catch { /* best effort */ }
    }
    await srv.stop();
  }
}

export function uploadId(url) {
  const m = /\/files\/([0-9a-f]{32})$/.exec(new URL(url).pathname);
  assert.ok(m, `upload URL ${url} is not .../files/<32 lowercase hex>`);
  return m[1];
}

export function dataPath(srv, url) {
  return path.join(srv.dir, 'uploads', uploadId(url));
}

export function tusHead(url) {
  return fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
}

// ----------------------------------------------------------------- client --

// Options that record every request and its response, matched by request object (so that
// the concurrent requests of parallelUploads are told apart).
export function recorder() {
  const log = [];
  const byReq = new Map();
  return {
    log,
    options: {
      onBeforeRequest(req) {
        const e = {
          method: req.getMethod(),
          url: req.getURL(),
          offset: req.getHeader('Upload-Offset'),
          length: req.getHeader('Upload-Length'),
          defer: req.getHeader('Upload-Defer-Length'),
          override: req.getHeader('X-HTTP-Method-Override'),
          concat: req.getHeader('Upload-Concat'),
          metadata: req.getHeader('Upload-Metadata'),
          contentType: req.getHeader('Content-Type'),
          complete: req.getHeader('Upload-Complete'),
          interop: req.getHeader('Upload-Draft-Interop-Version'),
          tusResumable: req.getHeader('Tus-Resumable'),
          status: null,
        };
        log.push(e);
        byReq.set(req, e);
      },
      onAfterResponse(req, res) {
        const e = byReq.get(req);
        if (!e) return;
        e.status = res.getStatus();
        e.resOffset = res.getHeader('Upload-Offset');
        e.resLength = res.getHeader('Upload-Length');
        e.resComplete = res.getHeader('Upload-Complete');
        e.resTus = res.getHeader('Tus-Resumable');
        e.location = res.getHeader('Location');
      },
    },
  };
}

// Runs one upload to success; rejects on onError.
export function runUpload(input, options) {
  return new Promise((resolve, reject) => {
    const upload = new Upload(input, {
      retryDelays: null,
      ...options,
      onSuccess: () => resolve(upload),
      onError: (err) => reject(err),
    });
    upload.start();
  });
}

// The PATCHes of a recorder log (also POST + X-HTTP-Method-Override: PATCH).
export function patches(log) {
  return log.filter((e) => e.method === 'PATCH' || (e.method === 'POST' && e.override === 'PATCH'));
}

function checkTusResponses(log, allowUnanswered) {
  for (const e of log) {
    if (allowUnanswered && e.status === null) continue;
    assert.equal(e.resTus, '1.0.0', `Tus-Resumable on the response to ${e.method} ${e.url}`);
  }
}

// Every request of a recorder log was answered with Tus-Resumable: 1.0.0.
export const checkAllTusResponses = (log) => checkTusResponses(log, false);
// The same, skipping the requests that got no answer (cut on purpose).
export const checkAnsweredTusResponses = (log) => checkTusResponses(log, true);

// Readable over data in 64 KiB pieces (no known size: the client needs uploadSize, or
// uploadLengthDeferred).
export function readableOf(data) {
  async function* pieces() {
    for (let i = 0; i < data.length; i += 65536) {
      yield data.subarray(i, i + 65536);
      if (i % MiB === 0) await new Promise((r) => setImmediate(r));
    }
  }
  return Readable.from(pieces(), { objectMode: false });
}
