// Interop, continued: the official tus-js-client (npm, pinned in package.json) in Node.js
// against build/resumed, for what tus-js-client.test.mjs does not cover:
//
//   - tus concatenation (parallelUploads: partial uploads, then Upload-Concat: final),
//     plain, with uploadDataDuringCreation, with uneven boundaries and chunks, and resumed
//     from the URL storage after an abort;
//   - resuming a tus 1.0 upload through the client's URL storage (fingerprint), and after
//     the TCP connection was cut mid-PATCH, with retries off (a new Upload) and on (the
//     client resumes by itself);
//   - the IETF resumable-upload drafts the client speaks (protocol 'ietf-draft-03':
//     Upload-Draft-Interop-Version: 5; 'ietf-draft-05': version 6 and Content-Type
//     application/partial-upload): one request, chunks from a Buffer (the last PATCH says
//     Upload-Complete: ?1), chunks from a Readable (every PATCH says ?0: the server must
//     complete the upload when the offset reaches the Upload-Length it was given), data in
//     the creation request, and resume after a cut.
//
// Same conventions and helpers (lib.mjs) as tus-js-client.test.mjs: every test starts its
// own server on 127.0.0.1:0 with a temporary --dir (killed by PID and removed even on
// failure; proxies registered with srv.defer are closed first), checks the SHA-256 of
// DIR/uploads/<id>, and runs the client with retries off unless the test is about
// retries. Where the brief needs the server's view (no second creation, the cut request),
// the server's request log on stderr is read:
//   PEER "METHOD PATH" STATUS BYTES_IN MSms      (STATUS is "- (why)" for a cut request)
//
// Env: RESUMED_BIN (default <repo>/build/resumed).
// Run (from the repository root): node --test tests/interop/   (or tests/interop/run.sh)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import {
  MiB, TEST_TIMEOUT, Upload, FileUrlStorage, sha256, fileSha, withServer, uploadId, dataPath, tusHead, recorder,
  runUpload, patches, checkAnsweredTusResponses, readableOf,
} from './lib.mjs';

const IETF = [
  { protocol: 'ietf-draft-03', interop: '5', contentType: undefined },
  { protocol: 'ietf-draft-05', interop: '6', contentType: 'application/partial-upload' },
];

// ---------------------------------------------------------------- helpers --

const is2xx = (s) => typeof s === 'number' && s >= 200 && s < 300;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The server's request log: one entry per line `PEER "METHOD PATH" STATUS BYTES_IN MSms`.
function serverLog(srv) {
  const out = [];
  for (const line of srv.stderr().split('\n')) {
    const m = /^(\S+) "(\S+) (\S+)" (\d{3}|- \([^)]*\)) (\d+) [\d.]+ms$/.exec(line);
    if (m) {
      out.push({
        method: m[2], path: m[3], status: /^\d+$/.test(m[4]) ? Number(m[4]) : m[4], bytesIn: Number(m[5]), line,
      });
    }
  }
  return out;
}

async function waitFor(what, fn, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

// Starts an upload that is expected to fail (the connection gets cut); resolves with
// { upload, error } on onError, rejects if it succeeds.
function runUploadExpectingError(input, options) {
  return new Promise((resolve, reject) => {
    const upload = new Upload(input, {
      retryDelays: null,
      ...options,
      onSuccess: () => reject(new Error('upload finished although its connection was to be cut')),
      onError: (error) => resolve({ upload, error }),
    });
    upload.start();
  });
}

// Starts an upload and aborts it (no termination) once shouldAbort(upload, ...args of
// onChunkComplete) says so; resolves with the upload after abort() settled.
function runUploadAbortingOnChunk(input, options, shouldAbort) {
  return new Promise((resolve, reject) => {
    let aborting = false;
    const upload = new Upload(input, {
      retryDelays: null,
      ...options,
      onChunkComplete(...args) {
        if (options.onChunkComplete) options.onChunkComplete(...args);
        if (!aborting && shouldAbort(upload, ...args)) {
          aborting = true;
          upload.abort().then(() => resolve(upload), reject);
        }
      },
      onSuccess: () => reject(new Error('upload finished before it could be aborted')),
      onError: reject,
    });
    upload.start();
  });
}

// In-memory URL storage with the interface tus-js-client expects (the Node default is a no-op).
function memoryUrlStorage() {
  const items = new Map();
  let n = 0;
  return {
    items,
    async findAllUploads() { return [...items].map(([k, v]) => ({ ...v, urlStorageKey: k })); },
    async findUploadsByFingerprint(fp) {
      return [...items].filter(([k]) => k.startsWith(`tus::${fp}::`)).map(([k, v]) => ({ ...v, urlStorageKey: k }));
    },
    async removeUpload(key) { items.delete(key); },
    async addUpload(fp, upload) {
      const key = `tus::${fp}::${++n}`;
      items.set(key, JSON.parse(JSON.stringify(upload)));
      return key;
    },
  };
}

// A TCP proxy to the server that can cut the next request after exactly N body bytes:
// armCut(n) makes it count from the next byte the client sends (the head of the next
// request), forward the head and n body bytes, then half-close towards the server (FIN,
// after every forwarded byte) and destroy the client's socket. Server→client bytes pass
// straight through.
async function cuttingProxy(targetPort) {
  const state = { arm: null, cuts: 0, sockets: new Set() };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const conn = { cut: false };
    state.sockets.add(client);
    state.sockets.add(upstream);
    const forward = (buf) => {
      if (buf.length && !upstream.write(buf)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    };
    client.on('data', (chunk) => {
      if (conn.cut) return;
      const a = state.arm;
      if (!a) { forward(chunk); return; }
      let bodyStart = 0;
      if (!a.headDone) {
        const before = a.head.length;
        a.head = Buffer.concat([a.head, chunk]);
        const idx = a.head.indexOf('\r\n\r\n');
        if (idx < 0) { forward(chunk); return; }
        a.headDone = true;
        bodyStart = idx + 4 - before;
      }
      const take = Math.min(a.n - a.body, chunk.length - bodyStart);
      a.body += take;
      if (a.body < a.n) { forward(chunk); return; }
      forward(chunk.subarray(0, bodyStart + take));
      conn.cut = true;
      state.arm = null;
      state.cuts++;
      upstream.end();
      client.destroy();
    });
    upstream.on('data', (chunk) => { if (!conn.cut) client.write(chunk); });
    client.on('close', () => { if (!conn.cut) upstream.destroy(); });
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    upstream.on('error', () => client.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  state.port = server.address().port;
  state.endpoint = `http://127.0.0.1:${state.port}/files/`;
  state.armCut = (n) => { state.arm = { n, head: Buffer.alloc(0), headDone: false, body: 0 }; };
  state.close = () => new Promise((r) => {
    for (const s of state.sockets) s.destroy();
    server.close(() => r());
  });
  return state;
}

// Upload-Concat: final;<url> <url> ... → the ids, in order.
function finalConcatIds(value) {
  assert.ok(typeof value === 'string' && value.startsWith('final;'), `Upload-Concat ${value} is not final;...`);
  return value.slice('final;'.length).trim().split(/ +/).map((u) => uploadId(new URL(u, 'http://x/').toString()));
}

// Expected slice boundaries of tus-js-client's splitSizeIntoParts.
function splitParts(total, count) {
  const size = Math.floor(total / count);
  const parts = [];
  for (let i = 0; i < count; i++) parts.push({ start: size * i, end: size * (i + 1) });
  parts[count - 1].end = total;
  return parts;
}

// Checks a finished concatenation: the final POST, the final upload's bytes and HEAD, and
// every partial upload's bytes and HEAD against its slice. Returns the partial URLs in order.
async function checkConcatenation(srv, data, parts, finalUrl, rec, { finalMetadata, partialMetadata } = {}) {
  const finals = rec.log.filter((e) => e.method === 'POST' && typeof e.concat === 'string' && e.concat.startsWith('final;'));
  assert.equal(finals.length, 1, 'one final POST');
  const fin = finals[0];
  assert.equal(fin.status, 201, 'final POST status');
  assert.equal(fin.length, undefined, 'the final POST carries no Upload-Length');
  assert.equal(new URL(fin.location, srv.endpoint).toString(), finalUrl, 'final Location is the upload URL');
  const partialUrls = fin.concat.slice('final;'.length).split(' ');
  assert.equal(partialUrls.length, parts.length, 'partial URLs in the final POST');

  // the final upload
  assert.equal(fileSha(dataPath(srv, finalUrl)), sha256(data), 'final upload: stored sha256');
  const h = await tusHead(finalUrl);
  assert.equal(h.status, 200, 'HEAD final: status');
  assert.equal(h.headers.get('upload-offset'), String(data.length), 'HEAD final: Upload-Offset');
  assert.equal(h.headers.get('upload-length'), String(data.length), 'HEAD final: Upload-Length');
  assert.deepEqual(finalConcatIds(h.headers.get('upload-concat')), partialUrls.map(uploadId),
    'HEAD final: Upload-Concat lists the partial uploads in order');
  if (finalMetadata !== undefined) {
    assert.equal(h.headers.get('upload-metadata'), finalMetadata, 'HEAD final: Upload-Metadata');
  }

  // the partial uploads
  for (const [i, url] of partialUrls.entries()) {
    const slice = data.subarray(parts[i].start, parts[i].end);
    assert.equal(fileSha(dataPath(srv, url)), sha256(slice), `partial ${i}: stored sha256 of its slice`);
    const hp = await tusHead(url);
    assert.equal(hp.status, 200, `HEAD partial ${i}: status`);
    assert.equal(hp.headers.get('upload-concat'), 'partial', `HEAD partial ${i}: Upload-Concat`);
    assert.equal(hp.headers.get('upload-offset'), String(slice.length), `HEAD partial ${i}: Upload-Offset`);
    assert.equal(hp.headers.get('upload-length'), String(slice.length), `HEAD partial ${i}: Upload-Length`);
    if (partialMetadata !== undefined) {
      assert.equal(hp.headers.get('upload-metadata'), partialMetadata, `HEAD partial ${i}: Upload-Metadata`);
    }
  }
  return partialUrls;
}

// The partial-creation POSTs of a recorder log, keyed by the resolved Location.
function partialPosts(srv, log) {
  const m = new Map();
  for (const e of log) {
    if (e.method === 'POST' && e.concat === 'partial') {
      assert.equal(e.status, 201, 'partial POST status');
      assert.ok(e.location, 'partial POST Location');
      m.set(new URL(e.location, srv.endpoint).toString(), e);
    }
  }
  return m;
}

// ------------------------------------------------------ tus concatenation --

test('parallelUploads: 3 (partial uploads + final concatenation)', { timeout: TEST_TIMEOUT }, async () => {
  await withServer(async (srv) => {
    const data = randomBytes(6 * MiB + 5);
    const parts = splitParts(data.length, 3);
    const rec = recorder();
    const up = await runUpload(data, {
      endpoint: srv.endpoint,
      parallelUploads: 3,
      metadata: { filename: 'concat.bin' },
      metadataForPartialUploads: { part: 'yes' },
      ...rec.options,
    });
    checkAnsweredTusResponses(rec.log);
    const posts = partialPosts(srv, rec.log);
    assert.equal(posts.size, 3, 'three partial uploads created');
    assert.deepEqual([...posts.values()].map((e) => Number(e.length)).sort((a, b) => a - b),
      parts.map((p) => p.end - p.start).sort((a, b) => a - b), 'partial Upload-Length values');
    for (const [url, post] of posts) {
      const p = patches(rec.log).filter((e) => e.url === url);
      assert.deepEqual(p.map((e) => [e.offset, e.status, e.resOffset]), [['0', 204, post.length]],
        `one PATCH for the partial upload ${url}`);
    }
    assert.equal(rec.log.length, 7, 'requests: 3 partial POSTs, 3 PATCHes, 1 final POST');
    assert.equal(rec.log[6].method, 'POST', 'the final POST comes last');
    const urls = await checkConcatenation(srv, data, parts, up.url, rec, {
      finalMetadata: rec.log[6].metadata, partialMetadata: [...posts.values()][0].metadata,
    });
    // each partial was created with the Upload-Length of the slice it is listed for
    for (const [i, url] of urls.entries()) {
      assert.equal(posts.get(url).length, String(parts[i].end - parts[i].start), `partial ${i}: Upload-Length`);
    }
    const o = await fetch(srv.endpoint, { method: 'OPTIONS', headers: { 'Tus-Resumable': '1.0.0' } });
    assert.ok((o.headers.get('tus-extension') || '').split(',').map((x) => x.trim()).includes('concatenation'),
      `OPTIONS Tus-Extension lists concatenation: ${o.headers.get('tus-extension')}`);
  });
});

test('parallelUploads: 3 with uploadDataDuringCreation', { timeout: TEST_TIMEOUT }, async () => {
  await withServer(async (srv) => {
    const data = randomBytes(5 * MiB + 2);
    const parts = splitParts(data.length, 3);
    const rec = recorder();
    const up = await runUpload(data, {
      endpoint: srv.endpoint, parallelUploads: 3, uploadDataDuringCreation: true, ...rec.options,
    });
    checkAnsweredTusResponses(rec.log);
    const posts = partialPosts(srv, rec.log);
    assert.equal(posts.size, 3, 'three partial uploads created');
    for (const e of posts.values()) {
      assert.equal(e.contentType, 'application/offset+octet-stream', 'partial POST Content-Type');
      assert.equal(e.resOffset, e.length, 'partial POST 201 Upload-Offset: the whole slice');
    }
    assert.equal(patches(rec.log).length, 0, 'no PATCH');
    assert.equal(rec.log.length, 4, 'requests: 3 partial POSTs with data, 1 final POST');
    await checkConcatenation(srv, data, parts, up.url, rec);
  });
});

test('parallelUploads: 2 with uneven parallelUploadBoundaries, chunkSize and uploadDataDuringCreation',
  { timeout: TEST_TIMEOUT }, async () => {
    await withServer(async (srv) => {
      const data = randomBytes(4 * MiB + 1000);
      const parts = [{ start: 0, end: MiB + 17 }, { start: MiB + 17, end: data.length }];
      const rec = recorder();
      const up = await runUpload(data, {
        endpoint: srv.endpoint,
        parallelUploads: 2,
        parallelUploadBoundaries: parts.map((p) => ({ ...p })),
        uploadDataDuringCreation: true,
        chunkSize: MiB,
        ...rec.options,
      });
      checkAnsweredTusResponses(rec.log);
      const urls = await checkConcatenation(srv, data, parts, up.url, rec);
      const posts = partialPosts(srv, rec.log);
      // part 0: 1 MiB in the POST, 17 bytes by PATCH; part 1: 1 MiB in the POST, then 1 MiB PATCHes
      const expect = [
        [[String(MiB), 204, String(MiB + 17)]],
        [[String(MiB), 204, String(2 * MiB)], [String(2 * MiB), 204, String(3 * MiB)],
          [String(3 * MiB), 204, String(3 * MiB + 983)]],
      ];
      for (const [i, url] of urls.entries()) {
        assert.equal(posts.get(url).resOffset, String(MiB), `partial ${i}: POST 201 Upload-Offset`);
        assert.deepEqual(patches(rec.log).filter((e) => e.url === url).map((e) => [e.offset, e.status, e.resOffset]),
          expect[i], `partial ${i}: PATCHes (Upload-Offset, status, answered Upload-Offset)`);
      }
    });
  });

test('parallelUploads: 3 resumed from the URL storage after abort()', { timeout: TEST_TIMEOUT }, async (t) => {
  await withServer(async (srv) => {
    const data = randomBytes(6 * MiB + 3);
    const parts = splitParts(data.length, 3);
    const storage = memoryUrlStorage();
    const chunk = 512 * 1024;
    // 1: three partial uploads in 512 KiB chunks; abort once the URLs are stored and a chunk is in
    const rec1 = recorder();
    await runUploadAbortingOnChunk(data, {
      endpoint: srv.endpoint, parallelUploads: 3, chunkSize: chunk, urlStorage: storage, ...rec1.options,
    }, () => storage.items.size === 1);
    const stored = [...storage.items.values()];
    assert.equal(stored.length, 1, 'one URL storage entry');
    assert.equal(stored[0].parallelUploadUrls.length, 3, 'the entry holds the three partial URLs');
    assert.equal(rec1.log.filter((e) => e.method === 'POST' && e.concat && e.concat.startsWith('final')).length, 0,
      'no final POST before the abort');
    // let the server finish the requests the abort cut (one log line per request sent)
    // (best effort: a request aborted before its head left the client never shows up)
    await waitFor('a log line for every request of the aborted upload',
      () => serverLog(srv).length >= rec1.log.length, 2000).catch(() => {});

    // 2: a new Upload finds the entry and resumes every partial upload where the server is
    const rec2 = recorder();
    const up2 = await new Promise((resolve, reject) => {
      const u = new Upload(data, {
        endpoint: srv.endpoint, parallelUploads: 3, chunkSize: chunk, urlStorage: storage, retryDelays: null,
        ...rec2.options,
        onSuccess: () => resolve(u),
        onError: reject,
      });
      u.findPreviousUploads().then((prev) => {
        assert.equal(prev.length, 1, 'findPreviousUploads');
        u.resumeFromPreviousUpload(prev[0]);
        u.start();
      }).catch(reject);
    });
    checkAnsweredTusResponses(rec2.log);
    const heads = rec2.log.filter((e) => e.method === 'HEAD');
    assert.deepEqual(heads.map((e) => e.url).sort(), [...stored[0].parallelUploadUrls].sort(),
      'one HEAD per stored partial URL');
    assert.equal(rec2.log.filter((e) => e.method === 'POST' && e.concat === 'partial').length, 0,
      'no partial upload created again');
    let resumedBytes = 0;
    for (const h of heads) {
      const i = stored[0].parallelUploadUrls.indexOf(h.url);
      const len = parts[i].end - parts[i].start;
      assert.equal(h.status, 200, `HEAD partial ${i}: status`);
      assert.equal(h.resLength, String(len), `HEAD partial ${i}: Upload-Length`);
      const off = Number(h.resOffset);
      assert.ok(off >= 0 && off <= len, `HEAD partial ${i}: Upload-Offset ${h.resOffset} within 0..${len}`);
      resumedBytes += off;
      const p = patches(rec2.log).filter((e) => e.url === h.url);
      if (off === len) {
        assert.equal(p.length, 0, `partial ${i} was complete: no PATCH`);
      } else {
        assert.equal(p[0].offset, String(off), `partial ${i}: first PATCH at the HEAD offset`);
        assert.ok(p.every((e) => e.status === 204), `partial ${i}: PATCH statuses ${p.map((e) => e.status)}`);
        assert.equal(p[p.length - 1].resOffset, String(len), `partial ${i}: last PATCH completes it`);
      }
    }
    assert.ok(resumedBytes >= chunk, `the server held ${resumedBytes} bytes at resume, expected at least one chunk`);
    await checkConcatenation(srv, data, parts, up2.url, rec2);
    // the server saw exactly three creations and one concatenation
    const posts = await waitFor('the final POST in the log', () => {
      const l = serverLog(srv).filter((e) => e.method === 'POST');
      return l.length >= 4 ? l : null;
    });
    assert.deepEqual(posts.map((e) => e.status), [201, 201, 201, 201], 'POSTs in the server log');
    t.diagnostic(`resumed with ${resumedBytes} of ${data.length} bytes already on the server`);
  });
});

// ------------------------------------------------------- tus 1.0 resuming --

test('resume through the URL storage (fingerprint) after abort() after the first chunk', { timeout: TEST_TIMEOUT }, async () => {
  await withServer(async (srv) => {
    const data = randomBytes(4 * MiB + 321);
    const storage = new FileUrlStorage(path.join(srv.tmp, 'tus-urls.json'));
    const rec1 = recorder();
    const up1 = await runUploadAbortingOnChunk(data, {
      endpoint: srv.endpoint, chunkSize: MiB, urlStorage: storage, ...rec1.options,
    }, (u, size, accepted) => accepted === MiB);
    const url1 = up1.url;
    assert.deepEqual(rec1.log.map((e) => [e.method, e.status]), [['POST', 201], ['PATCH', 204]], 'first upload requests');
    assert.equal(fileSha(dataPath(srv, url1)), sha256(data.subarray(0, MiB)), 'stored first chunk');

    const rec2 = recorder();
    const available = [];
    let up2;
    const done = new Promise((resolve, reject) => {
      up2 = new Upload(data, {
        endpoint: srv.endpoint, chunkSize: MiB, urlStorage: storage, removeFingerprintOnSuccess: true,
        retryDelays: null, ...rec2.options,
        onUploadUrlAvailable: () => available.push(up2.url),
        onSuccess: resolve,
        onError: reject,
      });
    });
    const prev = await up2.findPreviousUploads();
    assert.equal(prev.length, 1, 'one stored upload for the fingerprint');
    assert.equal(prev[0].uploadUrl, url1, 'stored URL');
    assert.equal(prev[0].size, data.length, 'stored size');
    up2.resumeFromPreviousUpload(prev[0]);
    up2.start();
    await done;
    checkAnsweredTusResponses(rec2.log);
    assert.deepEqual(available, [url1], 'onUploadUrlAvailable: the stored URL, once');
    assert.equal(up2.url, url1, 'second upload URL');
    assert.deepEqual(rec2.log.map((e) => [e.method, e.status, e.offset ?? null, e.resOffset]), [
      ['HEAD', 200, null, String(MiB)],
      ['PATCH', 204, String(MiB), String(2 * MiB)],
      ['PATCH', 204, String(2 * MiB), String(3 * MiB)],
      ['PATCH', 204, String(3 * MiB), String(4 * MiB)],
      ['PATCH', 204, String(4 * MiB), String(data.length)],
    ], 'second upload: HEAD, then PATCHes from the server offset');
    assert.equal(fileSha(dataPath(srv, url1)), sha256(data), 'stored sha256');
    // removeFingerprintOnSuccess: the entry goes (the client does not wait for the removal)
    const end = Date.now() + 3000;
    let left;
    while ((left = await storage.findAllUploads()).length && Date.now() < end) await sleep(20);
    assert.equal(left.length, 0, 'removeFingerprintOnSuccess removed the URL storage entry');
    const log = await waitFor('7 request log lines', () => {
      const l = serverLog(srv);
      return l.length >= 7 ? l : null;
    });
    const id = uploadId(url1);
    assert.deepEqual(log.map((e) => [e.method, e.path, e.status]), [
      ['POST', '/files/', 201], ['PATCH', `/files/${id}`, 204], ['HEAD', `/files/${id}`, 200],
      ['PATCH', `/files/${id}`, 204], ['PATCH', `/files/${id}`, 204], ['PATCH', `/files/${id}`, 204],
      ['PATCH', `/files/${id}`, 204],
    ], 'server request log: one creation, then HEAD and PATCHes on the same upload');
  });
});

// Cuts the first PATCH through the proxy after cutAt body bytes; returns what happened.
async function cutFirstPatch(srv, proxy, data, cutAt, options) {
  let armed = false;
  const rec = recorder();
  const res = await runUploadExpectingError(data, {
    endpoint: proxy.endpoint,
    ...options,
    onBeforeRequest(req) {
      rec.options.onBeforeRequest(req);
      if (!armed && req.getMethod() === 'PATCH') { armed = true; proxy.armCut(cutAt); }
    },
    onAfterResponse: rec.options.onAfterResponse,
  });
  assert.equal(proxy.cuts, 1, `the proxy cut one request (the upload failed with: ${res.error})`);
  const url = res.upload.url;
  const id = uploadId(url);
  // the server has seen the cut: its log line says so, with the body bytes it got
  const line = await waitFor('the log line of the cut PATCH',
    () => serverLog(srv).find((e) => e.method === 'PATCH' && e.path === `/files/${id}`));
  assert.equal(line.status, '- (client went away)', `log line of the cut PATCH: ${line.line}`);
  assert.equal(line.bytesIn, cutAt, 'body bytes the server got before the cut');
  return { rec, url, id, error: res.error };
}

test('resume after the TCP connection was cut mid-PATCH (retries off, new Upload with uploadUrl)',
  { timeout: TEST_TIMEOUT }, async () => {
    await withServer(async (srv) => {
      const proxy = await cuttingProxy(srv.port);
      srv.defer(() => proxy.close());
      const data = randomBytes(6 * MiB + 1);
      const cutAt = 2 * MiB + 777;
      const cut = await cutFirstPatch(srv, proxy, data, cutAt, {});
      assert.deepEqual(cut.rec.log.map((e) => [e.method, e.status]), [['POST', 201], ['PATCH', null]],
        'first upload: POST answered, PATCH cut');
      assert.match(String(cut.error), /failed to upload chunk at offset 0/, 'first upload error');

      const rec = recorder();
      const up2 = await runUpload(data, { uploadUrl: cut.url, ...rec.options });
      checkAnsweredTusResponses(rec.log);
      assert.equal(up2.url, cut.url, 'same upload URL');
      assert.deepEqual(rec.log.map((e) => [e.method, e.status, e.offset ?? null, e.resOffset]), [
        ['HEAD', 200, null, String(cutAt)],
        ['PATCH', 204, String(cutAt), String(data.length)],
      ], 'second upload: HEAD says every byte before the cut is kept, one PATCH sends the rest');
      assert.equal(fileSha(dataPath(srv, up2.url)), sha256(data), 'stored sha256');
      const log = await waitFor('4 request log lines', () => {
        const l = serverLog(srv);
        return l.length >= 4 ? l : null;
      });
      assert.deepEqual(log.map((e) => [e.method, e.status, e.bytesIn]), [
        ['POST', 201, 0], ['PATCH', '- (client went away)', cutAt], ['HEAD', 200, 0],
        ['PATCH', 204, data.length - cutAt],
      ], 'server request log');
    });
  });

test('the client resumes by itself after the TCP connection was cut mid-PATCH (retryDelays)',
  { timeout: TEST_TIMEOUT }, async () => {
    await withServer(async (srv) => {
      const proxy = await cuttingProxy(srv.port);
      srv.defer(() => proxy.close());
      const data = randomBytes(6 * MiB + 11);
      const cutAt = 3 * MiB + 5;
      const rec = recorder();
      let armed = false;
      const up = await runUpload(data, {
        endpoint: proxy.endpoint,
        retryDelays: [300],
        onBeforeRequest(req) {
          rec.options.onBeforeRequest(req);
          if (!armed && req.getMethod() === 'PATCH') { armed = true; proxy.armCut(cutAt); }
        },
        onAfterResponse: rec.options.onAfterResponse,
      });
      checkAnsweredTusResponses(rec.log);
      assert.equal(proxy.cuts, 1, 'the proxy cut one request');
      assert.deepEqual(rec.log.map((e) => [e.method, e.status]), [['POST', 201], ['PATCH', null], ['HEAD', 200], ['PATCH', 204]],
        'requests: creation, cut PATCH, then the client\'s own HEAD and PATCH');
      const resumedAt = Number(rec.log[2].resOffset);
      assert.ok(resumedAt > 0 && resumedAt <= cutAt, `HEAD Upload-Offset ${resumedAt} within 1..${cutAt}`);
      assert.equal(rec.log[3].offset, String(resumedAt), 'the retry PATCH starts at the HEAD offset');
      assert.equal(rec.log[3].resOffset, String(data.length), 'the retry PATCH completes the upload');
      assert.equal(fileSha(dataPath(srv, up.url)), sha256(data), 'stored sha256');
      const log = await waitFor('4 request log lines', () => {
        const l = serverLog(srv);
        return l.length >= 4 ? l : null;
      });
      assert.equal(log.filter((e) => e.method === 'POST').length, 1, 'one creation in the server log');
      const cutLine = log.find((e) => e.method === 'PATCH' && typeof e.status === 'string');
      assert.ok(cutLine, 'the cut PATCH is in the server log');
      assert.ok(cutLine.bytesIn <= cutAt, `cut PATCH got ${cutLine.bytesIn} body bytes; ${cutAt} were forwarded`);
      // whether the server saw the FIN first or the HEAD ended the PATCH, it keeps every byte it got
      assert.equal(resumedAt, cutLine.bytesIn, `HEAD Upload-Offset vs the body bytes of the cut PATCH (${cutLine.line})`);
    });
  });

// ----------------------------------------------------------- IETF drafts --

function checkIetfRequests(log, d) {
  for (const e of log) {
    assert.equal(e.interop, d.interop, `${e.method}: Upload-Draft-Interop-Version sent`);
    assert.equal(e.tusResumable, undefined, `${e.method}: no Tus-Resumable sent`);
    if (e.status !== null) assert.ok(is2xx(e.status), `${e.method} ${e.url}: status ${e.status}`);
  }
}

function ietfHead(url, d) {
  return fetch(url, { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': d.interop } });
}

async function checkIetfComplete(srv, url, data, d) {
  assert.equal(fileSha(dataPath(srv, url)), sha256(data), 'stored sha256');
  const h = await ietfHead(url, d);
  assert.ok(is2xx(h.status), `HEAD status ${h.status}`);
  assert.equal(h.headers.get('upload-offset'), String(data.length), 'HEAD Upload-Offset');
  assert.equal(h.headers.get('upload-complete'), '?1', 'HEAD Upload-Complete');
}

for (const d of IETF) {
  test(`${d.protocol}: whole file in one PATCH`, { timeout: TEST_TIMEOUT }, async () => {
    await withServer(async (srv) => {
      const data = randomBytes(5 * MiB + 9);
      const rec = recorder();
      const up = await runUpload(data, { endpoint: srv.endpoint, protocol: d.protocol, ...rec.options });
      checkIetfRequests(rec.log, d);
      assert.deepEqual(rec.log.map((e) => [e.method, e.complete, e.length ?? null, e.offset ?? null]), [
        ['POST', '?0', String(data.length), null],
        ['PATCH', '?1', null, '0'],
      ], 'requests (method, Upload-Complete, Upload-Length, Upload-Offset)');
      assert.equal(rec.log[1].contentType, d.contentType, 'PATCH Content-Type');
      assert.ok(rec.log[0].location, 'creation Location');
      assert.equal(rec.log[1].resOffset, String(data.length), 'PATCH answer: Upload-Offset');
      assert.equal(rec.log[1].resComplete, '?1', 'PATCH answer: Upload-Complete');
      await checkIetfComplete(srv, up.url, data, d);
      const log = await waitFor('2 request log lines', () => {
        const l = serverLog(srv);
        return l.length >= 2 ? l : null;
      });
      assert.deepEqual(log.slice(0, 2).map((e) => [e.method, e.bytesIn]), [['POST', 0], ['PATCH', data.length]],
        'server request log');
    });
  });

  test(`${d.protocol}: chunkSize 1 MiB from a Buffer (last PATCH Upload-Complete: ?1)`, { timeout: TEST_TIMEOUT }, async () => {
    await withServer(async (srv) => {
      const data = randomBytes(3 * MiB + 77);
      const rec = recorder();
      const up = await runUpload(data, { endpoint: srv.endpoint, protocol: d.protocol, chunkSize: MiB, ...rec.options });
      checkIetfRequests(rec.log, d);
      assert.equal(rec.log[0].method, 'POST');
      assert.deepEqual(patches(rec.log).map((e) => [e.offset, e.complete, e.resOffset]), [
        ['0', '?0', String(MiB)],
        [String(MiB), '?0', String(2 * MiB)],
        [String(2 * MiB), '?0', String(3 * MiB)],
        [String(3 * MiB), '?1', String(data.length)],
      ], 'PATCHes (Upload-Offset, Upload-Complete sent, Upload-Offset answered)');
      assert.equal(rec.log.length, 5, 'requests: POST + 4 PATCHes');
      assert.equal(rec.log[4].resComplete, '?1', 'last PATCH answer: Upload-Complete');
      await checkIetfComplete(srv, up.url, data, d);
    });
  });

  test(`${d.protocol}: chunkSize 1 MiB from a Readable (every PATCH Upload-Complete: ?0; done at Upload-Length)`,
    { timeout: TEST_TIMEOUT }, async () => {
      await withServer(async (srv) => {
        const data = randomBytes(3 * MiB + 4321);
        const rec = recorder();
        const up = await runUpload(readableOf(data), {
          endpoint: srv.endpoint, protocol: d.protocol, chunkSize: MiB, uploadSize: data.length, ...rec.options,
        });
        checkIetfRequests(rec.log, d);
        assert.deepEqual([rec.log[0].method, rec.log[0].length], ['POST', String(data.length)], 'creation with Upload-Length');
        assert.deepEqual(patches(rec.log).map((e) => [e.offset, e.complete, e.resOffset]), [
          ['0', '?0', String(MiB)],
          [String(MiB), '?0', String(2 * MiB)],
          [String(2 * MiB), '?0', String(3 * MiB)],
          [String(3 * MiB), '?0', String(data.length)],
        ], 'PATCHes (Upload-Offset, Upload-Complete sent, Upload-Offset answered)');
        assert.equal(rec.log[4].resComplete, '?1',
          'the PATCH that reaches Upload-Length is answered Upload-Complete: ?1 although it said ?0');
        await checkIetfComplete(srv, up.url, data, d);
      });
    });

  test(`${d.protocol}: uploadDataDuringCreation, whole file in the creation POST`, { timeout: TEST_TIMEOUT }, async () => {
    await withServer(async (srv) => {
      const data = randomBytes(3 * MiB + 3);
      const rec = recorder();
      const up = await runUpload(data, {
        endpoint: srv.endpoint, protocol: d.protocol, uploadDataDuringCreation: true, ...rec.options,
      });
      checkIetfRequests(rec.log, d);
      assert.deepEqual(rec.log.map((e) => [e.method, e.complete, e.length, e.contentType, e.resOffset, e.resComplete]), [
        ['POST', '?1', String(data.length), d.contentType, String(data.length), '?1'],
      ], 'one creation request carrying everything (method, Upload-Complete, Upload-Length, Content-Type, answered Upload-Offset and Upload-Complete)');
      assert.ok(rec.log[0].location, 'creation Location');
      await checkIetfComplete(srv, up.url, data, d);
    });
  });

  test(`${d.protocol}: uploadDataDuringCreation with chunkSize`, { timeout: TEST_TIMEOUT }, async () => {
    await withServer(async (srv) => {
      const data = randomBytes(2 * MiB + 500);
      const rec = recorder();
      const up = await runUpload(data, {
        endpoint: srv.endpoint, protocol: d.protocol, uploadDataDuringCreation: true, chunkSize: MiB, ...rec.options,
      });
      checkIetfRequests(rec.log, d);
      assert.deepEqual(rec.log.map((e) => [e.method, e.complete, e.offset ?? null, e.resOffset]), [
        ['POST', '?0', null, String(MiB)],
        ['PATCH', '?0', String(MiB), String(2 * MiB)],
        ['PATCH', '?1', String(2 * MiB), String(data.length)],
      ], 'requests (method, Upload-Complete, Upload-Offset sent, Upload-Offset answered)');
      assert.ok(rec.log[0].location, 'creation Location');
      assert.equal(rec.log[2].resComplete, '?1', 'last PATCH answer: Upload-Complete');
      await checkIetfComplete(srv, up.url, data, d);
    });
  });

  test(`${d.protocol}: resume through the URL storage after the connection was cut mid-PATCH`,
    { timeout: TEST_TIMEOUT }, async () => {
      await withServer(async (srv) => {
        const proxy = await cuttingProxy(srv.port);
        srv.defer(() => proxy.close());
        const data = randomBytes(5 * MiB + 13);
        const cutAt = 2 * MiB + 99;
        const storage = memoryUrlStorage();
        const cut = await cutFirstPatch(srv, proxy, data, cutAt, { protocol: d.protocol, urlStorage: storage });
        checkIetfRequests(cut.rec.log, d);
        assert.deepEqual(cut.rec.log.map((e) => [e.method, e.complete, e.status === null]),
          [['POST', '?0', false], ['PATCH', '?1', true]], 'first upload: creation answered, PATCH cut');

        const rec = recorder();
        const available = [];
        const up2 = await new Promise((resolve, reject) => {
          const u = new Upload(data, {
            endpoint: proxy.endpoint, protocol: d.protocol, urlStorage: storage, retryDelays: null, ...rec.options,
            onUploadUrlAvailable: () => available.push(u.url),
            onSuccess: () => resolve(u),
            onError: reject,
          });
          u.findPreviousUploads().then((prev) => {
            assert.equal(prev.length, 1, 'findPreviousUploads');
            assert.equal(prev[0].uploadUrl, cut.url, 'stored URL');
            u.resumeFromPreviousUpload(prev[0]);
            u.start();
          }).catch(reject);
        });
        checkIetfRequests(rec.log, d);
        assert.deepEqual(available, [cut.url], 'onUploadUrlAvailable: the stored URL, once');
        assert.deepEqual(rec.log.map((e) => [e.method, e.offset ?? null, e.complete ?? null, e.resOffset]), [
          ['HEAD', null, null, String(cutAt)],
          ['PATCH', String(cutAt), '?1', String(data.length)],
        ], 'second upload: HEAD at the cut, one PATCH with the rest');
        assert.equal(rec.log[0].resComplete, '?0', 'HEAD answer: Upload-Complete before the rest');
        assert.equal(rec.log[1].resComplete, '?1', 'last PATCH answer: Upload-Complete');
        await checkIetfComplete(srv, up2.url, data, d);
        const log = await waitFor('4 request log lines', () => {
          const l = serverLog(srv);
          return l.length >= 4 ? l : null;
        });
        assert.deepEqual(log.slice(0, 4).map((e) => [e.method, typeof e.status === 'number' ? is2xx(e.status) : e.status, e.bytesIn]), [
          ['POST', true, 0], ['PATCH', '- (client went away)', cutAt], ['HEAD', true, 0],
          ['PATCH', true, data.length - cutAt],
        ], 'server request log: one creation, the cut PATCH, HEAD, the rest');
      });
    });
}
