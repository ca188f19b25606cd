// Our page (web/) uploading through a real nginx (Debian's) in front of resumed, with the
// browser's connection cut once mid-body:
//
//   Chromium ─► faultproxy.py (one RST, 8-9 MiB into the upload) ─► nginx (docs/*.conf) ─► resumed
//
// nginx runs each of the configurations shipped in docs/, the files themselves (included by
// a minimal http{} harness; only their "# @listen" / "# @upstream" / "# @max-body" marker
// lines get test values, see nginxlib.mjs):
//
//  a. docs/nginx-buffered.conf (request buffering on, the article's case), no chunks:
//     resumed never saw a byte of the cut request, so the upload starts over from 0 and
//     everything is sent again;
//  b. the same with ?chunk=1M (article protocol): at most one chunk is lost, the upload
//     continues from resumed's offset; and the doc's own client_max_body_size refuses a
//     request the size of the whole file at once (413);
//  c. the same with tus and ?chunk=1M;
//  d. docs/nginx.conf (buffering off, the recommended deployment), tus, no chunks: nginx
//     streamed the body, so the upload continues from what resumed got before the cut.
//
// Every stored file is checked by SHA-256. resumed runs with --behind-proxy (as the docs say),
// so tus Locations point at the address the browser used (the fault proxy).
//
// Env: RESUMED_BIN, CHROMIUM (lib.mjs), NGINX (default /usr/sbin/nginx).
// Run: node --test tests/browser/      (or tests/browser/run.sh, which installs nginx)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  MiB, sha256, tempDir, scenario, startServer, launchBrowser, closeBrowser, openPage,
  setInputFiles,
} from './lib.mjs';
import { startNginx, startFaultProxy } from './nginxlib.mjs';

const TEST_TIMEOUT = 150_000;
const SIZE = 24 * MiB;
// One cut (RST), after 8 MiB of the upload plus up to 1 MiB more: the fault proxy starts
// counting when the browser has sent CUT_AFTER bytes, and cuts the connection then carrying
// the upload (or the next one) after another CUT_LO-CUT_HI bytes, so mid-body in a request
// of 1 MiB as well as in one of the whole file.
const CUT_AFTER = 8 * MiB;
const CUT_LO = 256 * 1024;
const CUT_HI = 1024 * 1024;
// Chromium paces request bodies at this speed (network emulation), so that the test, which
// polls the fault proxy's byte count, arms the cut close to CUT_AFTER, and an upload takes a
// few seconds instead of a fraction of one.
const THROTTLE = 8 * MiB;
// Request heads and the page's own requests: generous for ~30 requests.
const OVERHEAD = 256 * 1024;

// ---------------------------------------------------------------- helpers --

function writeSource(scope, name, size) {
  const dir = tempDir('src');
  scope.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  const data = randomBytes(size);
  fs.writeFileSync(file, data);
  return { file, size, sha: sha256(data) };
}

// The data file under DIR/uploads (everything but *.meta and temp files); exactly one.
function onlyDataFile(dir) {
  const up = path.join(dir, 'uploads');
  const files = fs.existsSync(up) ? fs.readdirSync(up).filter((n) => !n.endsWith('.meta') && !n.startsWith('.')) : [];
  assert.equal(files.length, 1, `expected exactly one data file under ${up}, found ${JSON.stringify(files)}`);
  return path.join(up, files[0]);
}

// Resolves when check() returns a truthy value (polled), or rejects after ms.
async function waitFor(what, check, ms = 60_000, every = 20) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

// The status code nginx answers to a request head alone (no body sent).
function statusForHead(port, head) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no answer to:\n${head}`)); }, 10_000);
    sock.setEncoding('latin1');
    sock.on('connect', () => sock.write(head));
    sock.on('data', (d) => {
      got += d;
      const m = /^HTTP\/1\.[01] (\d{3}) /.exec(got);
      if (m) { clearTimeout(timer); sock.destroy(); resolve(Number(m[1])); }
    });
    sock.on('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

// What resumed itself holds of the upload, asked directly (not through nginx).
async function heldByServer(server, protocol, req) {
  if (protocol === 'article') {
    const headers = { 'X-File-Id': req.headers['x-file-id'] };
    if (req.headers['x-upload-token']) headers['X-Upload-Token'] = req.headers['x-upload-token'];
    const res = await fetch(`${server.url}/status`, { headers });
    const body = await res.text();
    assert.equal(res.status, 200, `GET /status on resumed → ${res.status} ${body}`);
    assert.match(body, /^\d+$/, 'GET /status body');
    return Number(body);
  }
  const res = await fetch(`${server.url}${new URL(req.url).pathname}`, {
    method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' },
  });
  assert.ok(res.status === 200 || res.status === 204, `HEAD ${req.url} on resumed → ${res.status}`);
  return Number(res.headers.get('upload-offset'));
}

// resumed's request-log lines for the upload requests, e.g. `... "POST /upload" 200 1048576 ...`.
const sendLines = (log, protocol) => log.split('\n').filter((l) => (protocol === 'article'
  ? /"POST \/upload"/.test(l) : /"PATCH \/files\//.test(l)));

// ---------------------------------------------------------------- the run --

// Uploads a SIZE file from our page, opened through faultproxy → nginx (docs/<docName>) →
// resumed, with one RST cut mid-body. Returns what happened:
//   sends: the upload requests (POST /upload or PATCH) as { method, url, start, failed }
//   heldAfterCut: resumed's own offset right after the cut (asked directly, not through nginx)
//   logAfterCut: resumed's request log at that moment
//   baseline, atCut, final: the fault proxy's stats (bytes_up: browser → nginx)
async function cutUpload(t, scope, { docName, protocol, chunk = null, subs = {} }) {
  // docs/nginx.conf streams request bodies to resumed; docs/nginx-buffered.conf does not.
  const streamed = docName === 'nginx.conf';
  const server = await startServer(scope, { extraArgs: ['--behind-proxy'] });
  const nginx = await startNginx(scope, {
    docName, upstream: new URL(server.url).host, subs,
  });
  const proxy = await startFaultProxy(scope, nginx.port);
  const diag = () => [
    `--- nginx (docs/${docName}) access log ---`, nginx.accessLog().trim(),
    '--- nginx error log (last 20 lines) ---', nginx.errorLog().trim().split('\n').slice(-20).join('\n'),
    '--- faultproxy stderr ---', proxy.stderr.trim(),
  ].join('\n');
  try {
    const src = writeSource(scope, `nginx ${protocol}${chunk ? ` chunk ${chunk}` : ''}.bin`, SIZE);
    const { page, cdp, throttleUpload } = await openPage(scope);

    // Every upload request (body-carrying) and every offset check the page makes, in order.
    const sends = [];
    const checks = [];
    let seq = 0;
    const isSend = (req) => (protocol === 'article'
      ? req.method() === 'POST' && new URL(req.url()).pathname === '/upload'
      : req.method() === 'PATCH');
    const isCheck = (req) => (protocol === 'article'
      ? req.method() === 'GET' && new URL(req.url()).pathname === '/status'
      : req.method() === 'HEAD');
    page.on('request', (req) => {
      const h = req.headers();
      if (isSend(req)) {
        sends.push({
          req, seq: ++seq, method: req.method(), url: req.url(), headers: h, failed: null,
          start: Number(protocol === 'article' ? h['x-start-byte'] : h['upload-offset']),
        });
      } else if (isCheck(req)) {
        checks.push({ seq: ++seq, url: req.url() });
      }
    });
    page.on('requestfailed', (req) => {
      const s = sends.find((x) => x.req === req);
      if (s) s.failed = req.failure()?.errorText || 'failed';
    });

    const query = new URLSearchParams({ protocol });
    if (chunk) query.set('chunk', chunk);
    const res = await page.goto(`${proxy.url}/?${query}`);
    assert.equal(res.status(), 200, 'GET / through the fault proxy and nginx');
    assert.match(res.headers().server || '', /^nginx\//, 'the page came through nginx');

    const baseline = await proxy.stats();
    await throttleUpload(THROTTLE);
    await setInputFiles(cdp, '#file', src.file);

    // Arm the cut once the upload is CUT_AFTER bytes in, then wait for it.
    await waitFor(`${CUT_AFTER} bytes sent`,
      async () => (await proxy.stats()).bytes_up - baseline.bytes_up >= CUT_AFTER, 60_000);
    proxy.command(`cut ${CUT_LO} ${CUT_HI} rst 1`);
    const atCut = await waitFor('the cut', async () => {
      const st = await proxy.stats();
      return st.cuts > 0 && st;
    }, 30_000);
    const seqAtCut = seq;
    const cutAt = sends.length - 1;
    assert.ok(cutAt >= 0, 'the cut hit an upload request');
    // The page sees the cut as a failed request (no response: nginx passed none on).
    await waitFor('the cut request to fail in the page', () => sends[cutAt].failed, 10_000);
    // Ask resumed now, while uploader.js waits out its backoff (≥ 0.5 s) and nothing of
    // this upload is in flight: a status check (GET /status, HEAD) takes the upload's lock,
    // which would end an upload request in progress. With buffering off, first let resumed
    // finish the cut request that nginx was streaming to it.
    if (streamed) {
      await waitFor('resumed to end the cut request', () => sendLines(server.log, protocol).length > cutAt, 10_000);
    }
    const logAfterCut = server.log;
    const heldAfterCut = await heldByServer(server, protocol, sends[cutAt]);
    const early = checks.some((c) => c.seq > seqAtCut);
    t.diagnostic(`cut after ${atCut.bytes_up - baseline.bytes_up} bytes up, in the request starting at ` +
      `${sends[cutAt].start} (${sends[cutAt].failed}); resumed then held ${heldAfterCut}` +
      `${early ? ' (asked after the page did: timing is off)' : ''}`);

    const row = page.locator('li.row');
    await page.waitForFunction(
      () => ['done', 'failed'].includes(document.querySelector('li.row')?.dataset.state),
      null, { timeout: 90_000, polling: 100 });
    assert.equal(await row.getAttribute('data-state'), 'done',
      `final state: ${await row.locator('.state').textContent()}`);
    assert.equal(await row.getAttribute('data-acknowledged'), String(SIZE), 'data-acknowledged');

    const stored = onlyDataFile(server.dir);
    assert.equal(fs.statSync(stored).size, SIZE, 'stored file size');
    assert.equal(sha256(fs.readFileSync(stored)), src.sha, 'stored file sha256 equals the source');

    const final = await proxy.stats();
    assert.equal(final.cuts, 1, 'exactly one cut');
    t.diagnostic(`${sends.length} upload requests, starts ${sends.map((s) => s.start).join(', ')}; ` +
      `${final.bytes_up - baseline.bytes_up} bytes up for ${SIZE}`);
    return { server, nginx, proxy, sends, cutAt, heldAfterCut, logAfterCut, baseline, atCut, final };
  } catch (err) {
    if (err && typeof err.message === 'string') err.message += `\n${diag()}`;
    throw err;
  }
}

// ------------------------------------------------------------------ tests --

before(launchBrowser);
after(closeBrowser);

test('buffering on (docs/nginx-buffered.conf), no chunks: a cut loses the whole request, the upload starts over',
  { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
    // The doc's limit is just above the chunk size it tells clients to use; the article's
    // case sends the file whole, so only here the limit is raised.
    const r = await cutUpload(t, scope, {
      docName: 'nginx-buffered.conf', protocol: 'article', subs: { 'max-body': '64m' },
    });
    const cut = r.sends[r.cutAt];
    assert.equal(r.cutAt, 0, 'the first request was cut');
    assert.equal(cut.start, 0);
    assert.equal(r.heldAfterCut, 0, 'resumed held nothing of the cut request (GET /status on resumed)');
    assert.deepEqual(sendLines(r.logAfterCut, 'article'), [],
      'resumed never saw the cut POST /upload (nginx had not passed it on)');
    assert.equal(r.sends.length, 2, `two POST /upload (cut, then again): ${r.sends.map((s) => s.start)}`);
    assert.equal(r.sends[1].start, 0, 'the retry starts over: X-Start-Byte: 0');
    const cutPoint = r.atCut.bytes_up - r.baseline.bytes_up;
    const carried = r.final.bytes_up - r.baseline.bytes_up;
    assert.ok(cutPoint >= CUT_AFTER, `cut after ${cutPoint} bytes`);
    assert.ok(carried >= SIZE + cutPoint,
      `everything was sent again: ${carried} bytes carried ≥ ${SIZE} + ${cutPoint}`);
  }));

test('buffering on (docs/nginx-buffered.conf), article protocol, ?chunk=1M: a cut loses at most a chunk',
  { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
    const r = await cutUpload(t, scope, { docName: 'nginx-buffered.conf', protocol: 'article', chunk: '1M' });
    const next = r.sends[r.cutAt + 1];
    assert.ok(next, 'an upload request after the cut');
    assert.ok(r.heldAfterCut >= 4 * MiB && r.heldAfterCut % MiB === 0,
      `resumed held whole chunks, several MiB, after the cut: ${r.heldAfterCut}`);
    assert.equal(next.start, r.heldAfterCut, 'the next POST /upload continues at resumed\'s offset (X-Start-Byte)');
    assert.ok(r.sends.every((s) => s.start % MiB === 0), 'every request starts on a chunk boundary');
    const carried = r.final.bytes_up - r.baseline.bytes_up;
    assert.ok(carried < SIZE + 2 * MiB + OVERHEAD,
      `little was sent twice: ${carried} bytes carried < ${SIZE} + 2 MiB + ${OVERHEAD}`);
    assert.equal(sendLines(r.server.log, 'article').length, SIZE / MiB,
      'resumed got one POST /upload per chunk, none of them cut');
    // A client that forgot the chunk size is refused at once, before it sends the file.
    const head = `POST /upload HTTP/1.1\r\nHost: 127.0.0.1:${r.nginx.port}\r\nX-File-Id: whole\r\n` +
      `X-Start-Byte: 0\r\nX-File-Size: ${SIZE}\r\nContent-Length: ${SIZE}\r\n\r\n`;
    assert.equal(await statusForHead(r.nginx.port, head), 413,
      'docs/nginx-buffered.conf refuses a whole-file request (client_max_body_size)');
  }));

test('buffering on (docs/nginx-buffered.conf), tus, ?chunk=1M: a cut loses at most a chunk',
  { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
    const r = await cutUpload(t, scope, { docName: 'nginx-buffered.conf', protocol: 'tus', chunk: '1M' });
    const next = r.sends[r.cutAt + 1];
    assert.ok(next, 'a PATCH after the cut');
    assert.equal(new URL(next.url).host, new URL(r.proxy.url).host,
      'the tus upload URL (Location, --behind-proxy) is the address the browser used');
    assert.ok(r.heldAfterCut >= 4 * MiB && r.heldAfterCut % MiB === 0,
      `resumed held whole chunks, several MiB, after the cut: ${r.heldAfterCut}`);
    assert.equal(next.start, r.heldAfterCut, 'the next PATCH continues at resumed\'s offset (Upload-Offset)');
    const carried = r.final.bytes_up - r.baseline.bytes_up;
    assert.ok(carried < SIZE + 2 * MiB + OVERHEAD,
      `little was sent twice: ${carried} bytes carried < ${SIZE} + 2 MiB + ${OVERHEAD}`);
    assert.equal(sendLines(r.server.log, 'tus').length, SIZE / MiB, 'resumed got one PATCH per chunk, none of them cut');
  }));

test('buffering off (docs/nginx.conf), tus, no chunks: a cut mid-body resumes from what nginx streamed',
  { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
    const r = await cutUpload(t, scope, { docName: 'nginx.conf', protocol: 'tus' });
    assert.equal(r.cutAt, 0, 'the first PATCH was cut');
    assert.equal(r.sends[0].start, 0);
    const next = r.sends[1];
    assert.ok(next, 'a PATCH after the cut');
    assert.equal(new URL(next.url).host, new URL(r.proxy.url).host,
      'the tus upload URL (Location, --behind-proxy) is the address the browser used');
    const cutPoint = r.atCut.bytes_up - r.baseline.bytes_up;
    assert.ok(r.heldAfterCut >= CUT_AFTER - 2 * MiB && r.heldAfterCut <= cutPoint,
      `resumed held what nginx streamed before the cut (cut after ${cutPoint} bytes): ${r.heldAfterCut}`);
    assert.equal(next.start, r.heldAfterCut, 'the next PATCH continues at resumed\'s offset (Upload-Offset)');
    assert.equal(r.sends.length, 2, 'two PATCHes: cut, then the rest');
    const carried = r.final.bytes_up - r.baseline.bytes_up;
    assert.ok(carried < SIZE + (cutPoint - r.heldAfterCut) + OVERHEAD,
      `only what resumed had not got was sent again: ${carried} bytes carried`);
  }));
