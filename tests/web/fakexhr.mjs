// A scriptable fake XMLHttpRequest, an in-memory Storage, and tiny in-memory models of
// the article and tus servers, for the unit tests of web/uploader.js (node:test, no deps).
//
//   const server = new FakeServer((req) => model.handle(req));
//   new Uploader({ file, XMLHttpRequest: server.XMLHttpRequest, storage: new MemoryStorage() });
//
// Every request is recorded in server.requests as a FakeRequest: method, url, headers
// (lower-case names; req.header(name) is case-insensitive), body (a Uint8Array read from
// the Blob that was sent, or null). The handler sees each request once its body has been
// read and either returns an answer ({ status, statusText, headers, body }, possibly from
// a promise) or returns nothing and drives the request itself later:
//
//   req.respond(status, { statusText, headers, body, progress })  answers (after one upload
//                      progress event for the whole body unless progress: false)
//   req.fail()         a network error (xhr.onerror)
//   req.progress(n)    an upload progress event: n bytes of the body went out
//   (nothing)          the request hangs until the client aborts it or the test answers
//
// xhr.abort() on a request that has not been answered marks it aborted and calls
// xhr.onabort synchronously, as a browser does; answers after that are ignored.

// ------------------------------------------------------------------ storage --

export class MemoryStorage {
  constructor(entries) {
    this._map = new Map(entries ? Object.entries(entries) : []);
  }
  get length() { return this._map.size; }
  key(i) { return i >= 0 && i < this._map.size ? [...this._map.keys()][i] : null; }
  getItem(k) { return this._map.has(String(k)) ? this._map.get(String(k)) : null; }
  setItem(k, v) { this._map.set(String(k), String(v)); }
  removeItem(k) { this._map.delete(String(k)); }
  clear() { this._map.clear(); }
  keys() { return [...this._map.keys()]; }
  // The parsed upload entries (keys starting with resumed:upload:).
  uploads() {
    return this.keys().filter((k) => k.startsWith('resumed:upload:'))
      .map((k) => Object.assign({ key: k }, JSON.parse(this._map.get(k))));
  }
}

// ----------------------------------------------------------------- requests --

export class FakeRequest {
  constructor(server, xhr, index) {
    this.server = server;
    this.xhr = xhr;
    this.index = index;
    this.method = xhr._method;
    this.url = xhr._url;
    this.headers = Object.assign({}, xhr._headers);
    this.body = null;       // Uint8Array or null
    this.done = false;      // answered, failed or aborted
    this.aborted = false;   // aborted by the client
    this.failed = false;    // network error
    this.status = null;     // the status answered
    this.progressed = [];   // the loaded values of the upload progress events sent
    this.time = Date.now(); // when it was sent
  }

  header(name) {
    const v = this.headers[String(name).toLowerCase()];
    return v === undefined ? null : v;
  }

  get size() { return this.body ? this.body.length : 0; }

  // An upload progress event: `loaded` bytes of the body went out.
  progress(loaded) {
    if (this.done) return;
    this.progressed.push(loaded);
    const up = this.xhr.upload;
    if (up && up.onprogress) up.onprogress({ loaded, total: this.size, lengthComputable: true });
  }

  respond(status, { statusText = '', headers = {}, body = '', progress = true } = {}) {
    if (this.done) return;
    if (progress && this.size > 0) this.progress(this.size);
    if (this.done) return; // the progress handler may have aborted it
    this.done = true;
    this.status = status;
    const x = this.xhr;
    x.status = status;
    x.statusText = statusText;
    x.responseText = String(body);
    x._resHeaders = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
    x.readyState = 4;
    this.server._finished(this);
    if (x.onload) x.onload({});
  }

  fail() {
    if (this.done) return;
    this.done = true;
    this.failed = true;
    this.xhr.status = 0;
    this.xhr.readyState = 4;
    this.server._finished(this);
    if (this.xhr.onerror) this.xhr.onerror({});
  }

  // Leaves the request pending (explicit no-op, for readability in handlers).
  hang() {}

  _abort() {
    if (this.done) return false;
    this.done = true;
    this.aborted = true;
    this.server._finished(this);
    return true;
  }
}

// ------------------------------------------------------------------- server --

export class FakeServer {
  constructor(handler) {
    this.handler = handler || (() => ({ status: 500, body: 'no handler' }));
    this.requests = [];
    this.pending = new Set();  // requests sent and not yet done
    this.maxPending = 0;
    this._waiters = [];
    const server = this;
    this.XMLHttpRequest = class FakeXMLHttpRequest {
      constructor() {
        this.upload = { onprogress: null };
        this.readyState = 0;
        this.status = 0;
        this.statusText = '';
        this.responseText = '';
        this.onload = this.onerror = this.ontimeout = this.onabort = this.onprogress = null;
        this._headers = {};
        this._resHeaders = new Map();
        this._req = null;
      }
      open(method, url, async) {
        if (async === false) throw new Error('FakeXMLHttpRequest: synchronous requests are not supported');
        this._method = method;
        this._url = url;
        this.readyState = 1;
      }
      setRequestHeader(name, value) {
        if (this.readyState !== 1 || this._req) throw new Error('setRequestHeader: not OPENED');
        this._headers[String(name).toLowerCase()] = String(value);
      }
      getResponseHeader(name) {
        const v = this._resHeaders.get(String(name).toLowerCase());
        return v === undefined ? null : v;
      }
      send(body) {
        if (this.readyState !== 1 || this._req) throw new Error('send: not OPENED');
        server._send(this, body);
      }
      abort() {
        const req = this._req;
        if (req && req._abort()) {
          this.status = 0;
          this.readyState = 4;
          if (this.onabort) this.onabort({});
        }
      }
    };
  }

  _send(xhr, body) {
    const req = new FakeRequest(this, xhr, this.requests.length);
    xhr._req = req;
    this.requests.push(req);
    this.pending.add(req);
    this.maxPending = Math.max(this.maxPending, this.pending.size);
    (async () => {
      // A real request's events are tasks, never microtasks of send(): this also lets
      // timers run if a client loops on requests.
      await new Promise((resolve) => setImmediate(resolve));
      if (req.done) return; // aborted at once
      if (body != null) {
        if (typeof body === 'string') req.body = new TextEncoder().encode(body);
        else req.body = new Uint8Array(await body.arrayBuffer());
      }
      req._seen = true;
      this._notify(req);
      if (req.done) return; // aborted while its body was read
      const answer = await this.handler(req);
      if (answer && !req.done) {
        req.respond(answer.status, answer);
      }
    })().catch((err) => {
      // A handler bug: make it loud in the test instead of hanging.
      this.handlerError = err;
      if (!req.done) req.respond(599, { body: `fake server handler threw: ${err && err.stack}` });
    });
  }

  _finished(req) {
    this.pending.delete(req);
  }

  _notify(req) {
    for (const w of this._waiters.slice()) {
      if (w.pred(req)) {
        this._waiters.splice(this._waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(req);
      }
    }
  }

  // Resolves with the first request (from now on, or already recorded when
  // `includePast`) that matches pred; rejects after ms.
  waitFor(pred = () => true, { ms = 2000, includePast = false } = {}) {
    if (includePast) {
      const found = this.requests.find((r) => r._seen && pred(r));
      if (found) return Promise.resolve(found);
    }
    return new Promise((resolve, reject) => {
      const w = { pred, resolve, timer: null };
      w.timer = setTimeout(() => {
        this._waiters.splice(this._waiters.indexOf(w), 1);
        reject(new Error(`FakeServer.waitFor: no matching request within ${ms} ms; requests: ${this.log().join(' | ')}`));
      }, ms);
      this._waiters.push(w);
    });
  }

  // A readable summary, e.g. ["GET status", "POST upload 0+1000 -> 200"].
  log() {
    return this.requests.map((r) => {
      const path = r.url.replace(/^https?:\/\/[^/]+/, '');
      const start = r.header('x-start-byte') ?? r.header('upload-offset');
      let s = `${r.method} ${path}`;
      if (r.body) s += ` ${start}+${r.body.length}`;
      if (r.aborted) s += ' -> aborted';
      else if (r.failed) s += ' -> neterr';
      else if (r.status !== null) s += ` -> ${r.status}`;
      return s;
    });
  }

  byMethod(method) { return this.requests.filter((r) => r.method === method); }
}

// ---------------------------------------------------------------- the models --

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

// The article's server: GET <base>status (X-File-Id) → decimal count held;
// POST <base>upload (X-File-Id, X-Start-Byte, X-File-Size) → 400 "Wrong start byte" with
// the count when the start is not what it holds; else stores the body and answers 200,
// "Success N" once it holds X-File-Size bytes, an empty body before.
export class ArticleModel {
  constructor(base = 'http://h/') {
    this.base = base;
    this.files = new Map(); // fileId -> { bytes: Uint8Array, size }
  }

  held(id) { const f = this.files.get(id); return f ? f.bytes.length : 0; }
  bytes(id) { const f = this.files.get(id); return f ? f.bytes : new Uint8Array(0); }

  // Stores `bytes` as if a request had delivered them (for "someone else moved it").
  append(id, size, bytes) {
    const f = this.files.get(id) || { bytes: new Uint8Array(0), size };
    f.bytes = concat(f.bytes, bytes);
    this.files.set(id, f);
  }

  handle(req) {
    const id = req.header('x-file-id');
    if (req.method === 'GET' && req.url === this.base + 'status') {
      if (!id) return { status: 400, body: 'X-File-Id missing' };
      return { status: 200, body: String(this.held(id)) };
    }
    if (req.method === 'POST' && req.url === this.base + 'upload') {
      const start = Number(req.header('x-start-byte'));
      const size = Number(req.header('x-file-size'));
      if (!id || !Number.isSafeInteger(start) || !Number.isSafeInteger(size)) {
        return { status: 400, body: 'bad headers' };
      }
      if (start !== this.held(id)) {
        return { status: 400, statusText: 'Wrong start byte', body: String(this.held(id)) };
      }
      const f = this.files.get(id);
      if (f && f.size !== size) return { status: 400, body: 'X-File-Size differs from the size given before' };
      this.append(id, size, req.body || new Uint8Array(0));
      const n = this.held(id);
      if (n > size) return { status: 413, body: 'more than X-File-Size' };
      return { status: 200, body: n === size ? `Success ${n}` : '' };
    }
    return { status: 404, body: 'not found' };
  }

  // Keeps the first n bytes of the request's body as if they had arrived (no answer).
  store(req, n) {
    const id = req.header('x-file-id');
    if (Number(req.header('x-start-byte')) === this.held(id)) {
      this.append(id, Number(req.header('x-file-size')), req.body.subarray(0, n));
    }
  }

  // The client sent `sent` bytes, the server got the first n, then the connection broke.
  partial(req, n, sent = n) {
    if (sent > 0) req.progress(sent);
    this.store(req, n);
    req.fail();
  }
}

// A tus 1.0 server (creation, HEAD, PATCH, termination) at `base` (ending in /).
export class TusModel {
  constructor(base = 'http://h/files/') {
    this.base = base;
    this.uploads = new Map(); // url -> { length, bytes, metadata }
    this.next = 1;
    this.locationStyle = 'path'; // 'path': /files/N (relative, as many servers send); 'absolute'
  }

  bytes(url) { const u = this.uploads.get(url); return u ? u.bytes : null; }
  offset(url) { const u = this.uploads.get(url); return u ? u.bytes.length : null; }

  handle(req) {
    if (req.header('tus-resumable') !== '1.0.0') return { status: 412, body: 'Tus-Resumable missing' };
    if (req.method === 'POST' && req.url === this.base) {
      const length = Number(req.header('upload-length'));
      if (!Number.isSafeInteger(length) || length < 0) return { status: 400, body: 'bad Upload-Length' };
      const id = this.next++;
      const url = this.base + id;
      this.uploads.set(url, { length, bytes: new Uint8Array(0), metadata: req.header('upload-metadata') });
      const loc = this.locationStyle === 'absolute' ? url : new URL(url).pathname;
      return { status: 201, headers: { Location: loc, 'Tus-Resumable': '1.0.0' } };
    }
    const u = this.uploads.get(req.url);
    if (!u) return { status: 404, body: 'no such upload' };
    switch (req.method) {
      case 'HEAD':
        return {
          status: 200,
          headers: { 'Upload-Offset': u.bytes.length, 'Upload-Length': u.length, 'Cache-Control': 'no-store' },
        };
      case 'PATCH': {
        if (req.header('content-type') !== 'application/offset+octet-stream') return { status: 415 };
        const off = Number(req.header('upload-offset'));
        if (off !== u.bytes.length) return { status: 409, body: 'Upload-Offset mismatch' };
        const body = req.body || new Uint8Array(0);
        if (off + body.length > u.length) return { status: 413, body: 'beyond Upload-Length' };
        u.bytes = concat(u.bytes, body);
        return { status: 204, headers: { 'Upload-Offset': u.bytes.length } };
      }
      case 'DELETE':
        this.uploads.delete(req.url);
        return { status: 204 };
      default:
        return { status: 405 };
    }
  }

  // Keeps the first n bytes of the PATCH's body as if they had arrived (no answer).
  store(req, n) {
    const u = this.uploads.get(req.url);
    if (u && Number(req.header('upload-offset')) === u.bytes.length) {
      u.bytes = concat(u.bytes, req.body.subarray(0, n));
    }
  }

  // The client sent `sent` bytes, the server got the first n, then the connection broke.
  partial(req, n, sent = n) {
    if (sent > 0) req.progress(sent);
    this.store(req, n);
    req.fail();
  }
}

// ------------------------------------------------------------------ helpers --

// Deterministic file contents: `n` bytes derived from `seed`.
export function pattern(n, seed = 1) {
  const out = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 255;
  }
  return out;
}

export function makeFile(bytes, { name = 'f.bin', lastModified = 1700000000000, type = '' } = {}) {
  if (typeof bytes === 'number') bytes = pattern(bytes);
  return new File([bytes], name, { lastModified, type });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls cond() every ms until it is true; rejects after `within` ms.
export async function until(cond, { within = 2000, every = 1, what = 'condition' } = {}) {
  const end = Date.now() + within;
  for (;;) {
    if (cond()) return;
    if (Date.now() > end) throw new Error(`until: ${what} not reached within ${within} ms`);
    await sleep(every);
  }
}
