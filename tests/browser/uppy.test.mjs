// Uppy (npm `uppy`, pinned in package.json; its prebuilt browser bundle) with
// its Tus plugin, in headless Chromium driven by playwright-core, uploading to
// build/resumed's tus endpoint at /files/.
//
//  1. Same origin: resumed serves the page (--web) and takes the uploads:
//     several files at once (0 bytes, a few bytes, 8 MiB in 1 MiB chunks);
//     an upload paused with uppy.pauseResume between two chunks, and one
//     paused inside its only PATCH (upload throttled through CDP so the body
//     is cut mid-way), each resumed to the end.
//  2. Cross origin: the page comes from a small Node static server on another
//     port; resumed runs with --cors-origin (a list naming the page, or *).
//     Without the flag, or with a list that does not name the page's origin,
//     the browser must block the upload; resumed's own page keeps working
//     when --cors-origin lists only other origins.
//
// The page (uppy-fixture/) has no UI: harness.mjs wraps Uppy and is driven
// with page.evaluate. File contents come from uppy-fixture/prng.mjs, run both
// in the page (to make the Blobs) and here (to know the expected bytes). Every
// check on the result is done here: DIR/uploads/<id> must have the sha256 of
// the source, <id> being the last segment of the upload URL Uppy reports.
// Uppy's retries are off (retryDelays: []) so any bad answer fails the test.
//
// Starting resumed (fresh temp --dir) and Chromium, killing them and cleaning
// up after each test are lib.mjs's (shared with article-client.test.mjs).
//
// Env: RESUMED_BIN (default <repo>/build/resumed), CHROMIUM (default
//      /usr/bin/chromium).
//
// Run: node --test tests/browser/      (or tests/browser/run.sh)

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  HERE, MiB, sha256, tempDir, scenario, startServer, launchBrowser, closeBrowser, openPage,
} from './lib.mjs';
import { testBytes } from './uppy-fixture/prng.mjs';

const FIXTURE = path.join(HERE, 'uppy-fixture');
// The ES module build of the bundle: harness.mjs imports { Uppy, Tus } from it.
const UPPY_BUNDLE = path.join(HERE, 'node_modules', 'uppy', 'dist', 'uppy.min.mjs');

const CHUNK = 1 * MiB;
const TEST_TIMEOUT = 120_000;
const UPLOAD_TIMEOUT = 60_000;

// ---------------------------------------------------------------- helpers --

// Rejects with `message` if promise has not settled within ms.
async function withDeadline(promise, ms, message) {
  let timer;
  try {
    return await Promise.race([
      promise,
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms); }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// resumed's request log lines ("PEER "METHOD PATH" STATUS ...") for a method.
function requestLines(server, method) {
  return server.log.split('\n').filter((line) => line.includes(`"${method} `));
}

// The page: the fixture files plus Uppy's bundle, in a temp dir.
function webDir(scope) {
  if (!fs.existsSync(UPPY_BUNDLE)) {
    throw new Error(`Uppy's bundle is missing: ${UPPY_BUNDLE}\n(run npm ci in tests/browser)`);
  }
  const dir = tempDir('web');
  scope.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const name of ['index.html', 'harness.mjs', 'prng.mjs']) {
    fs.copyFileSync(path.join(FIXTURE, name), path.join(dir, name));
  }
  fs.copyFileSync(UPPY_BUNDLE, path.join(dir, 'uppy.min.mjs'));
  return dir;
}

// A second origin for the page: a minimal static file server on another
// 127.0.0.1 port (in this process; closed with the scope).
async function startStaticServer(scope, dir) {
  const types = { '.html': 'text/html; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8' };
  const server = http.createServer((req, res) => {
    const name = new URL(req.url, 'http://x').pathname.replace(/^\/$/, '/index.html').slice(1);
    const type = types[path.extname(name)];
    if (req.method !== 'GET' || !type || name.includes('/') || !fs.existsSync(path.join(dir, name))) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
    res.end(fs.readFileSync(path.join(dir, name)));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  scope.defer(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${server.address().port}`;
}

// A file for harness.start, with its expected bytes.
function source(name, seed, size) {
  const data = Buffer.from(testBytes(seed, size));
  return { name, seed, size, sha: sha256(data), data };
}
const spec = ({ name, seed, size }) => ({ name, seed, size });

// DIR/uploads/<id> for an upload URL Uppy reported.
function storedPath(server, uploadURL) {
  assert.ok(uploadURL && uploadURL.startsWith(`${server.url}/files/`),
    `upload URL ${JSON.stringify(uploadURL)} should be under ${server.url}/files/`);
  const id = new URL(uploadURL).pathname.split('/').pop();
  assert.match(id, /^[0-9a-f]{32}$/, `upload id in ${uploadURL}`);
  return path.join(server.dir, 'uploads', id);
}

function assertStored(server, uploadURL, src) {
  const file = storedPath(server, uploadURL);
  assert.ok(fs.existsSync(file), `${file} (upload of ${src.name}) should exist`);
  const data = fs.readFileSync(file);
  assert.equal(data.length, src.size, `size of the stored ${src.name}`);
  assert.equal(sha256(data), src.sha, `sha256 of the stored ${src.name} equals the source`);
}

async function head(uploadURL) {
  const res = await fetch(uploadURL, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  assert.ok(res.status === 200 || res.status === 204, `HEAD ${uploadURL} → ${res.status}`);
  return res.headers;
}

// Upload-Metadata "k base64,k2 base64" → { k: 'value', ... }
function parseMetadata(header) {
  const out = {};
  for (const pair of (header || '').split(',')) {
    const [key, value = ''] = pair.trim().split(' ');
    if (key) out[key] = Buffer.from(value, 'base64').toString('utf8');
  }
  return out;
}

function dataFiles(server) {
  const up = path.join(server.dir, 'uploads');
  return fs.existsSync(up) ? fs.readdirSync(up).filter((name) => !name.endsWith('.meta')) : [];
}

// ------------------------------------------------------------ the browser --

// A fresh browser context (lib.mjs openPage: own localStorage, so no tus
// fingerprint from an earlier test is picked up, and own CORS preflight cache)
// with the harness page loaded from pageOrigin. Returns the page, the
// responses it got from resumed's tus endpoint, and throttleUpload (Chromium
// paces the request body, so a pause can land inside a PATCH body).
async function openHarness(scope, pageOrigin) {
  const { page, throttleUpload } = await openPage(scope);
  const tusResponses = [];
  page.on('response', (res) => {
    if (new URL(res.url()).pathname.startsWith('/files/')) {
      tusResponses.push({ method: res.request().method(), url: res.url(), status: res.status(), headers: res.headers() });
    }
  });
  const response = await page.goto(`${pageOrigin}/`);
  assert.equal(response.status(), 200, `GET ${pageOrigin}/`);
  // harness.mjs sets #state last, after Uppy's bundle loaded.
  await page.waitForFunction(() => document.getElementById('state').textContent === 'ready',
    null, { timeout: 30_000 });
  return { page, tusResponses, throttleUpload };
}

async function result(page) {
  return page.evaluate(() => window.harness.result());
}

function assertAllSucceeded(summary, sources) {
  assert.ok(summary.completeFired, `Uppy emitted 'complete' (errors: ${JSON.stringify(summary.errors)})`);
  assert.deepEqual(summary.failed, [], 'no failed files in the complete result');
  assert.deepEqual(summary.uploadErrors, [], 'no upload-error events');
  assert.deepEqual(summary.errors, [], 'no error events');
  assert.deepEqual(summary.successful.map((f) => f.name).sort(), sources.map((s) => s.name).sort(),
    'every file is in the successful list');
}

// Waits for the pause harness.start was asked for (more than `afterBytes` of
// `src` sent), checks what the server holds while it is paused (an offset of
// at least minOffset, below the size; a stored prefix of the source), calls
// `beforeResume`, resumes, and returns Uppy's final summary.
async function pauseAndResume(t, page, server, src, { afterBytes, minOffset, beforeResume = async () => {} }) {
  const paused = await page.evaluate(() => window.harness.waitPaused());
  if (!paused) {
    assert.fail(`the upload should be paused before it ends; it ended with ${JSON.stringify(await result(page))}`);
  }
  assert.ok(paused.bytesUploaded > afterBytes && paused.bytesUploaded < src.size,
    `paused at ${paused.bytesUploaded} bytes: past ${afterBytes}, before the end (${src.size})`);

  // While paused: the server holds a proper prefix of the file.
  const offset = Number((await head(paused.uploadURL)).get('upload-offset'));
  t.diagnostic(`paused: browser had sent ${paused.bytesUploaded} of ${src.size} bytes; HEAD Upload-Offset ${offset}`);
  assert.ok(offset >= minOffset && offset < src.size,
    `HEAD Upload-Offset while paused should be in [${minOffset}, ${src.size}), got ${offset}`);
  const partial = fs.readFileSync(storedPath(server, paused.uploadURL));
  assert.ok(partial.length >= offset && partial.length < src.size,
    `stored partial file length ${partial.length} should be in [${offset}, ${src.size})`);
  assert.ok(partial.equals(src.data.subarray(0, partial.length)), 'the stored partial file is a prefix of the source');

  await beforeResume();
  await page.evaluate(() => window.harness.resume());
  const summary = await result(page);
  const order = ['paused', 'resumed', 'success'].map((kind) => summary.events.indexOf(`${kind}:${src.name}`));
  assert.ok(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])),
    `events should go paused → resumed → success: ${JSON.stringify(summary.events)}`);
  return summary;
}

// Uploads src in CHUNK-sized PATCHes, paused once past the first chunk and
// then resumed (pauseAndResume), within UPLOAD_TIMEOUT; Uppy must report
// success and DIR/uploads/<id> must equal the source. tus-js-client reports
// progress after every PATCH answer, so the first report past one chunk comes
// at the latest with the second answer: the pause always lands well before
// the end.
async function uploadPausedAfterFirstChunk(t, page, server, src) {
  await page.evaluate((opts) => window.harness.start(opts), {
    endpoint: `${server.url}/files/`, chunkSize: CHUNK, files: [spec(src)],
    pause: { name: src.name, afterBytes: CHUNK },
  });
  const summary = await withDeadline(
    pauseAndResume(t, page, server, src, { afterBytes: CHUNK, minOffset: CHUNK }),
    UPLOAD_TIMEOUT, 'pause/resume did not finish');
  assertAllSucceeded(summary, [src]);
  assertStored(server, summary.successful[0].uploadURL, src);
}

// ------------------------------------------------------------------ tests --

before(launchBrowser);
after(closeBrowser);

describe('Uppy + Tus plugin, same origin', () => {
  test('uploads three files at once: 0 B, 1000 B, 8 MiB + 123 B in 1 MiB chunks',
    { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
      const server = await startServer(scope, { web: webDir(scope) });
      const { page } = await openHarness(scope, server.url);
      const sources = [
        source('empty.bin', 1, 0),
        source('small.bin', 2, 1000),
        source('big.bin', 3, 8 * MiB + 123),
      ];

      await page.evaluate((opts) => window.harness.start(opts), {
        endpoint: `${server.url}/files/`, chunkSize: CHUNK, files: sources.map(spec),
      });
      const summary = await withDeadline(result(page), UPLOAD_TIMEOUT, 'Uppy did not complete');
      assertAllSucceeded(summary, sources);
      assert.equal(summary.successful.length, 3, 'three successful files');

      for (const src of sources) {
        const { uploadURL } = summary.successful.find((f) => f.name === src.name);
        assertStored(server, uploadURL, src);
        // The upload as the server reports it: complete, with Uppy's metadata.
        const h = await head(uploadURL);
        assert.equal(h.get('upload-offset'), String(src.size), `HEAD Upload-Offset of ${src.name}`);
        assert.equal(h.get('upload-length'), String(src.size), `HEAD Upload-Length of ${src.name}`);
        const meta = parseMetadata(h.get('upload-metadata'));
        assert.equal(meta.filename, src.name, `Upload-Metadata filename of ${src.name}`);
        assert.equal(meta.filetype, 'application/octet-stream', `Upload-Metadata filetype of ${src.name}`);
      }
      // 0 B: no PATCH; 1000 B: one; 8 MiB + 123 B: nine chunks.
      t.diagnostic(`PATCH requests logged: ${requestLines(server, 'PATCH').length}`);
      assert.equal(requestLines(server, 'POST').length, 3, 'one creation POST per file');
    }));

  test('pauses an 8 MiB upload between 1 MiB chunks (uppy.pauseResume), resumes it, bytes intact',
    { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
      const server = await startServer(scope, { web: webDir(scope) });
      const { page, tusResponses } = await openHarness(scope, server.url);
      const src = source('paused.bin', 4, 8 * MiB);

      await uploadPausedAfterFirstChunk(t, page, server, src);
      assert.equal(requestLines(server, 'POST').length, 1, 'the resume reuses the upload (one creation POST)');
      assert.ok(tusResponses.some((r) => r.method === 'HEAD'), 'the resume asked the server for the offset (HEAD)');
    }));

  test('pauses inside a single 8 MiB PATCH (throttled), resumes from what the server kept, bytes intact',
    { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
      const server = await startServer(scope, { web: webDir(scope) });
      const { page, tusResponses, throttleUpload } = await openHarness(scope, server.url);
      const src = source('cut.bin', 7, 8 * MiB);

      // No chunkSize: one PATCH for the whole file. At 4 MiB/s it takes ~2 s,
      // so the pause (past 1 MiB) cuts its body and the server has to keep
      // the part that arrived.
      await throttleUpload(4 * MiB);
      await page.evaluate((opts) => window.harness.start(opts), {
        endpoint: `${server.url}/files/`, files: [spec(src)],
        pause: { name: src.name, afterBytes: MiB },
      });
      const summary = await withDeadline(
        pauseAndResume(t, page, server, src, { afterBytes: MiB, minOffset: 1, beforeResume: () => throttleUpload(-1) }),
        UPLOAD_TIMEOUT, 'pause/resume did not finish');
      assertAllSucceeded(summary, [src]);
      assertStored(server, summary.successful[0].uploadURL, src);
      // resumed logs a request cut short with "-" and why as its status. The
      // first PATCH to end is the cut one. The number of PATCHes varies: seen
      // under load, our HEAD takes the upload over before Chromium's network
      // stack has acted on the abort; resumed closes that connection, the
      // request is replayed on a new one (no page code sends it: Uppy never
      // sees an answer), and resumed refuses its stale offset with 409.
      const patchLog = requestLines(server, 'PATCH').map((line) => line.replace(/^\S+ "\S+ \S+" /, ''));
      t.diagnostic(`resumed's PATCH log: ${patchLog.join(' | ')}`);
      assert.match(patchLog[0], /^- \(/, 'the first PATCH was cut short');
      assert.ok(tusResponses.some((r) => r.method === 'HEAD'), 'the resume asked the server for the offset (HEAD)');
    }));
});

describe('Uppy + Tus plugin, --cors-origin', () => {
  // Browsers send Origin on every POST and PATCH, same-origin ones too, so
  // the page resumed serves itself carries resumed's own origin: a list of
  // other sites must not lock that page out.
  test("resumed's own page still uploads when --cors-origin lists only other origins",
    { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
      const server = await startServer(scope, { web: webDir(scope), extraArgs: ['--cors-origin', 'http://localhost:1'] });
      const { page } = await openHarness(scope, server.url);
      const src = source('own.bin', 8, 3 * MiB + 5);
      await page.evaluate((opts) => window.harness.start(opts), {
        endpoint: `${server.url}/files/`, chunkSize: CHUNK, files: [spec(src)],
      });
      const summary = await withDeadline(result(page), UPLOAD_TIMEOUT, 'Uppy did not complete');
      assertAllSucceeded(summary, [src]);
      assertStored(server, summary.successful[0].uploadURL, src);
    }));

  // The page origin is only known once its server runs: each case builds its
  // flag from it.
  const allowed = [
    ['a list naming the page origin', (origin) => ['--cors-origin', `http://localhost:1,${origin}`]],
    ['*', () => ['--cors-origin', '*']],
  ];
  for (const [label, flags] of allowed) {
    test(`--cors-origin ${label}: upload paused and resumed across origins, bytes intact`,
      { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
        const web = webDir(scope);
        const origin = await startStaticServer(scope, web);
        const server = await startServer(scope, { extraArgs: flags(origin) });
        const { page, tusResponses } = await openHarness(scope, origin);
        const src = source('cross.bin', 5, 3 * MiB + 5);

        // Several chunks and a pause: POST, PATCH and HEAD all go cross-origin,
        // and Uppy needs Location, Upload-Offset and Upload-Length exposed.
        await uploadPausedAfterFirstChunk(t, page, server, src);

        const methods = new Set(tusResponses.map((r) => r.method));
        for (const m of ['POST', 'PATCH', 'HEAD']) assert.ok(methods.has(m), `the page sent a ${m} cross-origin`);
        for (const r of tusResponses) {
          const acao = r.headers['access-control-allow-origin'];
          assert.ok(acao === origin || acao === '*', `${r.method} ${r.url} → Access-Control-Allow-Origin ${acao}`);
          if (acao === origin) {
            assert.match(r.headers.vary || '', /\borigin\b/i, `${r.method} ${r.url}: Vary should name Origin`);
          }
        }
        assert.ok(requestLines(server, 'OPTIONS').length >= 1, 'the browser sent a CORS preflight');
      }));
  }

  const refused = [
    ['without --cors-origin', () => []],
    ['with --cors-origin not naming the page origin', () => ['--cors-origin', 'http://localhost:1']],
  ];
  for (const [label, flags] of refused) {
    test(`${label}: the browser blocks the upload and Uppy reports an error`,
      { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
        const web = webDir(scope);
        const origin = await startStaticServer(scope, web);
        const server = await startServer(scope, { extraArgs: flags(origin) });
        const { page } = await openHarness(scope, origin);
        const src = source('blocked.bin', 6, 1000);

        await page.evaluate((opts) => window.harness.start(opts), {
          endpoint: `${server.url}/files/`, chunkSize: CHUNK, files: [spec(src)],
        });
        const summary = await withDeadline(result(page), UPLOAD_TIMEOUT, 'Uppy did not complete');
        t.diagnostic(`Uppy's error: ${JSON.stringify(summary.uploadErrors)}`);
        assert.deepEqual(summary.successful, [], 'nothing succeeds');
        assert.deepEqual(summary.failed.map((f) => f.name), [src.name], 'the file is in the failed list');
        assert.deepEqual(summary.uploadErrors.map((e) => e.name), [src.name], 'one upload-error event for it');
        // The failure must be the preflight being refused, not anything else:
        // the server saw the OPTIONS and never a creation POST.
        assert.ok(requestLines(server, 'OPTIONS').length >= 1, 'the browser sent a CORS preflight');
        assert.deepEqual(requestLines(server, 'POST'), [], 'the browser never sent the POST');
        assert.deepEqual(dataFiles(server), [], 'no upload was created');
      }));
  }
});
