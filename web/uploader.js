// resumed's browser client: a drop-in for the article's Uploader that resumes by itself.
//
//   const up = new Uploader({ file, onProgress });
//   const done = await up.upload();   // true: stored; false: stopped; throws: permanent error
//
// One file, no dependencies, no build step. It is a classic script (it defines Uploader,
// UploadQueue and ResumedUploader on the global object, and module.exports under Node);
// web/uploader.mjs re-exports the same classes for `import { Uploader } from '/uploader.mjs'`.
// A single file cannot be both: `export` is a syntax error in a classic <script>.
//
// Protocols: the article's (GET status, POST upload; the default, so its page works
// unchanged) and tus 1.0 (creation, HEAD, PATCH, termination).
//
// Why it is built this way:
// - XMLHttpRequest, not fetch, for every request: fetch cannot report upload progress,
//   and one transport keeps the client testable with one fake.
// - "sent" (what the browser handed to the network) and "acknowledged" (what the server
//   confirmed holding) are kept apart: only the second survives a cut, so every retry
//   asks the server for its offset before sending.
// - chunkSize bounds each request body: a proxy that buffers whole bodies (nginx's
//   default) forwards nothing of a request that is cut, so without chunks an upload
//   behind it can never resume.
// - The localStorage entry is keyed by a fingerprint that includes a hash of the file's
//   first and last 64 KiB, so two different files with equal name, size and date do not
//   continue each other's uploads.
(function (root, factory) {
  'use strict';
  const api = factory(root);
  if (typeof module === 'object' && module && module.exports) module.exports = api;
  else {
    root.ResumedUploader = api;
    if (!root.Uploader) root.Uploader = api.Uploader;
    if (!root.UploadQueue) root.UploadQueue = api.UploadQueue;
  }
})(typeof globalThis !== 'undefined' ? globalThis : this, function (root) {
  'use strict';

  const STORAGE_PREFIX = 'resumed:upload:';
  const TOKEN_KEY = 'resumed:token';
  const EDGE = 64 * 1024;
  const TUS_VERSION = '1.0.0';

  // ------------------------------------------------------------------ helpers --

  function abortError() {
    const err = new Error('stopped');
    err.name = 'AbortError';
    return err;
  }

  // A failure worth another attempt (network, stall, 5xx, 409, 423).
  function retriableError(message, status) {
    const err = new Error(message);
    err.retriable = true;
    err.status = status || 0;
    return err;
  }

  function permanentError(message, status) {
    const err = new Error(message);
    err.retriable = false;
    err.status = status || 0;
    return err;
  }

  function isRetriableStatus(status) {
    return status === 0 || status >= 500 || status === 409 || status === 423;
  }

  // The server's reason for a status: a problem+json detail, else the first line of the
  // body, else the status text.
  function serverReason(res) {
    let text = String(res.text || '').trim();
    const type = res.header('Content-Type') || '';
    if (/json/i.test(type)) {
      try {
        const j = JSON.parse(text);
        text = String(j.detail || j.title || j.message || text);
      } catch (_) { /* not JSON after all */ }
    } else if (/html/i.test(type) || /^</.test(text)) {
      // A proxy's error page (nginx's 413, a 502): its <title>, not a line of markup.
      const m = /<title[^>]*>([^<]*)<\/title>/i.exec(text) || /<h1[^>]*>([^<]*)<\/h1>/i.exec(text);
      text = m ? m[1].trim() : '';
    }
    text = text.split(/\r?\n/)[0].slice(0, 200);
    let msg = `the server answered ${res.status}${res.statusText ? ' ' + res.statusText : ''}`;
    if (text && !(res.statusText && text.includes(res.statusText))) msg += `: ${text}`;
    return msg;
  }

  // Delay before retry number `attempt` (0 for the first retry): exponential from `base`,
  // capped at `max`, with "equal jitter" (half fixed, half random) so that many clients cut
  // off by the same event do not come back in step, and none comes back at once.
  function backoffDelay(attempt, base, max, random) {
    const rnd = random || Math.random;
    const d = Math.min(max, base * Math.pow(2, Math.min(attempt, 30)));
    return Math.round(d / 2 + rnd() * (d / 2));
  }

  // A 53-bit string hash (two 32-bit multiplicative lanes); not cryptographic: it tells
  // files apart, nobody is expected to forge one. crypto.subtle would need a secure
  // context, which a page served from a LAN address is not.
  function hashBytes(bytes, seed) {
    let h1 = 0xdeadbeef ^ (seed || 0);
    let h2 = 0x41c6ce57 ^ (seed || 0);
    for (let i = 0; i < bytes.length; i++) {
      const c = bytes[i];
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
  }

  function utf8(s) {
    return new TextEncoder().encode(String(s));
  }

  async function blobBytes(blob) {
    return new Uint8Array(await blob.arrayBuffer());
  }

  // The key of a file's localStorage entry: name, size, lastModified, endpoint, protocol
  // and a hash of the first and last 64 KiB.
  async function fingerprint(file, endpoint, protocol) {
    const head = await blobBytes(file.slice(0, Math.min(EDGE, file.size)));
    const tail = await blobBytes(file.slice(Math.max(0, file.size - EDGE), file.size));
    const meta = [file.name, file.size, file.lastModified || 0, endpoint, protocol].join('\n');
    return STORAGE_PREFIX + [hashBytes(utf8(meta), 1), hashBytes(head, 2), hashBytes(tail, 3)].join('-');
  }

  function base64Utf8(s) {
    let bin = '';
    for (const b of utf8(s)) bin += String.fromCharCode(b);
    return btoa(bin);
  }

  function defaultStorage() {
    try {
      return root.localStorage || null;
    } catch (_) {
      return null; // blocked by the browser's privacy settings
    }
  }

  function storageGet(storage, key) {
    try {
      const v = storage && storage.getItem(key);
      return v ? JSON.parse(v) : null;
    } catch (_) {
      return null;
    }
  }

  function storageSet(storage, key, value) {
    try {
      if (storage) storage.setItem(key, JSON.stringify(value));
    } catch (_) { /* full or blocked: resume after reload is lost, the upload goes on */ }
  }

  function storageRemove(storage, key) {
    try {
      if (storage) storage.removeItem(key);
    } catch (_) { /* blocked */ }
  }

  function randomToken() {
    const bytes = new Uint8Array(16);
    root.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // The per-browser token: made once, kept in storage.
  function browserToken(storage) {
    let t = null;
    try { t = storage && storage.getItem(TOKEN_KEY); } catch (_) { /* blocked */ }
    if (t && /^[0-9a-f]{32}$/.test(t)) return t;
    t = randomToken();
    try { if (storage) storage.setItem(TOKEN_KEY, t); } catch (_) { /* blocked */ }
    return t;
  }

  // The article's file id; a header value carries Latin-1 only, so another name is
  // percent-encoded (the article's own client cannot send it at all).
  function articleFileId(file) {
    const name = /^[\t\x20-\x7e\x80-\xff]*$/.test(file.name) ? file.name : encodeURIComponent(file.name);
    return `${name}-${file.size}-${file.lastModified}`;
  }

  function baseURL() {
    try {
      if (root.document && root.document.baseURI) return root.document.baseURI;
      if (root.location && root.location.href) return root.location.href;
    } catch (_) { /* not in a page */ }
    return 'http://localhost/';
  }

  // --------------------------------------------------------------- the queue --

  // At most `concurrency` uploads move bytes at once; the others wait in order. A paused
  // or retrying upload gives its place up, so one bad file does not hold the others.
  class UploadQueue {
    constructor({ concurrency = 3 } = {}) {
      this.concurrency = Math.max(1, concurrency | 0);
      this.active = 0;
      this.waiting = [];
    }

    // Resolves when a place is free; the caller must release() it exactly once.
    acquire(signal) {
      if (signal && signal.aborted) return Promise.reject(abortError());
      if (this.active < this.concurrency) {
        this.active++;
        return Promise.resolve();
      }
      return new Promise((resolve, reject) => {
        const entry = { resolve, reject, signal, onAbort: null };
        if (signal) {
          entry.onAbort = () => {
            const i = this.waiting.indexOf(entry);
            if (i >= 0) this.waiting.splice(i, 1);
            reject(abortError());
          };
          signal.addEventListener('abort', entry.onAbort, { once: true });
        }
        this.waiting.push(entry);
      });
    }

    release() {
      const next = this.waiting.shift();
      if (next) {
        if (next.signal) next.signal.removeEventListener('abort', next.onAbort);
        next.resolve(); // the place passes on; active is unchanged
      } else {
        this.active--;
      }
    }

    // Starts (or queues) uploader.upload(); resolves as it does.
    add(uploader) {
      uploader.queue = this;
      return uploader.upload();
    }
  }

  // ------------------------------------------------------------ the uploader --

  const DEFAULTS = {
    protocol: 'article',  // 'article' or 'tus'
    endpoint: null,       // article: base of status/upload (default: the page); tus: '/files/'
    chunkSize: 0,         // bytes per request; 0: the whole rest in one request
    retries: 10,          // failures in a row without progress before giving up
    retryDelay: 1000,     // ms before the first retry; doubles up to retryMaxDelay
    retryMaxDelay: 30000,
    timeout: 30000,       // ms without any progress before a request counts as failed
    headers: {},
    metadata: null,       // tus Upload-Metadata; default filename and filetype
    token: false,         // true: a per-browser random token (X-Upload-Token); or a string
    resume: true,         // keep the upload in storage so that a reload can continue it
    storage: undefined,   // default localStorage
    queue: null,          // an UploadQueue
    random: Math.random,
    XMLHttpRequest: null, // default the global one
  };

  class Uploader {
    constructor(options) {
      const o = Object.assign({}, DEFAULTS, options || {});
      if (!o.file) throw new TypeError('Uploader: file is required');
      if (o.protocol !== 'article' && o.protocol !== 'tus') {
        throw new TypeError(`Uploader: protocol must be 'article' or 'tus'`);
      }
      if (o.storage === undefined) o.storage = defaultStorage();
      this.options = o;
      this.file = o.file;
      this.onProgress = o.onProgress || null;
      this.onAcknowledged = o.onAcknowledged || null;
      this.onState = o.onState || null;
      this.queue = o.queue;
      this.protocol = o.protocol;
      this.endpoint = new URL(o.endpoint || (o.protocol === 'tus' ? '/files/' : './'), baseURL()).href;
      this.token = o.token === true ? browserToken(o.storage) : (o.token || null);
      this.fileId = articleFileId(this.file);
      this.url = null;            // tus: the upload's URL
      this.offset = 0;            // bytes the server confirmed
      this.sent = 0;              // bytes handed to the network
      this.state = 'idle';
      this.error = null;
      this.retryAt = 0;           // when state is 'retrying': Date.now() of the next attempt
      this.speed = 0;             // bytes/s, smoothed
      this.eta = Infinity;        // seconds
      this.key = null;            // storage key
      this._run = null;           // { controller, xhr } of the running upload()
      this._paused = false;
      this._resumeWait = null;
      this._samples = [];
      this._reported = -1;        // the offset onAcknowledged was last called with
    }

    get total() { return this.file.size; }

    // ---- public control ----

    // Resolves true once the server holds the whole file, false when stopped, paused for
    // good by stop(), or cancelled; rejects on a permanent error (err.status, err.message
    // has the server's reason) or when the retries are used up.
    async upload() {
      if (this._run) return this._run.promise;
      const run = { controller: new AbortController(), xhr: null, promise: null, slot: false };
      this._run = run;
      this._paused = false;
      this.error = null;
      run.promise = this._upload(run).finally(() => {
        if (run.slot) this._releaseSlot(run);
        if (this._run === run) this._run = null;
      });
      return run.promise;
    }

    // The article's stop(): the running upload() resolves false; upload() again resumes,
    // even at once (the stopped run is detached here, not when it has wound down).
    stop() {
      const run = this._run;
      if (!run) return;
      this._run = null;
      this._abort(run);
    }

    // Stops sending and gives the queue place up; resume() continues the same upload().
    pause() {
      if (!this._run || this._paused) return;
      this._paused = true;
      if (this._run.xhr) this._run.xhr.abort();
      if (this._run.wake) this._run.wake();
      this._setState('paused');
    }

    resume() {
      if (!this._paused) return;
      this._paused = false;
      if (this._resumeWait) this._resumeWait();
    }

    // Stops, deletes the upload on the server (tus termination) and forgets it.
    async cancel() {
      const run = this._run;
      if (run) {
        run.cancelled = true;
        this._run = null;
        this._abort(run);
        try { await run.promise; } catch (_) { /* cancelled anyway */ }
      }
      if (this.protocol === 'tus' && this.url) {
        try {
          await this._request('DELETE', this.url, this._tusHeaders(), null, null);
        } catch (_) { /* gone or unreachable: it expires on the server */ }
      }
      if (this.key) storageRemove(this.options.storage, this.key);
      this._setState('cancelled');
    }

    // ---- the upload loop ----

    async _upload(run) {
      const o = this.options;
      let failures = 0;
      try {
        if (o.resume && o.storage && !this.key) this.key = await fingerprint(this.file, this.endpoint, this.protocol);
        for (;;) {
          if (run.controller.signal.aborted) throw abortError();
          await this._waitUnpaused(run);
          await this._takeSlot(run);
          if (this._paused) continue; // paused while it waited for its place
          const before = this.offset;
          try {
            this._setState('checking');
            await this._locate(run);
            if (this.offset > this.total) {
              throw permanentError(`the server holds ${this.offset} bytes, more than the file's ${this.total}`);
            }
            this._acknowledge(this.offset); // what the server holds is confirmed too
            if (this._paused) continue;
            this._samples = [];
            this._setState('uploading');
            const finished = await this._sendRest(run);
            if (finished) {
              if (this.key) storageRemove(o.storage, this.key);
              this.sent = this.offset = this.total;
              this._setState('done');
              return true;
            }
          } catch (err) {
            if (run.controller.signal.aborted) throw abortError();
            // Any other abort is pause()'s (even if resume() came in the same tick).
            if (err.name === 'AbortError') continue;
            if (!err.retriable) throw err;
            if (this.offset > before) failures = 0;
            if (++failures > o.retries) {
              throw permanentError(`gave up after ${failures} failed attempts in a row: ${err.message}`, err.status);
            }
            this.error = err;
            this._releaseSlot(run);
            await this._backoff(run, failures - 1);
          }
        }
      } catch (err) {
        if (err.name === 'AbortError' || run.controller.signal.aborted) {
          // Not when upload() was called again already: the new run owns the state.
          if (!run.cancelled && !this._run) this._setState('stopped');
          return false;
        }
        this.error = err;
        this._setState('failed');
        throw err;
      }
    }

    // Sets this.offset to what the server holds (creating the upload when there is none).
    async _locate(run) {
      const o = this.options;
      if (this.protocol === 'article') {
        this.offset = await this._articleStatus(run);
        this._remember({ fileId: this.fileId });
        return;
      }
      const saved = this.key ? storageGet(o.storage, this.key) : null;
      if (!this.url && saved && saved.url) this.url = saved.url;
      if (this.url) {
        const res = await this._request('HEAD', this.url, this._tusHeaders(), null, run);
        if (res.status === 200 || res.status === 204) {
          const off = Number(res.header('Upload-Offset'));
          if (!Number.isSafeInteger(off) || off < 0) throw retriableError('the server sent no valid Upload-Offset');
          const len = res.header('Upload-Length');
          if (len !== null && len !== '' && Number(len) !== this.total) {
            throw permanentError(`the upload at ${this.url} is for ${len} bytes, the file has ${this.total}`);
          }
          this.offset = off;
          return;
        }
        if (res.status === 404 || res.status === 410 || res.status === 403) {
          this.url = null; // expired or removed: start again
          if (this.key) storageRemove(o.storage, this.key);
        } else {
          this._throwFor(res);
        }
      }
      await this._tusCreate(run);
    }

    async _articleStatus(run) {
      const res = await this._request('GET', new URL('status', this.endpoint).href,
        this._articleHeaders(), null, run);
      if (res.status !== 200) this._throwFor(res);
      const text = String(res.text).trim();
      if (!/^\d+$/.test(text)) throw retriableError(`status check: unexpected answer "${text.slice(0, 80)}"`);
      return Number(text);
    }

    async _tusCreate(run) {
      const o = this.options;
      const h = this._tusHeaders();
      h['Upload-Length'] = String(this.total);
      const meta = o.metadata || { filename: this.file.name, filetype: this.file.type || 'application/octet-stream' };
      const pairs = [];
      for (const k of Object.keys(meta)) {
        pairs.push(meta[k] === '' || meta[k] == null ? k : `${k} ${base64Utf8(meta[k])}`);
      }
      if (pairs.length) h['Upload-Metadata'] = pairs.join(',');
      const res = await this._request('POST', this.endpoint, h, null, run);
      if (res.status !== 201) this._throwFor(res);
      const loc = res.header('Location');
      if (!loc) throw permanentError('the server created the upload but sent no Location');
      this.url = new URL(loc, this.endpoint).href;
      this.offset = 0;
      this._remember({ url: this.url });
    }

    _remember(extra) {
      if (!this.key) return;
      const saved = storageGet(this.options.storage, this.key);
      storageSet(this.options.storage, this.key, Object.assign({
        name: this.file.name, size: this.total, lastModified: this.file.lastModified,
        type: this.file.type || '', protocol: this.protocol, endpoint: this.endpoint,
        created: (saved && saved.created) || Date.now(),
      }, extra));
    }

    // Sends from this.offset to the end, chunk by chunk; true when the server has it all.
    async _sendRest(run) {
      const size = this.options.chunkSize > 0 ? this.options.chunkSize : Infinity;
      for (;;) {
        if (this.protocol === 'tus' && this.offset === this.total) return true;
        if (this._paused) throw abortError(); // paused between two requests
        const start = this.offset;
        const end = Math.min(this.total, start + size);
        const body = this.file.slice(start, end);
        const onSent = (loaded) => this._progress(start + Math.min(loaded, end - start));
        this._progress(start);
        let res;
        if (this.protocol === 'tus') {
          const h = this._tusHeaders();
          h['Upload-Offset'] = String(start);
          h['Content-Type'] = 'application/offset+octet-stream';
          res = await this._request('PATCH', this.url, h, body, run, onSent);
          if (res.status !== 204 && res.status !== 200) this._throwFor(res);
          const off = Number(res.header('Upload-Offset'));
          if (!Number.isSafeInteger(off) || off < start || off > end) {
            throw retriableError('the server answered the PATCH without a valid Upload-Offset');
          }
          // A server that takes none of the bytes must not get them again at once, forever.
          if (off === start && end > start) throw retriableError('the server took none of the bytes');
          this._acknowledge(off);
        } else {
          const h = this._articleHeaders();
          h['X-Start-Byte'] = String(start);
          h['X-File-Size'] = String(this.total);
          res = await this._request('POST', new URL('upload', this.endpoint).href, h, body, run, onSent);
          if (res.status !== 200) this._throwFor(res);
          this._acknowledge(end);
          if (/^Success \d+/.test(res.text)) return true;
          if (end === this.total) throw retriableError('the server did not confirm the whole file');
        }
      }
    }

    _throwFor(res) {
      const msg = serverReason(res);
      // The article's 400 "Wrong start byte": someone else moved the offset; ask again.
      if (res.status === 400 && /wrong start byte/i.test(res.statusText || '')) throw retriableError(msg, 400);
      if (isRetriableStatus(res.status)) throw retriableError(msg, res.status);
      throw permanentError(msg, res.status);
    }

    _tusHeaders() {
      const h = Object.assign({}, this.options.headers, { 'Tus-Resumable': TUS_VERSION });
      if (this.token) h['X-Upload-Token'] = this.token;
      return h;
    }

    _articleHeaders() {
      const h = Object.assign({}, this.options.headers, { 'X-File-Id': this.fileId });
      if (this.token) h['X-Upload-Token'] = this.token;
      return h;
    }

    // ---- progress ----

    _progress(sent) {
      this.sent = Math.max(sent, this.offset);
      const now = Date.now();
      const s = this._samples;
      s.push([now, this.sent]);
      while (s.length > 2 && now - s[0][0] > 5000) s.shift();
      if (s.length >= 2 && now > s[0][0]) {
        const rate = ((s[s.length - 1][1] - s[0][1]) * 1000) / (now - s[0][0]);
        this.speed = rate > 0 ? rate : 0;
        this.eta = this.speed > 0 ? (this.total - this.sent) / this.speed : Infinity;
      }
      if (this.onProgress) this.onProgress(this.sent, this.total, this);
    }

    // onAcknowledged fires when the confirmed offset changes, not for every answer that
    // repeats it (a retry's HEAD or status often does).
    _acknowledge(offset) {
      this.offset = offset;
      if (this.sent < offset) this.sent = offset;
      if (offset === this._reported) return;
      this._reported = offset;
      if (this.onAcknowledged) this.onAcknowledged(offset, this.total, this);
    }

    _setState(state) {
      this.state = state;
      if (this.onState) this.onState(state, this);
    }

    // ---- waiting ----

    async _takeSlot(run) {
      if (!this.queue || run.slot) return;
      if (this.queue.active >= this.queue.concurrency) this._setState('queued');
      await this.queue.acquire(run.controller.signal);
      run.slot = true;
    }

    _releaseSlot(run) {
      if (this.queue && run.slot) {
        run.slot = false;
        this.queue.release();
      }
    }

    // Resolves when arm's wake() is called, rejects with an AbortError when the run is
    // stopped. arm(wake) sets the wait up and returns what takes it down again.
    _wait(run, arm) {
      return new Promise((resolve, reject) => {
        const signal = run.controller.signal;
        if (signal.aborted) return reject(abortError());
        let disarm = null;
        let done = false;
        const finish = (settle) => {
          if (done) return;
          done = true;
          disarm();
          signal.removeEventListener('abort', onAbort);
          settle();
        };
        const onAbort = () => finish(() => reject(abortError()));
        signal.addEventListener('abort', onAbort, { once: true });
        disarm = arm(() => finish(resolve));
      });
    }

    async _waitUnpaused(run) {
      if (!this._paused) return;
      this._releaseSlot(run);
      this._setState('paused');
      await this._wait(run, (wake) => {
        this._resumeWait = wake;
        return () => { this._resumeWait = null; };
      });
    }

    // Waits out the backoff delay (and, while the browser is offline, until it is online
    // again: those waits do not count as failures). pause() and stop() cut it short.
    async _backoff(run, attempt) {
      const o = this.options;
      const delay = backoffDelay(attempt, o.retryDelay, o.retryMaxDelay, o.random);
      this.retryAt = Date.now() + delay;
      this._setState('retrying');
      await this._wait(run, (wake) => {
        const timer = setTimeout(wake, delay);
        run.wake = wake;
        return () => { clearTimeout(timer); run.wake = null; };
      });
      await this._waitOnline(run);
    }

    async _waitOnline(run) {
      const nav = root.navigator;
      if (!nav || nav.onLine !== false || typeof root.addEventListener !== 'function') return;
      this._setState('offline');
      await this._wait(run, (wake) => {
        root.addEventListener('online', wake);
        run.wake = wake;
        return () => { root.removeEventListener('online', wake); run.wake = null; };
      });
    }

    _abort(run) {
      run.controller.abort();
      if (run.xhr) run.xhr.abort();
    }

    // ---- one HTTP request ----

    // Resolves with { status, statusText, text, header(name) } for any HTTP answer; rejects
    // with a retriable error on a network failure or a stall (no progress for `timeout` ms),
    // and with an AbortError when aborted.
    _request(method, url, headers, body, run, onSent) {
      const XHR = this.options.XMLHttpRequest || root.XMLHttpRequest;
      const timeout = this.options.timeout;
      return new Promise((resolve, reject) => {
        if (run && run.controller.signal.aborted) return reject(abortError());
        const xhr = new XHR();
        let timer = null;
        let settled = false;
        const finish = (fn, value) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (run && run.xhr === xhr) run.xhr = null;
          fn(value);
        };
        const arm = () => {
          clearTimeout(timer);
          if (timeout > 0) {
            timer = setTimeout(() => {
              finish(reject, retriableError(`no progress for ${Math.round(timeout / 1000)} s`));
              xhr.abort();
            }, timeout);
          }
        };
        if (run) run.xhr = xhr;
        xhr.open(method, url, true);
        for (const name of Object.keys(headers)) xhr.setRequestHeader(name, headers[name]);
        xhr.onload = () => finish(resolve, {
          status: xhr.status,
          statusText: xhr.statusText,
          text: method === 'HEAD' ? '' : xhr.responseText,
          header: (name) => xhr.getResponseHeader(name),
        });
        xhr.onerror = () => finish(reject, retriableError('the connection failed'));
        xhr.onabort = () => finish(reject, abortError());
        xhr.onprogress = arm;
        if (xhr.upload) {
          xhr.upload.onprogress = (e) => {
            arm();
            if (onSent) onSent(e.loaded);
          };
        }
        arm();
        xhr.send(body);
      });
    }

    // ---- stored uploads ----

    // The uploads this browser left unfinished: [{ key, name, size, lastModified, ... }].
    static unfinished(storage) {
      const s = storage === undefined ? defaultStorage() : storage;
      const out = [];
      if (!s) return out;
      try {
        for (let i = 0; i < s.length; i++) {
          const key = s.key(i);
          if (!key || key.indexOf(STORAGE_PREFIX) !== 0) continue;
          const v = storageGet(s, key);
          if (v) out.push(Object.assign({ key }, v));
        }
      } catch (_) { /* blocked */ }
      return out.sort((a, b) => (a.created || 0) - (b.created || 0));
    }

    static forget(key, storage) {
      storageRemove(storage === undefined ? defaultStorage() : storage, key);
    }
  }

  return { Uploader, UploadQueue, fingerprint, backoffDelay, hashBytes, articleFileId };
});
