// Interop: the official tus-js-client (npm, pinned in package.json) in Node.js against
// build/resumed's tus 1.0.0 endpoint at /files/.
//
// Every test starts its own server on 127.0.0.1:0 with a temporary --dir, runs one or two
// uploads with Buffer (or Readable) input and checks the SHA-256 of DIR/uploads/<id>
// against the source. Client retries are off (retryDelays: null) so that any unexpected
// answer fails the test instead of being papered over.
//
// The server, client and checksum helpers are in lib.mjs (shared with
// tus-js-client-more.test.mjs); the pacing proxy is this file's own.
//
// Env: RESUMED_BIN (default <repo>/build/resumed).
// Run (from the repository root): node --test tests/interop/   (or tests/interop/run.sh)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import {
  MiB, TEST_TIMEOUT, Upload, sha256, fileSha, withServer, dataPath, tusHead, recorder, runUpload, patches,
  checkAllTusResponses, readableOf,
} from './lib.mjs';

// ---------------------------------------------------------------- helpers --

// A TCP proxy that paces client→server bytes (bytesPerSec; Infinity = no pacing) so that an
// upload can be caught mid-request. server→client bytes pass straight through.
async function pacingProxy(targetPort, bytesPerSec) {
  const state = { rate: bytesPerSec, sockets: new Set() };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    state.sockets.add(client);
    state.sockets.add(upstream);
    client.on('data', (chunk) => {
      upstream.write(chunk);
      if (Number.isFinite(state.rate)) {
        client.pause();
        setTimeout(() => client.resume(), (chunk.length / state.rate) * 1000);
      }
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const end = () => { client.destroy(); upstream.destroy(); };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  state.port = server.address().port;
  state.close = () => new Promise((r) => {
    for (const s of state.sockets) s.destroy();
    server.close(() => r());
  });
  return state;
}

// ------------------------------------------------------------------ tests --

test('single-request upload (whole file in one PATCH), metadata echoed', { timeout: TEST_TIMEOUT }, async () => {
  await withServer(async (srv) => {
    const data = randomBytes(5 * MiB + 123);
    const rec = recorder();
    const up = await runUpload(data, {
      endpoint: srv.endpoint,
      metadata: { filename: 'hello wörld.bin', filetype: 'application/octet-stream' },
      ...rec.options,
    });
    checkAllTusResponses(rec.log);
    assert.deepEqual(rec.log.map((e) => [e.method, e.status]), [['POST', 201], ['PATCH', 204]], 'requests');
    assert.equal(rec.log[0].length, String(data.length), 'Upload-Length sent');
    assert.equal(rec.log[1].offset, '0', 'PATCH Upload-Offset');
    assert.equal(rec.log[1].resOffset, String(data.length), 'PATCH 204 Upload-Offset');
    assert.equal(fileSha(dataPath(srv, up.url)), sha256(data), 'stored sha256');
    const h = await tusHead(up.url);
    assert.equal(h.status, 200, 'HEAD status');
    assert.equal(h.headers.get('upload-offset'), String(data.length), 'HEAD Upload-Offset');
    assert.equal(h.headers.get('upload-length'), String(data.length), 'HEAD Upload-Length');
    assert.equal(h.headers.get('upload-metadata'), rec.log[0].metadata, 'HEAD Upload-Metadata echoes the client\'s');
  });
});

test('chunkSize 1 MiB on a 5 MiB file', { timeout: TEST_TIMEOUT }, async () => {
  await withServer(async (srv) => {
    const data = randomBytes(5 * MiB);
    const rec = recorder();
    const chunks = [];
    const up = await runUpload(data, {
      endpoint: srv.endpoint,
      chunkSize: MiB,
      onChunkComplete: (size, accepted, total) => chunks.push([size, accepted, total]),
      ...rec.options,
    });
    checkAllTusResponses(rec.log);
    const p = patches(rec.log);
    assert.deepEqual(p.map((e) => e.offset), ['0', String(MiB), String(2 * MiB), String(3 * MiB), String(4 * MiB)],
      'PATCH offsets');
    assert.deepEqual(p.map((e) => [e.status, e.resOffset]),
      [1, 2, 3, 4, 5].map((i) => [204, String(i * MiB)]), 'PATCH (status, Upload-Offset)');
    assert.deepEqual(chunks, [1, 2, 3, 4, 5].map((i) => [MiB, i * MiB, 5 * MiB]), 'onChunkComplete');
    assert.equal(fileSha(dataPath(srv, up.url)), sha256(data), 'stored sha256');
  });
});

test('uploadDataDuringCreation: whole file in the creation POST', { timeout: TEST_TIMEOUT }, async () => {
  await withServer(async (srv) => {
    const data = randomBytes(3 * MiB + 7);
    const rec = recorder();
    const up = await runUpload(data, { endpoint: srv.endpoint, uploadDataDuringCreation: true, ...rec.options });
    checkAllTusResponses(rec.log);
    assert.deepEqual(rec.log.map((e) => [e.method, e.status, e.resOffset]), [['POST', 201, String(data.length)]],
      'requests: one creation POST carrying the data');
    assert.equal(rec.log[0].contentType, 'application/offset+octet-stream', 'POST Content-Type');
    assert.equal(fileSha(dataPath(srv, up.url)), sha256(data), 'stored sha256');
  });
});

test('uploadDataDuringCreation with chunkSize: first chunk in the POST, rest by PATCH', { timeout: TEST_TIMEOUT }, async () => {
  await withServer(async (srv) => {
    const data = randomBytes(3 * MiB + 500);
    const rec = recorder();
    const up = await runUpload(data, {
      endpoint: srv.endpoint, uploadDataDuringCreation: true, chunkSize: MiB, ...rec.options,
    });
    checkAllTusResponses(rec.log);
    assert.deepEqual(rec.log.map((e) => [e.method, e.status, e.offset ?? null, e.resOffset]), [
      ['POST', 201, null, String(MiB)],
      ['PATCH', 204, String(MiB), String(2 * MiB)],
      ['PATCH', 204, String(2 * MiB), String(3 * MiB)],
      ['PATCH', 204, String(3 * MiB), String(data.length)],
    ], 'requests (method, status, Upload-Offset sent, Upload-Offset answered)');
    assert.equal(fileSha(dataPath(srv, up.url)), sha256(data), 'stored sha256');
  });
});

test('uploadLengthDeferred with a Buffer and chunkSize', { timeout: TEST_TIMEOUT }, async () => {
  await withServer(async (srv) => {
    const data = randomBytes(3 * MiB + 12345);
    const rec = recorder();
    const up = await runUpload(data, {
      endpoint: srv.endpoint, uploadLengthDeferred: true, chunkSize: MiB, ...rec.options,
    });
    checkAllTusResponses(rec.log);
    assert.equal(rec.log[0].method, 'POST');
    assert.equal(rec.log[0].defer, '1', 'POST Upload-Defer-Length');
    assert.equal(rec.log[0].length, undefined, 'POST Upload-Length');
    const p = patches(rec.log);
    assert.equal(p.length, 4, 'number of PATCHes');
    assert.deepEqual(p.map((e) => e.status), [204, 204, 204, 204], 'PATCH statuses');
    assert.equal(p[3].length, String(data.length), 'last PATCH declares Upload-Length');
    assert.deepEqual(p.slice(0, 3).map((e) => e.length), [undefined, undefined, undefined], 'earlier PATCHes');
    assert.equal(p[3].resOffset, String(data.length), 'final Upload-Offset');
    const h = await tusHead(up.url);
    assert.equal(h.headers.get('upload-length'), String(data.length), 'HEAD Upload-Length');
    assert.equal(h.headers.get('upload-defer-length'), null, 'HEAD Upload-Defer-Length once known');
    assert.equal(fileSha(dataPath(srv, up.url)), sha256(data), 'stored sha256');
  });
});

// The length is deliberately not a multiple of chunkSize: tus-js-client 4.3.1 waits forever
// for the end of a stream whose length is (client bug tus/tus-js-client#779, open).
test('uploadLengthDeferred with a Readable stream', { timeout: TEST_TIMEOUT }, async () => {
  await withServer(async (srv) => {
    const data = randomBytes(4 * MiB + 4321);
    const rec = recorder();
    const up = await runUpload(readableOf(data), {
      endpoint: srv.endpoint, uploadLengthDeferred: true, chunkSize: MiB, ...rec.options,
    });
    checkAllTusResponses(rec.log);
    assert.equal(rec.log[0].defer, '1', 'POST Upload-Defer-Length');
    const p = patches(rec.log);
    assert.ok(p.every((e) => e.status === 204), `PATCH statuses ${p.map((e) => e.status)}`);
    assert.equal(p[p.length - 1].length, String(data.length), 'last PATCH declares Upload-Length');
    const h = await tusHead(up.url);
    assert.equal(h.headers.get('upload-offset'), String(data.length), 'HEAD Upload-Offset');
    assert.equal(h.headers.get('upload-length'), String(data.length), 'HEAD Upload-Length');
    assert.equal(fileSha(dataPath(srv, up.url)), sha256(data), 'stored sha256');
  });
});

test('resume from the stored URL after abort() mid-request', { timeout: TEST_TIMEOUT }, async (t) => {
  await withServer(async (srv) => {
    const data = randomBytes(32 * MiB);
    const proxy = await pacingProxy(srv.port, 16 * MiB);   // ~2 s for the whole body
    try {
      const endpoint = `http://127.0.0.1:${proxy.port}/files/`;
      // 1: start, abort once the client has sent 16 MiB (its socket buffers and the proxy's
      // hold far less than that, so the server has received part of the body)
      const rec1 = recorder();
      let sentAtAbort = null;
      let url1 = null;
      const aborted = new Promise((resolve, reject) => {
        const up1 = new Upload(data, {
          endpoint,
          retryDelays: null,
          ...rec1.options,
          onProgress(sent) {
            if (sentAtAbort === null && sent >= 16 * MiB) {
              sentAtAbort = sent;
              url1 = up1.url;
              up1.abort().then(resolve, reject);
            }
          },
          onSuccess: () => reject(new Error('first upload finished before it could be aborted')),
          onError: reject,
        });
        up1.start();
      });
      await aborted;
      assert.ok(url1, 'first upload has a URL');
      assert.deepEqual(rec1.log.map((e) => e.method), ['POST', 'PATCH'], 'first upload requests');
      // 2: a new Upload with uploadUrl = the first one's URL continues where the server is
      proxy.rate = Infinity;
      await new Promise((r) => setTimeout(r, 300));
      const rec2 = recorder();
      const up2 = await runUpload(data, { uploadUrl: url1, ...rec2.options });
      checkAllTusResponses(rec2.log);
      assert.equal(up2.url, url1, 'second upload URL');
      assert.equal(rec2.log[0].method, 'HEAD', 'second upload starts with HEAD');
      assert.equal(rec2.log[0].status, 200, 'HEAD status');
      const p = patches(rec2.log);
      assert.ok(p.length >= 1, 'second upload sent a PATCH');
      const resumedAt = Number(p[0].offset);
      assert.equal(String(resumedAt), rec2.log[0].resOffset, 'first PATCH starts at the HEAD offset');
      assert.ok(resumedAt > 0, `second upload's first PATCH starts at ${resumedAt}, expected > 0`);
      assert.ok(resumedAt <= sentAtAbort, `resumed at ${resumedAt} > ${sentAtAbort} bytes sent before abort`);
      assert.ok(p.every((e) => e.status === 204), 'PATCH statuses');
      assert.equal(fileSha(dataPath(srv, up2.url)), sha256(data), 'stored sha256');
      t.diagnostic(`aborted after ${sentAtAbort} bytes sent; resumed at ${resumedAt} of ${data.length}`);
    } finally {
      await proxy.close();
    }
  });
});

test('resume from the stored URL after abort() between chunks', { timeout: TEST_TIMEOUT }, async () => {
  await withServer(async (srv) => {
    const data = randomBytes(5 * MiB + 99);
    let url1 = null;
    await new Promise((resolve, reject) => {
      const up1 = new Upload(data, {
        endpoint: srv.endpoint,
        chunkSize: MiB,
        retryDelays: null,
        onChunkComplete(size, accepted) {
          if (accepted >= 2 * MiB && url1 === null) {
            url1 = up1.url;
            up1.abort().then(resolve, reject);
          }
        },
        onSuccess: () => reject(new Error('first upload finished')),
        onError: reject,
      });
      up1.start();
    });
    assert.equal(fileSha(dataPath(srv, url1)), sha256(data.subarray(0, 2 * MiB)), 'stored prefix after abort');
    const rec = recorder();
    const up2 = await runUpload(data, { uploadUrl: url1, chunkSize: MiB, ...rec.options });
    checkAllTusResponses(rec.log);
    assert.deepEqual([rec.log[0].method, rec.log[0].status, rec.log[0].resOffset], ['HEAD', 200, String(2 * MiB)],
      'HEAD on resume');
    assert.deepEqual(patches(rec.log).map((e) => [e.offset, e.status]),
      [[String(2 * MiB), 204], [String(3 * MiB), 204], [String(4 * MiB), 204], [String(5 * MiB), 204]],
      'PATCHes of the resumed upload');
    assert.equal(fileSha(dataPath(srv, up2.url)), sha256(data), 'stored sha256');
  });
});

test('overridePatchMethod: POST + X-HTTP-Method-Override: PATCH', { timeout: TEST_TIMEOUT }, async () => {
  await withServer(async (srv) => {
    const data = randomBytes(3 * MiB + 1);
    const rec = recorder();
    const up = await runUpload(data, {
      endpoint: srv.endpoint, overridePatchMethod: true, chunkSize: MiB, ...rec.options,
    });
    checkAllTusResponses(rec.log);
    assert.deepEqual(rec.log.map((e) => [e.method, e.override ?? null, e.offset ?? null, e.status]), [
      ['POST', null, null, 201],
      ['POST', 'PATCH', '0', 204],
      ['POST', 'PATCH', String(MiB), 204],
      ['POST', 'PATCH', String(2 * MiB), 204],
      ['POST', 'PATCH', String(3 * MiB), 204],
    ], 'requests (method, override, Upload-Offset, status)');
    assert.equal(fileSha(dataPath(srv, up.url)), sha256(data), 'stored sha256');
  });
});

test('abort(true) terminates the upload (DELETE)', { timeout: TEST_TIMEOUT }, async () => {
  await withServer(async (srv) => {
    const data = randomBytes(4 * MiB);
    const rec = recorder();
    let url1 = null;
    await new Promise((resolve, reject) => {
      const up = new Upload(data, {
        endpoint: srv.endpoint,
        chunkSize: MiB,
        retryDelays: null,
        ...rec.options,
        onChunkComplete(size, accepted) {
          if (url1 === null) {
            url1 = up.url;
            try {
              assert.equal(accepted, MiB, 'bytes accepted after the first chunk');
              assert.equal(fileSha(dataPath(srv, url1)), sha256(data.subarray(0, MiB)), 'stored first chunk');
            } catch (err) { reject(err); return; }
            up.abort(true).then(resolve, reject);
          }
        },
        onSuccess: () => reject(new Error('upload finished')),
        onError: reject,
      });
      up.start();
    });
    checkAllTusResponses(rec.log);
    assert.deepEqual(rec.log.map((e) => [e.method, e.status]), [['POST', 201], ['PATCH', 204], ['DELETE', 204]],
      'requests');
    const h = await tusHead(url1);
    assert.equal(h.status, 404, 'HEAD after termination');
    assert.equal(h.headers.get('upload-offset'), null, 'Upload-Offset on the 404');
    const p = dataPath(srv, url1);
    assert.ok(!fs.existsSync(p), 'data file removed');
    assert.ok(!fs.existsSync(`${p}.meta`), 'meta file removed');
  });
});

test('resuming a finished upload from its URL succeeds without sending data', { timeout: TEST_TIMEOUT }, async () => {
  await withServer(async (srv) => {
    const data = randomBytes(MiB + 3);
    const up1 = await runUpload(data, { endpoint: srv.endpoint });
    const rec = recorder();
    await runUpload(data, { uploadUrl: up1.url, ...rec.options });
    checkAllTusResponses(rec.log);
    assert.deepEqual(rec.log.map((e) => [e.method, e.status, e.resOffset]), [['HEAD', 200, String(data.length)]],
      'requests of the second upload');
    assert.equal(fileSha(dataPath(srv, up1.url)), sha256(data), 'stored sha256');
  });
});

test('zero-length upload', { timeout: TEST_TIMEOUT }, async () => {
  await withServer(async (srv) => {
    const rec = recorder();
    const up = await runUpload(Buffer.alloc(0), { endpoint: srv.endpoint, ...rec.options });
    checkAllTusResponses(rec.log);
    assert.deepEqual(rec.log.map((e) => [e.method, e.length, e.status]), [['POST', '0', 201]], 'requests');
    assert.equal(fileSha(dataPath(srv, up.url)), sha256(Buffer.alloc(0)), 'stored sha256');
    const h = await tusHead(up.url);
    assert.deepEqual([h.status, h.headers.get('upload-offset'), h.headers.get('upload-length')], [200, '0', '0'],
      'HEAD of the 0-byte upload');
  });
});
