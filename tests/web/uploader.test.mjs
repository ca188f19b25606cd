// Unit tests for web/uploader.js (the browser upload client), under Node's built-in test
// runner with a fake XMLHttpRequest and in-memory servers (tests/web/fakexhr.mjs).
//
// Run from the repository root:   node --test tests/web/
// Mutation checks: UPLOADER_JS=/tmp/mutant.js node --test tests/web/  loads another copy.

import { test as nodeTest, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import {
  FakeServer, MemoryStorage, ArticleModel, TusModel, makeFile, pattern, sleep, until,
} from './fakexhr.mjs';

const require = createRequire(import.meta.url);
const { Uploader, UploadQueue, fingerprint, backoffDelay, articleFileId } = process.env.UPLOADER_JS
  ? require(path.resolve(process.env.UPLOADER_JS))
  : require('../../web/uploader.js');

const A = 'http://h/';         // the article endpoint
const T = 'http://h/files/';   // the tus endpoint
const FAST = { retryDelay: 1, retryMaxDelay: 4, timeout: 3000 };
const HANG_MS = 4000;              // a test still running after this fails (a hang, not a pass)
const LIMIT = { timeout: 10000 };  // node's own limit, a backstop

// node:test reports a test that hits its `timeout` as cancelled, not failed, and cancels
// every pending test when the event loop runs dry (a request nobody answers and no timer).
// This wrapper races each test against a timer of its own: a hang is an ordinary failure.
function test(name, opts, fn) {
  if (typeof opts === 'function') { fn = opts; opts = {}; }
  return nodeTest(name, opts, async (t) => {
    let timer;
    try {
      await Promise.race([
        fn(t),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`hung: not finished within ${HANG_MS} ms`)), HANG_MS);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  });
}

// ------------------------------------------------------------------ helpers --

// Uploaders still running when a test ends are stopped, so no timer outlives it.
const live = new Set();
afterEach(() => {
  for (const up of live) up.stop();
  live.clear();
});

function newUploader(options) {
  const up = new Uploader(Object.assign({}, FAST, options));
  live.add(up);
  return up;
}

function articleSetup({ size = 1000, bytes, file, options = {}, storage } = {}) {
  const model = new ArticleModel(A);
  const server = new FakeServer((req) => model.handle(req));
  storage = storage || new MemoryStorage();
  bytes = bytes || pattern(size);
  file = file || makeFile(bytes);
  const up = newUploader(Object.assign({ file, endpoint: A, storage, XMLHttpRequest: server.XMLHttpRequest }, options));
  return { model, server, storage, file, bytes, up, id: articleFileId(file) };
}

// Two article uploads, files 'a' and 'b' of `size` bytes, sharing a queue of one place.
function queuedPair({ size = 1000, aOptions = {} } = {}) {
  const model = new ArticleModel(A);
  const server = new FakeServer((req) => model.handle(req));
  const queue = new UploadQueue({ concurrency: 1 });
  const fa = makeFile(pattern(size, 1), { name: 'a' });
  const fb = makeFile(pattern(size, 2), { name: 'b' });
  const opts = { endpoint: A, storage: new MemoryStorage(), XMLHttpRequest: server.XMLHttpRequest, queue };
  const a = newUploader({ file: fa, ...opts, ...aOptions });
  const b = newUploader({ file: fb, ...opts });
  return { model, server, queue, fa, fb, ida: articleFileId(fa), idb: articleFileId(fb), a, b };
}

function tusSetup({ size = 1000, bytes, file, options = {}, storage, model } = {}) {
  model = model || new TusModel(T);
  const server = new FakeServer((req) => model.handle(req));
  storage = storage || new MemoryStorage();
  bytes = bytes || pattern(size);
  file = file || makeFile(bytes);
  const up = newUploader(Object.assign({
    file, protocol: 'tus', endpoint: T, storage, XMLHttpRequest: server.XMLHttpRequest,
  }, options));
  return { model, server, storage, file, bytes, up };
}

// Records how a promise settles without awaiting it (and without unhandled rejections).
function track(promise) {
  const t = { settled: false, value: undefined, error: undefined, promise };
  promise.then((v) => { t.settled = true; t.value = v; }, (e) => { t.settled = true; t.error = e; });
  return t;
}

// Rejects if the promise has not settled within ms.
function within(promise, ms, what = 'promise') {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

function sameBytes(actual, expected, what = 'bytes') {
  assert.ok(actual, `${what}: nothing stored`);
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${what}: first difference at byte ${i}`);
  }
}

const isSend = (r) => r.method === 'PATCH' || (r.method === 'POST' && r.url.endsWith('/upload'));
const isLocate = (r) => r.method === 'HEAD' || (r.method === 'GET' && r.url.endsWith('/status'));
const failedRequest = (r) => r.failed || r.aborted || (r.status !== null && (r.status === 0 || r.status >= 400));

// Every request that follows a failed one asks the server for its offset (or creates anew).
function assertLocateAfterEachFailure(server) {
  const rs = server.requests;
  for (let i = 0; i + 1 < rs.length; i++) {
    if (failedRequest(rs[i])) {
      assert.ok(isLocate(rs[i + 1]) || rs[i + 1].method === 'POST' && !isSend(rs[i + 1]),
        `request ${i + 1} after a failure should ask for the offset; log: ${server.log().join(' | ')}`);
    }
  }
}

// The start offsets of the sends, in order.
const sendStarts = (server) => server.requests.filter(isSend)
  .map((r) => Number(r.header('x-start-byte') ?? r.header('upload-offset')));

// ------------------------------------------------------------------ backoff --

describe('backoffDelay', () => {
  test('bounds: between d/2 and d, d = base * 2^attempt', () => {
    assert.equal(backoffDelay(0, 1000, 30000, () => 0), 500);
    assert.equal(backoffDelay(0, 1000, 30000, () => 1), 1000);
    assert.equal(backoffDelay(0, 1000, 30000, () => 0.5), 750);
    assert.equal(backoffDelay(1, 1000, 30000, () => 0), 1000);
    assert.equal(backoffDelay(1, 1000, 30000, () => 1), 2000);
    assert.equal(backoffDelay(3, 1000, 30000, () => 0), 4000);
    assert.equal(backoffDelay(3, 1000, 30000, () => 1), 8000);
    for (let attempt = 0; attempt < 8; attempt++) {
      const d = Math.min(30000, 1000 * 2 ** attempt);
      for (const r of [0, 0.1, 0.37, 0.5, 0.9, 0.999999]) {
        const v = backoffDelay(attempt, 1000, 30000, () => r);
        assert.ok(v >= d / 2 && v <= d, `attempt ${attempt}, random ${r}: ${v} not in [${d / 2}, ${d}]`);
      }
    }
  });

  test('grows x2 per attempt', () => {
    const seq = [0, 1, 2, 3, 4].map((a) => backoffDelay(a, 100, 1e9, () => 0.5));
    assert.deepEqual(seq, [75, 150, 300, 600, 1200]);
  });

  test('capped at retryMaxDelay, also for huge attempt numbers', () => {
    assert.equal(backoffDelay(5, 1000, 30000, () => 1), 30000);   // 32000 capped
    assert.equal(backoffDelay(5, 1000, 30000, () => 0), 15000);
    assert.equal(backoffDelay(10, 1000, 30000, () => 0.5), 22500);
    for (const a of [50, 1000, 1e6]) {
      const v = backoffDelay(a, 1000, 30000, () => 1);
      assert.equal(v, 30000, `attempt ${a}`);
    }
  });

  test('the jitter comes from the given random function', () => {
    let calls = 0;
    backoffDelay(2, 10, 1000, () => { calls++; return 0.25; });
    assert.equal(calls, 1);
    assert.equal(backoffDelay(2, 10, 1000, () => 0.25), 25); // d = 40: 20 + 0.25*20
  });

  test('the uploader waits the backoff it computes (random from options)', LIMIT, async () => {
    let randomCalls = 0;
    const random = () => { randomCalls++; return 0; };
    const { server, up, model } = articleSetup({ options: { retryDelay: 40, retryMaxDelay: 40, random } });
    let failedAt = 0;
    server.handler = (req) => {
      if (req.method === 'POST' && !failedAt) { failedAt = Date.now(); return { status: 503 }; }
      return model.handle(req);
    };
    assert.equal(await up.upload(), true);
    const retried = server.requests[2];
    assert.equal(retried.method, 'GET');
    // random 0 → exactly d/2 = 20 ms
    assert.ok(retried.time - failedAt >= 18, `retried after ${retried.time - failedAt} ms`);
    assert.equal(randomCalls, 1, 'the jitter uses options.random, once per retry');
  });
});

// -------------------------------------------------------------- fingerprint --

describe('fingerprint', () => {
  const KiB = 1024;
  const big = pattern(200 * KiB, 7);
  const fp = (bytes, { name = 'a.bin', lastModified = 1, endpoint = A, protocol = 'tus' } = {}) =>
    fingerprint(makeFile(bytes, { name, lastModified }), endpoint, protocol);
  const flip = (bytes, i) => { const c = bytes.slice(); c[i] ^= 0xff; return c; };

  test('equal for identical inputs (different File objects)', async () => {
    assert.equal(await fp(big), await fp(big.slice()));
    assert.match(await fp(big), /^resumed:upload:/);
  });

  test('differs when name, size, lastModified, endpoint or protocol differ', async () => {
    const base = await fp(big);
    assert.notEqual(await fp(big, { name: 'b.bin' }), base, 'name');
    assert.notEqual(await fp(big.subarray(0, big.length - 1)), base, 'size');
    assert.notEqual(await fp(big, { lastModified: 2 }), base, 'lastModified');
    assert.notEqual(await fp(big, { endpoint: 'http://other/' }), base, 'endpoint');
    assert.notEqual(await fp(big, { protocol: 'article' }), base, 'protocol');
  });

  test('differs when the first or the last 64 KiB differ (same name, size, date)', async () => {
    const base = await fp(big);
    for (const i of [0, 1000, 64 * KiB - 1]) {
      assert.notEqual(await fp(flip(big, i)), base, `byte ${i} (head)`);
    }
    for (const i of [big.length - 64 * KiB, big.length - 1000, big.length - 1]) {
      assert.notEqual(await fp(flip(big, i)), base, `byte ${i} (tail)`);
    }
  });

  test('a change only in the middle of a file > 128 KiB does not change it (documented)', async () => {
    const base = await fp(big);
    assert.equal(await fp(flip(big, 64 * KiB)), base);
    assert.equal(await fp(flip(big, 100 * KiB)), base);
    assert.equal(await fp(flip(big, big.length - 64 * KiB - 1)), base);
  });

  test('small files: a change anywhere changes it', async () => {
    const small = pattern(5000, 3);
    const base = await fp(small);
    for (const i of [0, 2500, 4999]) assert.notEqual(await fp(flip(small, i)), base, `byte ${i}`);
  });

  test('the uploader keys its storage entry by fingerprint(file, endpoint, protocol)', LIMIT, async () => {
    const { server, up, file, storage, model } = tusSetup({ size: 3000 });
    let seen = null;
    server.handler = (req) => {
      if (req.method === 'PATCH') seen = storage.uploads();
      return model.handle(req);
    };
    assert.equal(await up.upload(), true);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].key, await fingerprint(file, T, 'tus'));
  });
});

// ------------------------------------------------------------------ article --

describe('article protocol', () => {
  test('happy path: status, then one upload with the right headers; bytes stored', LIMIT, async () => {
    const { server, model, up, bytes, id, file, storage } = articleSetup({ size: 1000 });
    assert.equal(await up.upload(), true);
    assert.equal(up.state, 'done');
    assert.equal(id, `f.bin-1000-${file.lastModified}`);
    assert.deepEqual(server.log(), ['GET /status -> 200', 'POST /upload 0+1000 -> 200']);
    const [st, post] = server.requests;
    assert.equal(st.url, 'http://h/status');
    assert.equal(st.header('X-File-Id'), id);
    assert.equal(post.url, 'http://h/upload');
    assert.equal(post.header('X-File-Id'), id);
    assert.equal(post.header('X-Start-Byte'), '0');
    assert.equal(post.header('X-File-Size'), '1000');
    assert.equal(post.header('X-Upload-Token'), null);
    sameBytes(post.body, bytes, 'request body');
    sameBytes(model.bytes(id), bytes, 'stored');
    assert.deepEqual(storage.uploads(), [], 'the storage entry is removed on success');
    assert.equal(up.offset, 1000);
    assert.equal(up.sent, 1000);
  });

  test('user headers are sent on every request', LIMIT, async () => {
    const { server, up } = articleSetup({ options: { headers: { 'X-Extra': 'yes' } } });
    assert.equal(await up.upload(), true);
    for (const r of server.requests) assert.equal(r.header('x-extra'), 'yes', r.method);
  });

  test('chunkSize: every body <= chunkSize, consecutive starts, stored bytes equal', LIMIT, async () => {
    const { server, model, up, bytes, id } = articleSetup({ size: 10000, options: { chunkSize: 3000 } });
    assert.equal(await up.upload(), true);
    const posts = server.byMethod('POST');
    assert.deepEqual(posts.map((r) => r.size), [3000, 3000, 3000, 1000]);
    assert.deepEqual(sendStarts(server), [0, 3000, 6000, 9000]);
    for (const r of posts) assert.ok(r.size <= 3000);
    for (const r of posts) {
      const s = Number(r.header('x-start-byte'));
      sameBytes(r.body, bytes.subarray(s, s + r.size), `body at ${s}`);
    }
    sameBytes(model.bytes(id), bytes, 'stored');
  });

  test('a network error mid-file: asks status, resends from the server offset (not 0, not sent)', LIMIT, async () => {
    const { server, model, up, bytes, id } = articleSetup({ size: 100000 });
    const sent = [];
    up.onProgress = (s) => sent.push(s);
    let cut = false;
    server.handler = (req) => {
      if (req.method === 'POST' && !cut) {
        cut = true;
        model.partial(req, 30000, 80000); // 80000 went out, the server kept 30000
        return;
      }
      return model.handle(req);
    };
    assert.equal(await up.upload(), true);
    assert.deepEqual(server.log(), [
      'GET /status -> 200', 'POST /upload 0+100000 -> neterr',
      'GET /status -> 200', 'POST /upload 30000+70000 -> 200',
    ]);
    assert.ok(sent.includes(80000), 'onProgress saw what went out');
    sameBytes(server.requests[3].body, bytes.subarray(30000), 'resent body');
    sameBytes(model.bytes(id), bytes, 'stored');
  });

  test('a network error between chunks resumes at the server offset', LIMIT, async () => {
    const { server, model, up, bytes, id } = articleSetup({ size: 10000, options: { chunkSize: 4000 } });
    let cut = false;
    server.handler = (req) => {
      if (req.method === 'POST' && req.header('x-start-byte') === '4000' && !cut) {
        cut = true;
        model.partial(req, 1500, 4000);
        return;
      }
      return model.handle(req);
    };
    assert.equal(await up.upload(), true);
    assert.deepEqual(sendStarts(server), [0, 4000, 5500, 9500]);
    assertLocateAfterEachFailure(server);
    sameBytes(model.bytes(id), bytes, 'stored');
  });

  for (const status of [0, 500, 502, 503, 409, 423]) {
    test(`status ${status} is retried (status asked first)`, LIMIT, async () => {
      const { server, model, up, bytes, id } = articleSetup({ size: 5000, options: { chunkSize: 2000 } });
      let n = 0;
      server.handler = (req) => {
        if (req.method === 'POST' && req.header('x-start-byte') === '2000' && n++ < 2) {
          return { status, statusText: 'Nope', body: 'try again later' };
        }
        return model.handle(req);
      };
      assert.equal(await up.upload(), true);
      assert.deepEqual(server.log(), [
        'GET /status -> 200', 'POST /upload 0+2000 -> 200',
        `POST /upload 2000+2000 -> ${status}`, 'GET /status -> 200',
        `POST /upload 2000+2000 -> ${status}`, 'GET /status -> 200',
        'POST /upload 2000+2000 -> 200', 'POST /upload 4000+1000 -> 200',
      ]);
      sameBytes(model.bytes(id), bytes, 'stored');
    });
  }

  test('a retriable status on the status request is retried too', LIMIT, async () => {
    const { server, model, up } = articleSetup();
    let n = 0;
    server.handler = (req) => (req.method === 'GET' && n++ === 0 ? { status: 502 } : model.handle(req));
    assert.equal(await up.upload(), true);
    assert.deepEqual(server.log(), ['GET /status -> 502', 'GET /status -> 200', 'POST /upload 0+1000 -> 200']);
  });

  const permanent = [
    { status: 400, statusText: 'Bad Request', body: 'X-File-Size differs from the size given before', reason: 'X-File-Size differs from the size given before' },
    { status: 403, statusText: 'Forbidden', headers: { 'Content-Type': 'application/problem+json' },
      body: JSON.stringify({ type: 'about:blank', title: 'Forbidden', detail: 'the upload token does not match' }),
      reason: 'the upload token does not match', notIn: '"detail"' },
    { status: 413, statusText: 'Payload Too Large', body: 'too large: the limit is 10 bytes\nsecond line', reason: 'too large: the limit is 10 bytes', notIn: 'second line' },
  ];
  for (const p of permanent) {
    test(`status ${p.status} is permanent: rejects with err.status and the server's reason, no more requests`, LIMIT, async () => {
      const { server, model, up } = articleSetup({ size: 5000, options: { chunkSize: 2000 } });
      server.handler = (req) => {
        if (req.method === 'POST' && req.header('x-start-byte') === '2000') {
          return { status: p.status, statusText: p.statusText, headers: p.headers, body: p.body };
        }
        return model.handle(req);
      };
      const err = await up.upload().then(() => null, (e) => e);
      assert.ok(err, 'upload() should reject');
      assert.equal(err.status, p.status);
      assert.ok(err.message.includes(p.reason), `message: ${err.message}`);
      if (p.notIn) assert.ok(!err.message.includes(p.notIn), `message: ${err.message}`);
      assert.equal(up.state, 'failed');
      assert.equal(up.error, err);
      const count = server.requests.length;
      assert.equal(count, 3);
      await sleep(30);
      assert.equal(server.requests.length, count, 'no request after a permanent error');
    });
  }

  test('a proxy\'s HTML error page gives its <title> as the reason, not markup', LIMIT, async () => {
    const { server, up } = articleSetup();
    const page = '<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';
    server.handler = (req) => (req.method === 'GET' ? { status: 200, body: '0' } : { status: 413, headers: { 'Content-Type': 'text/html' }, body: page });
    const err = await up.upload().then(() => null, (e) => e);
    assert.equal(err.status, 413);
    assert.match(err.message, /413 Request Entity Too Large/);
    assert.doesNotMatch(err.message, /<|nginx/);
  });

  test('a permanent status on the status request rejects without sending', LIMIT, async () => {
    const { server, up } = articleSetup();
    server.handler = () => ({ status: 401, statusText: 'Unauthorized', body: 'log in first' });
    const err = await up.upload().then(() => null, (e) => e);
    assert.equal(err.status, 401);
    assert.match(err.message, /log in first/);
    await sleep(20);
    assert.deepEqual(server.log(), ['GET /status -> 401']);
  });

  test('400 "Wrong start byte" is retried: status asked again, send from its count', LIMIT, async () => {
    const { server, model, up, bytes, id } = articleSetup({ size: 3000 });
    let moved = false;
    server.handler = (req) => {
      if (req.method === 'POST' && !moved) {
        moved = true; // someone else delivered the first 1200 bytes meanwhile
        model.append(id, 3000, bytes.subarray(0, 1200));
      }
      return model.handle(req);
    };
    assert.equal(await up.upload(), true);
    assert.deepEqual(server.log(), [
      'GET /status -> 200', 'POST /upload 0+3000 -> 400',
      'GET /status -> 200', 'POST /upload 1200+1800 -> 200',
    ]);
    sameBytes(model.bytes(id), bytes, 'stored');
  });

  test('a partial chunk answered 200 without "Success" on the last byte is retried', LIMIT, async () => {
    const { server, model, up, id, bytes } = articleSetup({ size: 1000 });
    let n = 0;
    server.handler = (req) => {
      if (req.method === 'POST' && n++ === 0) return { status: 200, body: '' }; // not stored
      return model.handle(req);
    };
    assert.equal(await up.upload(), true);
    assert.equal(server.byMethod('POST').length, 2);
    sameBytes(model.bytes(id), bytes, 'stored');
  });
});

// ------------------------------------------------------------------ retries --

describe('retries', () => {
  for (const retries of [0, 1, 3]) {
    test(`retries: ${retries} gives up after exactly ${retries + 1} attempts without progress`, LIMIT, async () => {
      const { server, model, up } = articleSetup({ options: { retries } });
      server.handler = (req) => (req.method === 'POST' ? req.fail() : model.handle(req));
      const err = await up.upload().then(() => null, (e) => e);
      assert.ok(err, 'upload() should reject');
      assert.match(err.message, new RegExp(`gave up after ${retries + 1} failed attempts`));
      assert.equal(server.byMethod('POST').length, retries + 1);
      assert.equal(server.byMethod('GET').length, retries + 1);
      assert.equal(up.state, 'failed');
      const count = server.requests.length;
      await sleep(20);
      assert.equal(server.requests.length, count, 'no request after giving up');
    });
  }

  test('giving up after 5xx keeps the status in err.status', LIMIT, async () => {
    const { server, model, up } = articleSetup({ options: { retries: 2 } });
    server.handler = (req) => (req.method === 'POST' ? { status: 503, body: 'busy' } : model.handle(req));
    const err = await up.upload().then(() => null, (e) => e);
    assert.equal(err.status, 503);
    assert.match(err.message, /busy/);
    assert.equal(server.byMethod('POST').length, 3);
  });

  test('tus: a PATCH answered 204 with an unchanged Upload-Offset counts as a failure', LIMIT, async () => {
    const { server, model, up } = tusSetup({ options: { retries: 2 } });
    server.handler = (req) => (req.method === 'PATCH'
      ? { status: 204, headers: { 'Upload-Offset': req.header('Upload-Offset'), 'Tus-Resumable': '1.0.0' } }
      : model.handle(req));
    await assert.rejects(up.upload(), /gave up after 3 failed attempts.*took none of the bytes/);
    assert.equal(server.byMethod('PATCH').length, 3, 'no tight loop of PATCHes');
  });

  test('tus: exhausted after N+1 failed PATCHes', LIMIT, async () => {
    const { server, model, up } = tusSetup({ options: { retries: 2 } });
    server.handler = (req) => (req.method === 'PATCH' ? req.fail() : model.handle(req));
    await assert.rejects(up.upload(), /gave up after 3 failed attempts/);
    assert.equal(server.byMethod('PATCH').length, 3);
    assert.equal(server.byMethod('POST').length, 1, 'created once, then HEAD');
    assert.equal(server.byMethod('HEAD').length, 2);
  });

  test('progress resets the count: a server that accepts one chunk per attempt gets the whole file', LIMIT, async () => {
    const { server, model, up, bytes, id } = articleSetup({ size: 10000, options: { chunkSize: 1000, retries: 2 } });
    server.handler = (req) => {
      const prev = server.requests[req.index - 1];
      if (req.method === 'POST' && prev && prev.method === 'POST') return req.fail(); // 2nd send of an attempt
      return model.handle(req);
    };
    assert.equal(await up.upload(), true);
    assert.ok(server.requests.filter((r) => r.failed).length >= 9, 'failed far more often than retries');
    assertLocateAfterEachFailure(server);
    sameBytes(model.bytes(id), bytes, 'stored');
  });

  test('progress seen only through the status (partial bytes kept) also resets the count', LIMIT, async () => {
    const { server, model, up, bytes, id } = articleSetup({ size: 5000, options: { retries: 1 } });
    server.handler = (req) => {
      if (req.method === 'POST' && model.held(id) < 4000) return model.partial(req, 1000, req.size);
      return model.handle(req);
    };
    assert.equal(await up.upload(), true);
    assert.deepEqual(sendStarts(server), [0, 1000, 2000, 3000, 4000]);
    sameBytes(model.bytes(id), bytes, 'stored');
  });

  test('a stall (no progress for `timeout` ms) aborts the request and retries', LIMIT, async () => {
    const { server, model, up, bytes, id } = articleSetup({ options: { timeout: 60 } });
    let hung = null;
    server.handler = (req) => {
      if (req.method === 'POST' && !hung) { hung = req; req.progress(100); return; }
      return model.handle(req);
    };
    const t0 = Date.now();
    assert.equal(await up.upload(), true);
    assert.ok(hung.aborted, 'the stalled request was aborted');
    assert.ok(Date.now() - t0 >= 55, 'not before the timeout');
    assert.deepEqual(server.log(), [
      'GET /status -> 200', 'POST /upload 0+1000 -> aborted', 'GET /status -> 200', 'POST /upload 0+1000 -> 200',
    ]);
    sameBytes(model.bytes(id), bytes, 'stored');
  });

  test('a slow request that keeps making progress is not a stall', LIMIT, async () => {
    const { server, model, up } = articleSetup({ size: 1000, options: { timeout: 60 } });
    server.handler = async (req) => {
      if (req.method === 'POST') {
        for (let i = 1; i <= 8; i++) { await sleep(25); req.progress(i * 100); } // 200 ms in all
      }
      return model.handle(req);
    };
    assert.equal(await up.upload(), true);
    assert.deepEqual(server.log(), ['GET /status -> 200', 'POST /upload 0+1000 -> 200']);
  });
});

// ---------------------------------------------------------------------- tus --

describe('tus protocol', () => {
  test('create, then PATCH; the storage entry holds the url while running, removed on success', LIMIT, async () => {
    const { server, model, up, bytes, storage, file } = tusSetup({ size: 5000, options: { chunkSize: 2000 } });
    const during = [];
    server.handler = (req) => {
      if (req.method === 'PATCH') during.push(storage.uploads());
      return model.handle(req);
    };
    assert.equal(await up.upload(), true);
    assert.deepEqual(server.log(), [
      'POST /files/ -> 201', 'PATCH /files/1 0+2000 -> 204', 'PATCH /files/1 2000+2000 -> 204', 'PATCH /files/1 4000+1000 -> 204',
    ]);
    const create = server.requests[0];
    assert.equal(create.url, T);
    assert.equal(create.header('Upload-Length'), '5000');
    assert.equal(create.header('Tus-Resumable'), '1.0.0');
    assert.equal(create.body, null);
    assert.equal(create.header('Upload-Metadata'),
      `filename ${Buffer.from('f.bin').toString('base64')},filetype ${Buffer.from('application/octet-stream').toString('base64')}`);
    for (const r of server.byMethod('PATCH')) {
      assert.equal(r.header('Content-Type'), 'application/offset+octet-stream');
      assert.equal(r.header('Tus-Resumable'), '1.0.0');
      assert.ok(r.size <= 2000);
    }
    assert.equal(during.length, 3);
    for (const d of during) {
      assert.equal(d.length, 1);
      assert.equal(d[0].url, 'http://h/files/1');
      assert.equal(d[0].key, await fingerprint(file, T, 'tus'));
    }
    assert.deepEqual(storage.uploads(), [], 'removed on success');
    sameBytes(model.bytes('http://h/files/1'), bytes, 'stored');
  });

  test('metadata: UTF-8 names are base64 of UTF-8; custom metadata; empty value has no space', LIMIT, async () => {
    const file = makeFile(pattern(10), { name: 'été 🚀.txt', type: 'text/plain' });
    const { server, up } = tusSetup({ file });
    assert.equal(await up.upload(), true);
    const meta = server.requests[0].header('Upload-Metadata');
    assert.equal(meta, `filename ${Buffer.from('été 🚀.txt').toString('base64')},filetype ${Buffer.from('text/plain').toString('base64')}`);
    const t2 = tusSetup({ options: { metadata: { a: 'x', empty: '' } } });
    assert.equal(await t2.up.upload(), true);
    assert.equal(t2.server.requests[0].header('Upload-Metadata'), `a ${Buffer.from('x').toString('base64')},empty`);
  });

  test('a network error mid-PATCH: HEAD first, then PATCH from the server offset', LIMIT, async () => {
    const { server, model, up, bytes } = tusSetup({ size: 100000 });
    let cut = false;
    server.handler = (req) => {
      if (req.method === 'PATCH' && !cut) { cut = true; return model.partial(req, 30000, 80000); }
      return model.handle(req);
    };
    assert.equal(await up.upload(), true);
    assert.deepEqual(server.log(), [
      'POST /files/ -> 201', 'PATCH /files/1 0+100000 -> neterr', 'HEAD /files/1 -> 200', 'PATCH /files/1 30000+70000 -> 204',
    ]);
    sameBytes(model.bytes('http://h/files/1'), bytes, 'stored');
  });

  for (const status of [500, 409, 423]) {
    test(`tus: PATCH answered ${status} is retried after a HEAD`, LIMIT, async () => {
      const { server, model, up, bytes } = tusSetup({ size: 3000, options: { chunkSize: 1000 } });
      let n = 0;
      server.handler = (req) => {
        if (req.method === 'PATCH' && req.header('upload-offset') === '1000' && n++ === 0) return { status };
        return model.handle(req);
      };
      assert.equal(await up.upload(), true);
      assert.deepEqual(server.log(), [
        'POST /files/ -> 201', 'PATCH /files/1 0+1000 -> 204', `PATCH /files/1 1000+1000 -> ${status}`,
        'HEAD /files/1 -> 200', 'PATCH /files/1 1000+1000 -> 204', 'PATCH /files/1 2000+1000 -> 204',
      ]);
      sameBytes(model.bytes('http://h/files/1'), bytes, 'stored');
    });
  }

  test('tus: a permanent error on create rejects with the reason', LIMIT, async () => {
    const { server, up } = tusSetup();
    server.handler = () => ({ status: 413, statusText: 'Payload Too Large', body: 'Upload-Length exceeds the maximum size\n' });
    const err = await up.upload().then(() => null, (e) => e);
    assert.equal(err.status, 413);
    assert.match(err.message, /Upload-Length exceeds the maximum size/);
    await sleep(20);
    assert.equal(server.requests.length, 1);
  });

  test('the offset acknowledged is the Upload-Offset the server answered', LIMIT, async () => {
    const { server, model, up, bytes } = tusSetup({ size: 3000 });
    const acks = [];
    up.onAcknowledged = (off) => acks.push(off);
    let first = true;
    server.handler = (req) => {
      if (req.method === 'PATCH' && first) {
        first = false;
        model.store(req, 400); // kept only 400 of the 3000
        return { status: 204, headers: { 'Upload-Offset': 400 } };
      }
      return model.handle(req);
    };
    assert.equal(await up.upload(), true);
    assert.deepEqual(sendStarts(server), [0, 400]);
    assert.deepEqual(acks, [0, 400, 3000], 'the created upload\'s 0, then each PATCH\'s Upload-Offset');
    sameBytes(model.bytes('http://h/files/1'), bytes, 'stored');
  });

  test('after a reload: a new Uploader HEADs the stored url, no POST, continues at the server offset', LIMIT, async () => {
    const model = new TusModel(T);
    const storage = new MemoryStorage();
    const bytes = pattern(10000, 5);
    const first = tusSetup({ model, storage, file: makeFile(bytes), bytes, options: { chunkSize: 1000 } });
    let hung = null;
    first.server.handler = (req) => {
      if (req.method === 'PATCH' && req.header('upload-offset') === '2000') {
        req.progress(900);
        model.store(req, 500); // the server holds 2500; the page saw 2900 go out
        hung = req;
        return;
      }
      return model.handle(req);
    };
    const p1 = first.up.upload();
    await until(() => hung, { what: 'the third PATCH' });
    assert.equal(first.up.sent, 2900);
    assert.deepEqual(storage.uploads().map((e) => e.url), ['http://h/files/1']);
    // the page goes away: the request is cut
    first.up.stop();
    assert.equal(await p1, false);

    const file2 = makeFile(bytes.slice()); // the same file picked again after the reload
    const acks = [];
    const second = tusSetup({ model, storage, file: file2, bytes, options: { chunkSize: 1000, onAcknowledged: (o) => acks.push(o) } });
    assert.equal(await second.up.upload(), true);
    assert.equal(acks[0], 2500, 'the server\'s offset is acknowledged first (not the 2900 sent before)');
    const log = second.server.log();
    assert.equal(log[0], 'HEAD /files/1 -> 200');
    assert.equal(second.server.requests.filter((r) => r.method === 'POST').length, 0, 'no new upload created');
    assert.deepEqual(sendStarts(second.server), [2500, 3500, 4500, 5500, 6500, 7500, 8500, 9500]);
    sameBytes(model.bytes('http://h/files/1'), bytes, 'stored');
    assert.deepEqual(storage.uploads(), []);
  });

  test('a different file with the same name, size and date does not continue the upload', LIMIT, async () => {
    const model = new TusModel(T);
    const storage = new MemoryStorage();
    const bytes = pattern(10000, 5);
    const first = tusSetup({ model, storage, bytes, options: { chunkSize: 1000 } });
    first.server.handler = (req) => (req.method === 'PATCH' && req.header('upload-offset') === '2000' ? undefined : model.handle(req));
    const p1 = first.up.upload();
    await first.server.waitFor((r) => r.method === 'PATCH' && r.header('upload-offset') === '2000', { includePast: true });
    first.up.stop();
    assert.equal(await p1, false);

    const other = bytes.slice();
    other[0] ^= 1;
    const second = tusSetup({ model, storage, bytes: other });
    assert.equal(await second.up.upload(), true);
    assert.deepEqual(second.server.log(), ['POST /files/ -> 201', 'PATCH /files/2 0+10000 -> 204']);
    sameBytes(model.bytes('http://h/files/2'), other, 'stored');
    sameBytes(model.bytes('http://h/files/1'), bytes.subarray(0, 2000), 'the first upload untouched');
    assert.deepEqual(storage.uploads().map((e) => e.url), ['http://h/files/1'], 'the first entry stays');
  });

  for (const status of [404, 410, 403]) {
    test(`HEAD answered ${status}: the upload is created anew`, LIMIT, async () => {
      const storage = new MemoryStorage();
      const bytes = pattern(4000, 9);
      const file = makeFile(bytes);
      const key = await fingerprint(file, T, 'tus');
      storage.setItem(key, JSON.stringify({ url: 'http://h/files/old', name: 'f.bin', size: 4000, created: 1 }));
      const { server, model, up } = tusSetup({ storage, file, bytes });
      const during = [];
      server.handler = (req) => {
        if (req.url === 'http://h/files/old') return { status };
        if (req.method === 'PATCH') during.push(storage.getItem(key));
        return model.handle(req);
      };
      assert.equal(await up.upload(), true);
      assert.deepEqual(server.log(), [`HEAD /files/old -> ${status}`, 'POST /files/ -> 201', 'PATCH /files/1 0+4000 -> 204']);
      assert.equal(JSON.parse(during[0]).url, 'http://h/files/1', 'the new url is stored');
      assert.equal(storage.getItem(key), null);
      sameBytes(model.bytes('http://h/files/1'), bytes, 'stored');
    });
  }

  test('HEAD with an Upload-Length other than the file size is a permanent error', LIMIT, async () => {
    const storage = new MemoryStorage();
    const file = makeFile(pattern(4000));
    storage.setItem(await fingerprint(file, T, 'tus'), JSON.stringify({ url: 'http://h/files/x' }));
    const { server, up } = tusSetup({ storage, file });
    server.handler = () => ({ status: 200, headers: { 'Upload-Offset': 0, 'Upload-Length': 5000 } });
    await assert.rejects(up.upload(), /5000/);
    assert.equal(server.requests.length, 1);
  });

  test('cancel(): DELETE to the url, storage entry removed, upload() resolves false', LIMIT, async () => {
    const { server, model, up, storage } = tusSetup({ size: 5000, options: { chunkSize: 1000 } });
    server.handler = (req) => (req.method === 'PATCH' && req.header('upload-offset') === '2000' ? undefined : model.handle(req));
    const p = track(up.upload());
    const hung = await server.waitFor((r) => r.method === 'PATCH' && r.header('upload-offset') === '2000', { includePast: true });
    assert.equal(storage.uploads().length, 1);
    const cancelled = up.cancel();
    assert.ok(hung.aborted, 'cancel() aborts the request in flight at once');
    await within(cancelled, 500, 'cancel()');
    assert.equal(await p.promise, false);
    const del = server.requests.at(-1);
    assert.equal(del.method, 'DELETE');
    assert.equal(del.url, 'http://h/files/1');
    assert.equal(del.header('Tus-Resumable'), '1.0.0');
    assert.equal(model.uploads.size, 0, 'the server forgot it');
    assert.deepEqual(storage.uploads(), []);
    assert.equal(up.state, 'cancelled');
    const count = server.requests.length;
    await sleep(20);
    assert.equal(server.requests.length, count);
  });

  test('cancel() during a backoff also deletes and resolves false', LIMIT, async () => {
    const { server, model, up, storage } = tusSetup({ options: { retryDelay: 200, retryMaxDelay: 200 } });
    server.handler = (req) => (req.method === 'PATCH' ? { status: 503 } : model.handle(req));
    const p = up.upload();
    await until(() => up.state === 'retrying', { what: 'retrying' });
    await up.cancel();
    assert.equal(await p, false);
    assert.deepEqual(server.log(), ['POST /files/ -> 201', 'PATCH /files/1 0+1000 -> 503', 'DELETE /files/1 -> 204']);
    assert.deepEqual(storage.uploads(), []);
  });

  test('stop() then upload() again continues with a HEAD', LIMIT, async () => {
    const { server, model, up, bytes, storage } = tusSetup({ size: 3000, options: { chunkSize: 1000 } });
    let hang = true;
    server.handler = (req) => (req.method === 'PATCH' && req.header('upload-offset') === '1000' && hang ? undefined : model.handle(req));
    const p = up.upload();
    const hung = await server.waitFor((r) => r.method === 'PATCH' && r.header('upload-offset') === '1000', { includePast: true });
    up.stop();
    assert.ok(hung.aborted, 'stop() aborts the request in flight at once');
    assert.equal(await within(p, 500, 'upload() after stop()'), false);
    assert.equal(up.state, 'stopped');
    assert.equal(storage.uploads().length, 1, 'kept for later');
    hang = false;
    const before = server.requests.length;
    assert.equal(await up.upload(), true);
    assert.deepEqual(server.log().slice(before), ['HEAD /files/1 -> 200', 'PATCH /files/1 1000+1000 -> 204', 'PATCH /files/1 2000+1000 -> 204']);
    sameBytes(model.bytes('http://h/files/1'), bytes, 'stored');
  });
});

// ----------------------------------------------------------- stop and pause --

describe('stop, pause, resume', () => {
  test('stop(): upload() resolves false, no more requests; upload() again continues from the server offset', LIMIT, async () => {
    const { server, model, up, bytes, id } = articleSetup({ size: 10000, options: { chunkSize: 1000 } });
    let hang = true;
    let hung = null;
    server.handler = (req) => {
      if (req.method === 'POST' && req.header('x-start-byte') === '3000' && hang) {
        req.progress(700);
        hung = req;
        return;
      }
      return model.handle(req);
    };
    const p = up.upload();
    await until(() => hung, { what: 'the 4th POST' });
    up.stop();
    assert.ok(hung.aborted, 'stop() aborts the request in flight at once');
    assert.equal(await within(p, 500, 'upload() after stop()'), false);
    assert.equal(up.state, 'stopped');
    const count = server.requests.length;
    await sleep(20);
    assert.equal(server.requests.length, count, 'no request after stop()');
    hang = false;
    assert.equal(await up.upload(), true);
    assert.deepEqual(server.log().slice(count, count + 2), ['GET /status -> 200', 'POST /upload 3000+1000 -> 200']);
    sameBytes(model.bytes(id), bytes, 'stored');
  });

  test('stop() during the backoff resolves false without another request', LIMIT, async () => {
    const { server, model, up } = articleSetup({ options: { retryDelay: 2000, retryMaxDelay: 2000 } });
    server.handler = (req) => (req.method === 'POST' ? { status: 500 } : model.handle(req));
    const p = up.upload();
    await until(() => up.state === 'retrying', { what: 'retrying' });
    const t0 = Date.now();
    up.stop();
    assert.equal(await p, false);
    assert.ok(Date.now() - t0 < 500, 'stop() cut the backoff (1 to 2 s) short');
    assert.equal(server.requests.length, 2);
  });

  test('pause()/resume(): the same upload() resolves true; no request while paused', LIMIT, async () => {
    const { server, model, up, bytes, id } = articleSetup({ size: 4000, options: { chunkSize: 1000 } });
    let hang = true;
    server.handler = (req) => (req.method === 'POST' && req.header('x-start-byte') === '2000' && hang ? undefined : model.handle(req));
    const states = [];
    up.onState = (s) => states.push(s);
    const p = track(up.upload());
    const hung = await server.waitFor((r) => r.method === 'POST' && r.header('x-start-byte') === '2000', { includePast: true });
    up.pause();
    assert.ok(hung.aborted, 'pause() aborts the request in flight');
    assert.equal(up.state, 'paused');
    const count = server.requests.length;
    await sleep(40);
    assert.equal(server.requests.length, count, 'no request while paused');
    assert.equal(p.settled, false, 'upload() stays pending while paused');
    assert.equal(up.state, 'paused');
    hang = false;
    up.resume();
    assert.equal(await within(p.promise, 2000, 'upload()'), true);
    assert.deepEqual(server.log().slice(count), ['GET /status -> 200', 'POST /upload 2000+1000 -> 200', 'POST /upload 3000+1000 -> 200']);
    assert.ok(states.includes('paused'));
    assert.equal(states.at(-1), 'done');
    sameBytes(model.bytes(id), bytes, 'stored');
  });

  test('pause() during a backoff: no retry until resume()', LIMIT, async () => {
    const { server, model, up } = articleSetup({ options: { retryDelay: 20, retryMaxDelay: 20 } });
    let n = 0;
    server.handler = (req) => (req.method === 'POST' && n++ === 0 ? { status: 503 } : model.handle(req));
    const p = track(up.upload());
    await until(() => up.state === 'retrying', { what: 'retrying' });
    up.pause();
    await sleep(60); // three times the backoff
    assert.equal(server.requests.length, 2);
    assert.equal(p.settled, false);
    up.resume();
    assert.equal(await within(p.promise, 2000, 'upload()'), true);
    assert.equal(server.requests.length, 4);
  });

  test('pause() then resume() at once (same tick) keeps the upload going', LIMIT, async () => {
    const { server, model, up } = articleSetup({ size: 2000, options: { chunkSize: 1000 } });
    let hang = true;
    server.handler = (req) => (req.method === 'POST' && req.header('x-start-byte') === '1000' && hang ? undefined : model.handle(req));
    const p = track(up.upload());
    await server.waitFor((r) => r.method === 'POST' && r.header('x-start-byte') === '1000', { includePast: true });
    hang = false;
    up.pause();
    up.resume();
    const result = await within(p.promise, 2000, 'upload()');
    assert.equal(result, true, `upload() resolved ${result}, state ${up.state}`);
  });

  test('pause() while no request is in flight (from onAcknowledged) stops sending', { ...LIMIT }, async () => {
    const { server, model, up, bytes, id } = articleSetup({ size: 3000, options: { chunkSize: 1000 } });
    up.onAcknowledged = (off) => { if (off === 1000) up.pause(); };
    const p = track(up.upload());
    try {
      await sleep(40);
      assert.deepEqual(server.log(), ['GET /status -> 200', 'POST /upload 0+1000 -> 200'], 'nothing sent after pause()');
      assert.equal(p.settled, false, 'upload() pending while paused');
      assert.equal(up.state, 'paused');
      up.resume();
      assert.equal(await within(p.promise, 2000, 'upload()'), true);
      sameBytes(model.bytes(id), bytes, 'stored');
    } finally {
      up.resume();
    }
  });

  test('stop() then upload() at once resumes (the new upload() is not the stopped one)', LIMIT, async () => {
    const { server, model, up, bytes, id } = articleSetup({ size: 3000 });
    let hang = true;
    server.handler = (req) => (req.method === 'POST' && hang ? undefined : model.handle(req));
    const p1 = up.upload();
    await server.waitFor((r) => r.method === 'POST', { includePast: true });
    hang = false;
    up.stop();
    const p2 = up.upload();
    assert.equal(await p1, false);
    assert.equal(await within(p2, 2000, 'the second upload()'), true);
    sameBytes(model.bytes(id), bytes, 'stored');
  });
});

// -------------------------------------------------------------------- queue --

describe('UploadQueue', () => {
  test('never more than `concurrency` uploads with a request in flight; all finish', LIMIT, async () => {
    const model = new ArticleModel(A);
    const server = new FakeServer(async (req) => { await sleep(2); return model.handle(req); });
    const storage = new MemoryStorage();
    const queue = new UploadQueue({ concurrency: 2 });
    const files = [1, 2, 3, 4, 5].map((i) => makeFile(pattern(3000, i), { name: `f${i}.bin` }));
    let maxActive = 0;
    const inflightIds = () => new Set([...server.pending].map((r) => r.header('x-file-id')));
    const origHandler = server.handler;
    server.handler = (req) => {
      maxActive = Math.max(maxActive, inflightIds().size);
      return origHandler(req);
    };
    const states = files.map(() => []);
    const ups = files.map((file, i) => newUploader({
      file, endpoint: A, storage, XMLHttpRequest: server.XMLHttpRequest, chunkSize: 1000, onState: (st) => states[i].push(st),
    }));
    const ps = ups.map((up) => queue.add(up));
    assert.deepEqual(await Promise.all(ps), [true, true, true, true, true]);
    assert.equal(states.filter((s) => s.includes('queued')).length, 3, 'three of five waited in state "queued"');
    assert.equal(maxActive, 2, 'two at once, never three');
    assert.ok(server.maxPending <= 2);
    assert.equal(queue.active, 0, 'all places given back');
    for (let i = 0; i < files.length; i++) sameBytes(model.bytes(articleFileId(files[i])), pattern(3000, i + 1), `file ${i + 1}`);
  });

  test('a queued upload waits in state "queued" until a place is free', LIMIT, async () => {
    const { model, server, ida, idb, a, b } = queuedPair();
    let hang = true;
    server.handler = (req) => (req.method === 'POST' && req.header('x-file-id') === ida && hang ? undefined : model.handle(req));
    const pa = track(a.upload());
    await server.waitFor((r) => r.method === 'POST', { includePast: true });
    const pb = track(b.upload());
    await until(() => b.state === 'queued', { what: 'b queued' });
    await sleep(20);
    assert.equal(server.requests.filter((r) => r.header('x-file-id') === idb).length, 0, 'b sent nothing');
    hang = false;
    a.stop(); // frees the place
    assert.equal(await pa.promise, false);
    assert.equal(await within(pb.promise, 2000, 'b'), true);
  });

  test('a paused upload gives its place to a queued one; resume() finishes it', LIMIT, async () => {
    const { model, server, queue, ida, idb, a, b } = queuedPair({ size: 2000 });
    let hang = true;
    server.handler = (req) => (req.method === 'POST' && req.header('x-file-id') === ida && hang ? undefined : model.handle(req));
    const pa = track(a.upload());
    await server.waitFor((r) => r.method === 'POST', { includePast: true });
    const pb = track(b.upload());
    await sleep(20);
    assert.equal(server.requests.filter((r) => r.header('x-file-id') === idb).length, 0, 'b waits');
    a.pause();
    assert.equal(await within(pb.promise, 2000, 'b'), true, 'b ran while a was paused');
    assert.equal(pa.settled, false);
    sameBytes(model.bytes(idb), pattern(2000, 2), 'b stored');
    hang = false;
    a.resume();
    assert.equal(await within(pa.promise, 2000, 'a'), true);
    sameBytes(model.bytes(ida), pattern(2000, 1), 'a stored');
    assert.equal(queue.active, 0);
  });

  test('stop() before the upload reached the full queue resolves false and takes no place', LIMIT, async () => {
    const { model, server, queue, a, b } = queuedPair();
    let hang = true;
    server.handler = (req) => (req.method === 'POST' && hang ? undefined : model.handle(req));
    const pa = a.upload();
    const hung = await server.waitFor((r) => r.method === 'POST', { includePast: true });
    const pb = b.upload();
    b.stop(); // still computing its fingerprint: its signal is aborted before it asks for a place
    assert.equal(await within(pb, 500, 'b after stop()'), false);
    assert.equal(queue.waiting.length, 0);
    hang = false;
    a.stop();
    assert.ok(hung.aborted);
    assert.equal(await pa, false);
    assert.equal(queue.active, 0, 'no place held');
    assert.equal(await within(a.upload(), 2000, 'a again'), true);
    assert.equal(queue.active, 0);
  });

  test('a retrying upload gives its place up during the backoff', LIMIT, async () => {
    const { model, server, ida, a, b } = queuedPair({
      aOptions: { retryDelay: 400, retryMaxDelay: 400, random: () => 0 }, // 200 ms
    });
    let n = 0;
    server.handler = (req) => (req.method === 'POST' && req.header('x-file-id') === ida && n++ === 0 ? { status: 503 } : model.handle(req));
    const pa = a.upload();
    const pb = b.upload();
    assert.equal(await within(pb, 2000, 'b'), true);
    assert.equal(a.state, 'retrying', 'b finished while a was still waiting to retry');
    assert.equal(await pa, true);
  });
});

// -------------------------------------------------------------------- token --

describe('X-Upload-Token', () => {
  test('absent by default', LIMIT, async () => {
    const { server, up, storage } = articleSetup();
    assert.equal(await up.upload(), true);
    for (const r of server.requests) assert.equal(r.header('x-upload-token'), null);
    assert.equal(storage.getItem('resumed:token'), null);
  });

  test('token: true → a 32-hex token on every request, stored, stable across Uploaders', LIMIT, async () => {
    const storage = new MemoryStorage();
    const one = articleSetup({ storage, options: { token: true } });
    assert.equal(await one.up.upload(), true);
    const tok = storage.getItem('resumed:token');
    assert.match(tok, /^[0-9a-f]{32}$/);
    assert.equal(one.server.requests.length, 2);
    for (const r of one.server.requests) assert.equal(r.header('X-Upload-Token'), tok, r.method);

    const two = articleSetup({ storage, bytes: pattern(500, 4), options: { token: true } });
    assert.equal(two.up.token, tok);
    assert.equal(await two.up.upload(), true);
    for (const r of two.server.requests) assert.equal(r.header('X-Upload-Token'), tok, r.method);

    const other = articleSetup({ options: { token: true } }); // another browser
    assert.match(other.up.token, /^[0-9a-f]{32}$/);
    assert.notEqual(other.up.token, tok);
  });

  test('tus with token: true: on POST, PATCH, HEAD and DELETE', LIMIT, async () => {
    const { server, model, up } = tusSetup({ size: 2000, options: { token: true, chunkSize: 1000 } });
    let n = 0;
    server.handler = (req) => (req.method === 'PATCH' && n++ === 1 ? req.fail() : model.handle(req));
    assert.equal(await up.upload(), true);
    await up.cancel(); // a DELETE to the finished upload
    const methods = new Set(server.requests.map((r) => r.method));
    assert.deepEqual([...methods].sort(), ['DELETE', 'HEAD', 'PATCH', 'POST']);
    for (const r of server.requests) assert.equal(r.header('x-upload-token'), up.token, r.method);
    assert.match(up.token, /^[0-9a-f]{32}$/);
  });

  test('a string token is sent as is (and not stored)', LIMIT, async () => {
    const { server, up, storage } = articleSetup({ options: { token: 'my-token' } });
    assert.equal(await up.upload(), true);
    for (const r of server.requests) assert.equal(r.header('x-upload-token'), 'my-token');
    assert.equal(storage.getItem('resumed:token'), null);
  });
});

// ----------------------------------------------------------------- progress --

describe('progress', () => {
  test('onProgress reports what went out, onAcknowledged what the server confirmed', LIMIT, async () => {
    const { server, model, up } = articleSetup({ size: 3000, options: { chunkSize: 1000 } });
    const sent = [];
    const acks = [];
    up.onProgress = (s, total, u) => { sent.push(s); assert.equal(total, 3000); assert.equal(u, up); };
    up.onAcknowledged = (o, total, u) => { acks.push(o); assert.equal(total, 3000); assert.equal(u, up); };
    let hold = null;
    server.handler = (req) => {
      if (req.method === 'POST' && req.header('x-start-byte') === '1000' && !hold) { hold = req; req.progress(600); return; }
      return model.handle(req);
    };
    const p = up.upload();
    await until(() => hold, { what: 'the 2nd POST' });
    assert.equal(sent.at(-1), 1600);
    assert.equal(up.sent, 1600);
    assert.deepEqual(acks, [0, 1000], 'the status (0), then the first chunk');
    assert.equal(up.offset, 1000);
    assert.ok(sent.at(-1) > acks.at(-1), 'sent > acknowledged during a request');
    hold.respond(200, { body: '' });
    model.store(hold, 1000);
    assert.equal(await p, true);
    assert.deepEqual(acks, [0, 1000, 2000, 3000]);
    assert.equal(sent.at(-1), 3000);
    for (let i = 1; i < sent.length; i++) assert.ok(sent[i] >= sent[i - 1], 'sent never goes down within an attempt');
  });

  test('after a cut, "sent" falls back to the server offset', LIMIT, async () => {
    const { server, model, up, id } = articleSetup({ size: 10000 });
    const sent = [];
    up.onProgress = (s) => sent.push(s);
    let cut = false;
    server.handler = (req) => {
      if (req.method === 'POST' && !cut) { cut = true; return model.partial(req, 2000, 7000); }
      return model.handle(req);
    };
    assert.equal(await up.upload(), true);
    assert.ok(sent.includes(7000));
    const after = sent.slice(sent.indexOf(7000) + 1);
    assert.equal(after[0], 2000, `progress after the retry restarts at the server's offset: ${after}`);
    assert.equal(model.held(id), 10000);
  });
});

// ------------------------------------------------------------------ offline --

describe('offline', () => {
  // A browser-like global for the time of fn: navigator.onLine and window events.
  async function withBrowserGlobals(fn) {
    const saved = {};
    for (const k of ['navigator', 'addEventListener', 'removeEventListener']) {
      saved[k] = Object.getOwnPropertyDescriptor(globalThis, k);
    }
    const events = new EventTarget();
    const nav = { onLine: true };
    Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
    globalThis.addEventListener = events.addEventListener.bind(events);
    globalThis.removeEventListener = events.removeEventListener.bind(events);
    try {
      await fn(nav, events);
    } finally {
      for (const k of Object.keys(saved)) {
        if (saved[k]) Object.defineProperty(globalThis, k, saved[k]);
        else delete globalThis[k];
      }
    }
  }

  test('stop() during the offline wait resolves false at once; "online" afterwards sends nothing', LIMIT, async () => {
    await withBrowserGlobals(async (nav, events) => {
      const { server, model, up } = articleSetup();
      server.handler = (req) => {
        if (req.method === 'POST') { nav.onLine = false; return req.fail(); }
        return model.handle(req);
      };
      const p = up.upload();
      await until(() => up.state === 'offline', { what: 'state offline' });
      up.stop();
      assert.equal(await within(p, 200, 'upload() after stop()'), false);
      assert.equal(up.state, 'stopped');
      nav.onLine = true;
      events.dispatchEvent(new Event('online'));
      await sleep(20);
      assert.equal(server.requests.length, 2);
    });
  });

  test('stop() during a backoff while offline resolves false at once', LIMIT, async () => {
    await withBrowserGlobals(async (nav) => {
      const { server, model, up } = articleSetup({ options: { retryDelay: 2000, retryMaxDelay: 2000 } });
      server.handler = (req) => {
        if (req.method === 'POST') { nav.onLine = false; return req.fail(); }
        return model.handle(req);
      };
      const p = up.upload();
      await until(() => up.state === 'retrying', { what: 'state retrying' });
      up.stop();
      assert.equal(await within(p, 500, 'upload() after stop() (the backoff is 1 to 2 s)'), false);
      assert.equal(server.requests.length, 2);
    });
  });

  test('while navigator.onLine is false a retry waits for "online"; that wait does not use up retries', LIMIT, async () => {
    await withBrowserGlobals(async (nav, events) => {
      const { server, model, up, bytes, id } = articleSetup({ size: 4000, options: { chunkSize: 1000, retries: 1 } });
      server.handler = (req) => {
        if (!nav.onLine) return req.fail();
        if (req.method === 'POST' && req.header('x-start-byte') === '2000' && model.held(id) === 2000 && !server.wentOffline) {
          server.wentOffline = true;
          nav.onLine = false; // the network goes away mid-request
          return req.fail();
        }
        return model.handle(req);
      };
      const p = track(up.upload());
      await until(() => up.state === 'offline', { what: 'state offline' });
      const count = server.requests.length;
      await sleep(60); // 60 times retryDelay: without the wait, retries: 1 would be used up
      assert.equal(server.requests.length, count, 'no request while offline');
      assert.equal(p.settled, false);
      assert.equal(up.state, 'offline');
      nav.onLine = true;
      events.dispatchEvent(new Event('online'));
      assert.equal(await within(p.promise, 2000, 'upload()'), true);
      assert.deepEqual(server.log().slice(count), ['GET /status -> 200', 'POST /upload 2000+1000 -> 200', 'POST /upload 3000+1000 -> 200']);
      sameBytes(model.bytes(id), bytes, 'stored');
    });
  });
});

// ----------------------------------------------------------- stored uploads --

describe('Uploader.unfinished / Uploader.forget', () => {
  test('lists the entries left by stopped uploads (oldest first); forget removes one', LIMIT, async () => {
    const storage = new MemoryStorage({
      'resumed:token': '0123456789abcdef0123456789abcdef',
      other: JSON.stringify({ name: 'not an upload', created: 0 }), // JSON, but not ours
    });
    const started = [];
    async function startAndStop(setup) {
      const hangAll = (req) => (isSend(req) ? undefined : setup.model.handle(req));
      setup.server.handler = hangAll;
      const p = setup.up.upload();
      await setup.server.waitFor(isSend, { includePast: true });
      setup.up.stop();
      assert.equal(await p, false);
      started.push(setup);
      await sleep(3); // distinct `created`
    }
    const f1 = makeFile(pattern(3000, 1), { name: 'one.bin', lastModified: 111 });
    const f2 = makeFile(pattern(4000, 2), { name: 'two.bin', lastModified: 222, type: 'text/plain' });
    await startAndStop(articleSetup({ storage, file: f1 }));
    await startAndStop(tusSetup({ storage, file: f2 }));

    const list = Uploader.unfinished(storage);
    assert.equal(list.length, 2);
    const [a, t] = list;
    assert.equal(a.key, await fingerprint(f1, A, 'article'));
    assert.equal(a.name, 'one.bin');
    assert.equal(a.size, 3000);
    assert.equal(a.lastModified, 111);
    assert.equal(a.protocol, 'article');
    assert.equal(a.endpoint, A);
    assert.equal(a.fileId, articleFileId(f1));
    assert.equal(t.key, await fingerprint(f2, T, 'tus'));
    assert.equal(t.name, 'two.bin');
    assert.equal(t.type, 'text/plain');
    assert.equal(t.protocol, 'tus');
    assert.equal(t.url, 'http://h/files/1');
    assert.ok(a.created <= t.created);

    Uploader.forget(a.key, storage);
    assert.deepEqual(Uploader.unfinished(storage).map((e) => e.key), [t.key]);
    assert.equal(JSON.parse(storage.getItem('other')).name, 'not an upload', 'other keys untouched');
    assert.equal(storage.getItem('resumed:token'), '0123456789abcdef0123456789abcdef');
    assert.deepEqual(Uploader.unfinished(null), []);
  });

  test('resume: false stores nothing', LIMIT, async () => {
    const { up, storage } = tusSetup({ options: { resume: false } });
    let seen = null;
    up.onAcknowledged = () => { seen = storage.keys(); };
    assert.equal(await up.upload(), true);
    assert.deepEqual(seen, []);
  });
});

// --------------------------------------------------------------- empty file --

describe('a 0-byte file', () => {
  test('article: status, one empty upload, done', LIMIT, async () => {
    const { server, model, up, id, storage } = articleSetup({ size: 0 });
    assert.equal(await up.upload(), true);
    assert.deepEqual(server.log(), ['GET /status -> 200', 'POST /upload 0+0 -> 200']);
    const post = server.requests[1];
    assert.equal(post.header('x-start-byte'), '0');
    assert.equal(post.header('x-file-size'), '0');
    assert.equal(post.size, 0);
    assert.equal(model.files.get(id).size, 0);
    assert.equal(up.state, 'done');
    assert.deepEqual(storage.uploads(), []);
  });

  test('tus: create with Upload-Length 0, no PATCH needed, done', LIMIT, async () => {
    const { server, model, up, storage } = tusSetup({ size: 0 });
    assert.equal(await up.upload(), true);
    assert.deepEqual(server.log(), ['POST /files/ -> 201']);
    assert.equal(server.requests[0].header('upload-length'), '0');
    assert.equal(model.offset('http://h/files/1'), 0);
    assert.equal(up.state, 'done');
    assert.deepEqual(storage.uploads(), []);
  });
});
