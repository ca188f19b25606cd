// Real-browser tests of our client (web/uploader.js) and our page (web/index.html,
// app.js, style.css), Chromium driven by playwright-core, against build/resumed:
//
//  - uploader.js as a drop-in for the article's uploader.js under the article's own
//    index.html: stop, resume, done; it also sends X-File-Size (the article's does not);
//  - automatic resume after the server is killed (SIGKILL) and restarted on the same
//    port and dir, without a click;
//  - resume after a page reload by picking the same file again (and no resume for a
//    different file with the same name, size and date);
//  - two files dropped at once; ten files with ?concurrency=2 (never more than two move);
//  - pause and resume; cancel (tus termination: the upload is gone);
//  - errors: the server's reason on a 413, "Retrying in N s" while the server is down;
//  - ?protocol=article with the per-browser X-Upload-Token: two browsers, one file, two
//    uploads;
//  - accessibility (names, live region, keyboard), a phone-sized viewport, and no
//    request leaving the server's origin.
//
// Uploads are caught mid-way with Chromium's upload throttling (lib.mjs openPage
// throttleUpload). Every completed upload is compared with its source by sha256.
//
// Env: RESUMED_WEB (default <repo>/web: the page under test; another dir, e.g. a
//      deliberately broken copy, to check that these tests catch it), and lib.mjs's.
//
// Run: node --test tests/browser/uploader.test.mjs   (or node --test tests/browser/)

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  REPO, MiB, sha256, tempDir, scenario, startServer, killServer, launchBrowser, closeBrowser,
  openPage, writeSource, dataFiles, articleFiles, setInputFiles,
} from './lib.mjs';

const TEST_TIMEOUT = 60_000;
const OUR_WEB = process.env.RESUMED_WEB ? path.resolve(process.env.RESUMED_WEB) : path.join(REPO, 'web');
// While an upload is to be caught mid-way: 32 MiB at 4 MiB/s takes ~8 s.
const SLOW = 4 * MiB;
const BIG = 32 * MiB;
const TERMINAL = ['done', 'failed', 'cancelled', 'stopped'];

// ---------------------------------------------------------------- helpers --

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function serverDir(scope) {
  const dir = tempDir('data');
  scope.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Everything under DIR/uploads (data files, *.meta, temp files).
function uploadsEntries(dir) {
  const up = path.join(dir, 'uploads');
  return fs.existsSync(up) ? fs.readdirSync(up) : [];
}

function fileSize(file) {
  try { return fs.statSync(file).size; } catch { return -1; }
}

// Waits until fn() returns the same value twice, `gap` ms apart; returns it.
async function settled(fn, gap = 250, timeout = 5000) {
  const end = Date.now() + timeout;
  let last = fn();
  for (;;) {
    await sleep(gap);
    const now = fn();
    if (now === last) return now;
    assert.ok(Date.now() < end, `value did not settle within ${timeout} ms (last ${last}, now ${now})`);
    last = now;
  }
}

// tus: the data file of an upload URL (/files/<id> → DIR/uploads/<id>).
function tusDataFile(dir, url) {
  return path.join(dir, 'uploads', new URL(url).pathname.split('/').pop());
}

function assertStored(file, src, what = 'stored file') {
  assert.ok(fs.existsSync(file), `${what}: ${file} exists`);
  assert.equal(fs.statSync(file).size, src.size, `${what}: size`);
  assert.equal(sha256(fs.readFileSync(file)), src.sha, `${what}: sha256 equals the source`);
}

async function tusHead(url) {
  return fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
}

// The article protocol's GET /status, with or without an X-Upload-Token.
async function articleStatus(server, fileId, token = null) {
  const headers = { 'X-File-Id': fileId };
  if (token) headers['X-Upload-Token'] = token;
  const res = await fetch(`${server.url}/status`, { headers });
  const body = await res.text();
  assert.equal(res.status, 200, `GET /status (X-File-Id ${fileId}, token ${token}) → ${res.status} ${body}`);
  assert.match(body, /^\d+$/, `GET /status body should be a decimal count, got ${JSON.stringify(body)}`);
  return Number(body);
}

// ------------------------------------------------------------ the browser --

// A fresh page (own context: own localStorage) that records every request it
// makes ({ method, url, path, headers }), can choose files in an <input
// type=file> or drop them on an element, and throttle its uploads.
async function newPage(scope, contextOptions) {
  const { context, page, cdp, throttleUpload } = await openPage(scope, contextOptions);
  const requests = [];
  page.on('request', (req) => {
    const url = req.url();
    requests.push({ method: req.method(), url, path: url.startsWith('http') ? new URL(url).pathname : url, headers: req.headers() });
  });
  await cdp.send('DOM.enable');
  return {
    context,
    page,
    cdp,
    requests,
    throttleUpload,
    unthrottle: () => throttleUpload(-1),
    chooseFiles: (files, selector = '#file') => setInputFiles(cdp, selector, files),
    // Drags local files from outside the browser onto the element's centre, the
    // way a file manager does (CDP Input.dispatchDragEvent: dragEnter, dragOver, drop).
    async dropFiles(files, selector = '#drop') {
      const box = await page.locator(selector).boundingBox();
      assert.ok(box, `${selector} is not visible`);
      const at = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
      const data = { items: [], files, dragOperationsMask: 1 };
      for (const type of ['dragEnter', 'dragOver', 'drop']) {
        await cdp.send('Input.dispatchDragEvent', { type, ...at, data });
      }
    },
  };
}

// What a row shows, found by its file name (null when there is none).
function rowInfo(page, name) {
  return page.evaluate((n) => {
    const r = [...document.querySelectorAll('#uploads li.row')]
      .find((x) => x.querySelector('.name').textContent === n);
    if (!r) return null;
    return {
      state: r.dataset.state,
      sent: Number(r.dataset.sent || 0),
      acknowledged: Number(r.dataset.acknowledged || 0),
      text: r.querySelector('.state').textContent,
    };
  }, name);
}

// Waits until the row of `name` is in one of `states` (any, if null) and has
// sent at least minSent bytes; returns rowInfo.
async function waitRow(page, name, { states = null, minSent = 0, timeout = 30_000 } = {}) {
  try {
    await page.waitForFunction(({ n, states, minSent }) => {
      const r = [...document.querySelectorAll('#uploads li.row')]
        .find((x) => x.querySelector('.name').textContent === n);
      return !!r && (!states || states.includes(r.dataset.state)) && Number(r.dataset.sent || 0) >= minSent;
    }, { n: name, states, minSent }, { timeout, polling: 20 });
  } catch (err) {
    err.message += `\nrow ${JSON.stringify(name)} shows ${JSON.stringify(await rowInfo(page, name))}`;
    throw err;
  }
  return rowInfo(page, name);
}

// Waits until the row ends and asserts it ended 'done'.
async function waitDone(page, name, timeout = 30_000) {
  const info = await waitRow(page, name, { states: TERMINAL, timeout });
  assert.equal(info.state, 'done', `${name} should end done: ${JSON.stringify(info)}`);
  return info;
}

const tusRequests = (requests, method) => requests.filter((r) => r.method === method && r.path.startsWith('/files/'));

function storageKeys(page) {
  return page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('resumed:upload:')));
}

// ------------------------------------------------------------------ tests --

before(launchBrowser);
after(closeBrowser);

describe("uploader.js as a drop-in under the article's index.html", () => {
  test('stop mid-way, /status is the stored prefix, submit again, done; sends X-File-Size',
    { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
      const { indexHtml, uploaderJs } = articleFiles();
      const web = tempDir('dropin-web');
      scope.defer(() => fs.rmSync(web, { recursive: true, force: true }));
      fs.writeFileSync(path.join(web, 'index.html'), indexHtml);
      fs.copyFileSync(path.join(OUR_WEB, 'uploader.js'), path.join(web, 'uploader.js'));
      const dir = serverDir(scope);
      const server = await startServer(scope, { dir, web });
      const src = writeSource(scope, 'drop-in 24MiB.bin', 24 * MiB);
      const { page, requests, chooseFiles, throttleUpload, unthrottle } = await newPage(scope);

      await page.goto(`${server.url}/`);
      assert.equal(await page.evaluate(() => typeof window.ResumedUploader), 'object',
        'the page runs our uploader.js');
      const log = () => page.locator('#log').textContent();
      const outcome = async (words) => {
        await page.waitForFunction((w) => w.includes(document.getElementById('log').textContent.trim()),
          words, { timeout: 30_000, polling: 20 });
        return (await log()).trim();
      };
      await chooseFiles([src.file], 'form[name=upload] input[name=myfile]');
      const fileId = await page.evaluate(() => {
        const f = document.forms.upload.elements.myfile.files[0];
        return `${f.name}-${f.size}-${f.lastModified}`;
      });

      await throttleUpload(SLOW);
      await page.locator('form[name=upload] input[type=submit]').click();
      // The article's progress line: "завантажується <loaded> / <total>".
      await page.waitForFunction((size) => {
        const m = /завантажується (\d+) \/ (\d+)/.exec(document.getElementById('log').textContent);
        return m && Number(m[1]) >= size / 4 && Number(m[2]) === size;
      }, src.size, { timeout: 20_000, polling: 20 });
      await page.getByRole('button', { name: 'Зупинити завантаження' }).click();
      assert.equal(await outcome(['успішно', 'зупинено', 'помилка']), 'зупинено', "the article's log says stopped");

      const [data] = dataFiles(dir);
      const held = await settled(() => fileSize(data));
      assert.equal(await articleStatus(server, fileId), held, '/status equals the stored size');
      t.diagnostic(`stopped: /status ${held} of ${src.size}`);
      assert.ok(held > 0 && held < src.size, `a partial count in (0, ${src.size}): ${held}`);
      assert.ok(fs.readFileSync(data).equals(src.data.subarray(0, held)), 'the stored part is a prefix of the source');

      await unthrottle();
      await page.locator('form[name=upload] input[type=submit]').click();
      assert.equal(await outcome(['успішно', 'помилка']), 'успішно', "the article's log says success");

      const posts = requests.filter((r) => r.method === 'POST' && r.path === '/upload');
      assert.equal(posts.length, 2, 'two POST /upload (first, then the resume)');
      assert.deepEqual(posts.map((r) => [r.headers['x-file-id'], r.headers['x-start-byte'], r.headers['x-file-size']]),
        [[fileId, '0', String(src.size)], [fileId, String(held), String(src.size)]],
        'X-File-Id, X-Start-Byte and X-File-Size of both POST /upload');
      assert.equal(requests.filter((r) => r.path === '/status').length, 2, 'one GET /status per submit');
      assertStored(dataFiles(dir)[0], src);
      assert.equal(dataFiles(dir).length, 1, 'one data file');
      assert.equal(await articleStatus(server, fileId), 0, 'a finished upload is forgotten: /status → 0');

      // The article's own uploader.js, same page, sends no X-File-Size.
      const articleWeb = tempDir('article-web');
      scope.defer(() => fs.rmSync(articleWeb, { recursive: true, force: true }));
      fs.writeFileSync(path.join(articleWeb, 'index.html'), indexHtml);
      fs.writeFileSync(path.join(articleWeb, 'uploader.js'), uploaderJs);
      const other = await startServer(scope, { web: articleWeb });
      const small = writeSource(scope, 'article small.bin', 64 * 1024);
      const theirs = await newPage(scope);
      await theirs.page.goto(`${other.url}/`);
      assert.equal(await theirs.page.evaluate(() => typeof window.ResumedUploader), 'undefined', "the article's uploader.js");
      await theirs.chooseFiles([small.file], 'form[name=upload] input[name=myfile]');
      await theirs.page.locator('form[name=upload] input[type=submit]').click();
      await theirs.page.waitForFunction(() => document.getElementById('log').textContent === 'успішно', null, { timeout: 10_000 });
      const theirPosts = theirs.requests.filter((r) => r.method === 'POST' && r.path === '/upload');
      assert.equal(theirPosts.length, 1);
      assert.equal(theirPosts[0].headers['x-start-byte'], '0');
      assert.equal(theirPosts[0].headers['x-file-size'], undefined, "the article's client sends no X-File-Size");
    }));
});

describe('our page (web/)', () => {
  test('resumes by itself after the server is killed and restarted on the same port',
    { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
      const dir = serverDir(scope);
      const server = await startServer(scope, { dir, web: OUR_WEB });
      const src = writeSource(scope, 'killed server.bin', BIG);
      const name = path.basename(src.file);
      const { page, requests, chooseFiles, throttleUpload, unthrottle } = await newPage(scope);
      await page.goto(`${server.url}/?protocol=tus`);
      await throttleUpload(SLOW);
      await chooseFiles([src.file]);
      await waitRow(page, name, { states: ['uploading'], minSent: src.size / 4 });
      const [patch0] = tusRequests(requests, 'PATCH');
      assert.ok(patch0, 'a PATCH is under way');
      const data = tusDataFile(dir, patch0.url);
      assert.ok(fileSize(data) > 0, 'the server has stored part of the file');

      await killServer(server, 'SIGKILL');
      const killedAt = requests.length;
      const held = fileSize(data);
      t.diagnostic(`killed with ${held} of ${src.size} bytes stored`);
      assert.ok(held > 0 && held < src.size, `a partial file at the kill: ${held}`);
      const retrying = await waitRow(page, name, { states: ['retrying'], timeout: 10_000 });
      assert.match(retrying.text, /^Retrying in \d+ s$/);

      // Same port and dir: the page's upload URL is valid again.
      const restarted = await startServer(scope, { dir, web: OUR_WEB, listen: new URL(server.url).host });
      await unthrottle();
      await waitDone(page, name);

      const after = requests.slice(killedAt);
      assert.deepEqual(tusRequests(after, 'POST'), [], 'no new upload was created after the restart');
      const patches = tusRequests(after, 'PATCH');
      assert.ok(patches.length >= 1, 'a PATCH after the restart');
      assert.ok(tusRequests(after, 'HEAD').length >= 1, 'the client asked the server for its offset (HEAD)');
      assert.ok(patches.every((p) => p.url === patch0.url), 'the same upload URL');
      assert.equal(patches[0].headers['upload-offset'], String(held),
        'the first PATCH after the restart starts where the killed server had stored up to');
      const id = new URL(patch0.url).pathname;
      assert.match(restarted.log, new RegExp(`"HEAD ${id}" 200[^]*"PATCH ${id}" 204`), 'the restarted server answered HEAD, then PATCH');
      assertStored(data, src);
      assert.deepEqual(await storageKeys(page), [], 'a finished upload is not kept in localStorage');
    }));

  test('after a reload, picking the same file again continues it; a look-alike file does not',
    { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
      const dir = serverDir(scope);
      const server = await startServer(scope, { dir, web: OUR_WEB });
      const src = writeSource(scope, 'reloaded.bin', BIG);
      const name = path.basename(src.file);
      // Same name, size and lastModified; only the first bytes differ.
      const lookDir = tempDir('lookalike');
      scope.defer(() => fs.rmSync(lookDir, { recursive: true, force: true }));
      const look = { file: path.join(lookDir, name), data: Buffer.from(src.data), size: src.size };
      look.data.fill(0x55, 0, 16);
      look.sha = sha256(look.data);
      fs.writeFileSync(look.file, look.data);
      for (const f of [src.file, look.file]) fs.utimesSync(f, 1_700_000_000, 1_700_000_000);

      const { page, requests, chooseFiles, throttleUpload, unthrottle } = await newPage(scope);
      await page.goto(`${server.url}/`);
      assert.equal(await page.locator('#unfinished').isHidden(), true, 'nothing unfinished at first');
      await throttleUpload(SLOW);
      await chooseFiles([src.file]);
      await waitRow(page, name, { states: ['uploading'], minSent: src.size / 4 });
      const [first] = tusRequests(requests, 'PATCH');
      const data = tusDataFile(dir, first.url);

      await page.reload();
      const held = await settled(() => fileSize(data));
      t.diagnostic(`reloaded with ${held} of ${src.size} bytes stored`);
      assert.ok(held > 0 && held < src.size, `a partial file after the reload: ${held}`);
      const unfinished = page.locator('#unfinished');
      assert.equal(await unfinished.isVisible(), true, '#unfinished is shown after the reload');
      assert.match(await page.locator('#unfinished-list').textContent(), new RegExp(name.replace('.', '\\.')));
      assert.equal(await page.locator('#unfinished-list li').count(), 1);
      const reloadedAt = requests.length;

      // The look-alike: a new upload from 0, and the old entry stays listed.
      await chooseFiles([look.file]);
      await waitRow(page, name, { states: ['uploading'] });
      let after = requests.slice(reloadedAt);
      assert.equal(tusRequests(after, 'POST').length, 1, 'the look-alike file creates a new upload (POST /files/)');
      const lookPatch = tusRequests(after, 'PATCH')[0];
      assert.equal(lookPatch.headers['upload-offset'], '0', 'the look-alike starts at 0');
      assert.notEqual(lookPatch.url, first.url, 'the look-alike has its own upload URL');
      const entries = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('resumed:upload:'))
        .map((k) => JSON.parse(localStorage.getItem(k))));
      assert.equal(entries.length, 2, 'two entries in localStorage');
      assert.deepEqual(entries.map((e) => [e.name, e.size, e.lastModified]), [0, 1].map(() => [name, src.size, entries[0].lastModified]),
        'both files have the same name, size and lastModified');
      assert.equal(await unfinished.isVisible(), true, 'the old upload is still listed as unfinished');
      await unthrottle();
      await waitDone(page, name);
      assertStored(tusDataFile(dir, lookPatch.url), look, 'the look-alike');

      // The same file again: continues from the server's offset.
      const secondAt = requests.length;
      await chooseFiles([src.file]);
      await page.waitForFunction(() => document.querySelectorAll('#uploads li.row').length === 2);
      await page.waitForFunction(() => document.querySelectorAll('#uploads li.row')[1].dataset.state === 'done' ||
        document.querySelectorAll('#uploads li.row')[1].dataset.state === 'failed', null, { timeout: 30_000 });
      assert.equal(await page.locator('#uploads li.row').nth(1).getAttribute('data-state'), 'done');
      after = requests.slice(secondAt);
      assert.equal(tusRequests(after, 'POST').length, 0, 'no second POST /files/ for the same file');
      assert.ok(tusRequests(after, 'HEAD').some((r) => r.url === first.url), 'a HEAD of the old upload URL');
      const patches = tusRequests(after, 'PATCH');
      assert.ok(patches.length >= 1 && patches.every((p) => p.url === first.url), 'PATCHes go to the old upload URL');
      assert.equal(patches[0].headers['upload-offset'], String(held), 'the first PATCH starts at the server\'s offset, not 0');
      assert.equal(await unfinished.isHidden(), true, 'the #unfinished entry is gone');
      assert.equal(await page.locator('#unfinished-list li').count(), 0);
      assertStored(data, src);
      assert.deepEqual(await storageKeys(page), [], 'nothing left in localStorage');
    }));

  test('two files dropped at once, in 1 MiB chunks', { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
    const dir = serverDir(scope);
    const server = await startServer(scope, { dir, web: OUR_WEB });
    const a = writeSource(scope, 'dropped one.bin', 3 * MiB + 123);
    const b = writeSource(scope, 'dropped two.bin', 2 * MiB);
    const { page, requests, dropFiles } = await newPage(scope);
    await page.goto(`${server.url}/?chunk=1M`);
    await dropFiles([a.file, b.file]);
    for (const src of [a, b]) await waitDone(page, path.basename(src.file));
    assert.equal(await page.locator('#uploads li.row').count(), 2, 'one row per dropped file');
    const posts = tusRequests(requests, 'POST');
    assert.equal(posts.length, 2, 'two uploads created');
    const byUrl = new Map();
    for (const p of tusRequests(requests, 'PATCH')) {
      if (!byUrl.has(p.url)) byUrl.set(p.url, []);
      byUrl.get(p.url).push(Number(p.headers['upload-offset']));
    }
    assert.equal(byUrl.size, 2);
    const stored = [...byUrl.keys()].map((u) => tusDataFile(dir, u));
    const bySize = (x, y) => fs.statSync(x).size - fs.statSync(y).size;
    stored.sort(bySize);
    assertStored(stored[0], b, 'dropped two');
    assertStored(stored[1], a, 'dropped one');
    const offsets = [...byUrl.values()].sort((x, y) => x.length - y.length);
    assert.deepEqual(offsets, [[0, MiB], [0, MiB, 2 * MiB, 3 * MiB]], 'one PATCH per 1 MiB chunk');
  }));

  test('ten files with ?concurrency=2: never more than two move, all done',
    { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
      const dir = serverDir(scope);
      const server = await startServer(scope, { dir, web: OUR_WEB });
      const sources = Array.from({ length: 10 }, (_, i) => writeSource(scope, `file ${i}.bin`, MiB + i * 97 * 1024));
      const { page, requests, chooseFiles, throttleUpload } = await newPage(scope);
      await page.goto(`${server.url}/?concurrency=2`);
      // Every data-state change of every row, sampled as it happens.
      await page.evaluate(() => {
        const w = window.__sample = { maxActive: 0, activeWithQueued: 0, samples: 0 };
        const sample = () => {
          const states = [...document.querySelectorAll('#uploads li.row')].map((r) => r.dataset.state);
          const active = states.filter((s) => s === 'checking' || s === 'uploading').length;
          w.samples++;
          w.maxActive = Math.max(w.maxActive, active);
          if (active === 2 && states.includes('queued')) w.activeWithQueued++;
        };
        new MutationObserver(sample).observe(document.getElementById('uploads'),
          { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
        setInterval(sample, 10);
      });
      await throttleUpload(SLOW);
      await chooseFiles(sources.map((s) => s.file));
      for (const src of sources) await waitDone(page, path.basename(src.file));
      const sample = await page.evaluate(() => window.__sample);
      t.diagnostic(`samples ${sample.samples}, max active ${sample.maxActive}, 2 active + queued ${sample.activeWithQueued}`);
      assert.equal(sample.maxActive, 2, 'at most (and at some point exactly) two rows checking/uploading at once');
      assert.ok(sample.activeWithQueued > 0, 'queued rows waited while two moved');
      const patches = tusRequests(requests, 'PATCH');
      const urls = [...new Set(patches.map((p) => p.url))];
      assert.equal(urls.length, 10, 'ten uploads');
      assert.equal(tusRequests(requests, 'POST').length, 10);
      const bySize = new Map(sources.map((s) => [s.size, s]));
      for (const u of urls) {
        const file = tusDataFile(dir, u);
        const src = bySize.get(fs.statSync(file).size);
        assert.ok(src, `${file} has the size of a source`);
        assertStored(file, src);
        bySize.delete(src.size);
      }
      assert.equal(bySize.size, 0, 'every source is stored');
    }));

  test('pause mid-way: nothing moves; resume: done', { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
    const dir = serverDir(scope);
    const server = await startServer(scope, { dir, web: OUR_WEB });
    const src = writeSource(scope, 'paused.bin', BIG);
    const name = path.basename(src.file);
    const { page, requests, chooseFiles, throttleUpload, unthrottle } = await newPage(scope);
    await page.goto(`${server.url}/`);
    await throttleUpload(SLOW);
    await chooseFiles([src.file]);
    await waitRow(page, name, { states: ['uploading'], minSent: src.size / 4 });
    await page.getByRole('button', { name: `Pause ${name}`, exact: true }).click();
    const paused = await waitRow(page, name, { states: ['paused'], timeout: 5000 });
    assert.equal(paused.text, 'Paused');
    const resume = page.getByRole('button', { name: `Resume ${name}`, exact: true });
    assert.equal(await resume.isVisible(), true, 'the button is now "Resume NAME"');
    assert.equal(await page.getByRole('button', { name: `Pause ${name}`, exact: true }).count(), 0);

    const [patch] = tusRequests(requests, 'PATCH');
    const data = tusDataFile(dir, patch.url);
    const held = await settled(() => fileSize(data));
    const pausedAt = requests.length;
    await sleep(1000);
    assert.equal(fileSize(data), held, 'no bytes reach the server while paused');
    assert.equal(requests.length, pausedAt, 'no requests while paused');
    assert.equal((await rowInfo(page, name)).state, 'paused');
    t.diagnostic(`paused with ${held} of ${src.size} bytes stored`);
    assert.ok(held > 0 && held < src.size, `partial while paused: ${held}`);
    assert.equal((await tusHead(patch.url)).headers.get('upload-offset'), String(held), 'HEAD agrees');

    await unthrottle();
    await resume.click();
    await waitDone(page, name);
    const patches = tusRequests(requests.slice(pausedAt), 'PATCH');
    assert.equal(patches[0].headers['upload-offset'], String(held), 'resume continues at the stored offset');
    assert.equal(tusRequests(requests, 'POST').length, 1, 'one upload');
    assertStored(data, src);
  }));

  // .speed and .eta are written while bytes move; a row that stops must not keep them.
  test('a paused row shows no speed or time left', { timeout: TEST_TIMEOUT },
    (t) => scenario(async (scope) => {
      const server = await startServer(scope, { web: OUR_WEB });
      const src = writeSource(scope, 'speed.bin', BIG);
      const name = path.basename(src.file);
      const { page, chooseFiles, throttleUpload } = await newPage(scope);
      await page.goto(`${server.url}/`);
      await throttleUpload(SLOW);
      await chooseFiles([src.file]);
      await waitRow(page, name, { states: ['uploading'], minSent: src.size / 8 });
      await page.waitForFunction(() => document.querySelector('#uploads .speed').textContent !== '', null, { timeout: 5000 });
      await page.getByRole('button', { name: `Pause ${name}`, exact: true }).click();
      await waitRow(page, name, { states: ['paused'] });
      await sleep(500);
      const shown = await page.locator('#uploads .numbers').textContent();
      assert.deepEqual([await page.locator('#uploads .speed').textContent(), await page.locator('#uploads .eta').textContent()],
        ['', ''], `a paused row shows "${shown}"`);
    }));

  test('cancel mid-way deletes the upload', { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
    const dir = serverDir(scope);
    const server = await startServer(scope, { dir, web: OUR_WEB });
    const src = writeSource(scope, 'cancelled.bin', BIG);
    const name = path.basename(src.file);
    const { page, requests, chooseFiles, throttleUpload } = await newPage(scope);
    await page.goto(`${server.url}/`);
    await throttleUpload(SLOW);
    await chooseFiles([src.file]);
    await waitRow(page, name, { states: ['uploading'], minSent: src.size / 4 });
    const [patch] = tusRequests(requests, 'PATCH');
    assert.ok(fileSize(tusDataFile(dir, patch.url)) > 0, 'part of the file is stored before the cancel');
    assert.equal((await storageKeys(page)).length, 1, 'the upload is in localStorage before the cancel');

    await page.getByRole('button', { name: `Cancel ${name}`, exact: true }).click();
    const info = await waitRow(page, name, { states: TERMINAL, timeout: 10_000 });
    assert.equal(info.state, 'cancelled', JSON.stringify(info));
    assert.equal(info.text, 'Cancelled');
    assert.deepEqual(tusRequests(requests, 'DELETE').map((r) => r.url), [patch.url], 'one DELETE of the upload URL');
    assert.equal((await tusHead(patch.url)).status, 404, 'the upload URL answers 404');
    assert.deepEqual(uploadsEntries(dir), [], 'nothing left under DIR/uploads');
    assert.deepEqual(await storageKeys(page), [], 'no resumed:upload:* entry in localStorage');
    assert.equal(await page.getByRole('button', { name: `Cancel ${name}` }).count(), 0, 'no buttons on a cancelled row');
  }));

  test("a 413 shows the server's reason; a server that is down shows Retrying in N s",
    { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
      const dir = serverDir(scope);
      const server = await startServer(scope, { dir, web: OUR_WEB, extraArgs: ['--max-size', '1M'] });
      const big = writeSource(scope, 'too big.bin', 2 * MiB);
      const { page, requests, chooseFiles } = await newPage(scope);
      await page.goto(`${server.url}/`);
      await chooseFiles([big.file]);
      const info = await waitRow(page, 'too big.bin', { states: TERMINAL, timeout: 10_000 });
      assert.equal(info.state, 'failed', JSON.stringify(info));
      // What the server says to that creation, asked directly.
      const res = await fetch(`${server.url}/files/`, {
        method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(big.size) },
      });
      const reason = (await res.text()).trim();
      assert.equal(res.status, 413);
      assert.ok(reason.length > 0, 'the server gives a reason');
      assert.match(info.text, /^Failed: .*\b413\b/, 'the row names the status');
      assert.ok(info.text.includes(reason), `the row names the server's reason "${reason}": ${info.text}`);
      assert.equal(await page.locator('#announce').textContent(), `too big.bin: ${info.text}`, 'announced');
      assert.equal(tusRequests(requests, 'POST').length, 1, 'a 413 is not retried');
      assert.deepEqual(uploadsEntries(dir), [], 'nothing kept');

      // The server goes away: the next file retries, with a countdown.
      await killServer(server, 'SIGKILL');
      const src = writeSource(scope, 'server down.bin', MiB);
      await chooseFiles([src.file]);
      const retrying = await waitRow(page, 'server down.bin', { states: ['retrying'], timeout: 10_000 });
      assert.match(retrying.text, /^Retrying in [1-9]\d* s$/);
      assert.match(await page.locator('#announce').textContent(), /^server down\.bin: Retrying in \d+ s$/);
      await startServer(scope, { dir, web: OUR_WEB, listen: new URL(server.url).host, extraArgs: ['--max-size', '1M'] });
      await waitDone(page, 'server down.bin', 20_000);
      const [patch] = tusRequests(requests, 'PATCH');
      assertStored(tusDataFile(dir, patch.url), src);
    }));

  test('?protocol=article: two browsers, one file, two uploads (X-Upload-Token)',
    { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
      const dir = serverDir(scope);
      const server = await startServer(scope, { dir, web: OUR_WEB });
      const src = writeSource(scope, 'shared name.bin', 24 * MiB);
      const name = path.basename(src.file);
      const A = await newPage(scope);
      const B = await newPage(scope);
      const postsOf = (p) => p.requests.filter((r) => r.method === 'POST' && r.path === '/upload');

      // A: paused mid-way.
      await A.page.goto(`${server.url}/?protocol=article`);
      await A.throttleUpload(SLOW);
      await A.chooseFiles([src.file]);
      await waitRow(A.page, name, { states: ['uploading'], minSent: src.size / 4 });
      await A.page.getByRole('button', { name: `Pause ${name}`, exact: true }).click();
      await waitRow(A.page, name, { states: ['paused'] });
      const [dataA] = dataFiles(dir);
      const held = await settled(() => fileSize(dataA));
      const tokenA = await A.page.evaluate(() => localStorage.getItem('resumed:token'));
      assert.match(tokenA, /^[0-9a-f]{32}$/, 'A has a per-browser token');
      const fileId = postsOf(A)[0].headers['x-file-id'];
      assert.match(fileId, new RegExp(`^${name.replace('.', '\\.')}-${src.size}-\\d+$`), "the article's file id");
      assert.equal(postsOf(A)[0].headers['x-upload-token'], tokenA, 'A sends its token');
      assert.ok(held > 0 && held < src.size, `A paused with a partial upload: ${held}`);
      assert.equal(await articleStatus(server, fileId, tokenA), held, "/status with A's token: A's offset");
      assert.equal(await articleStatus(server, fileId), 0, '/status without a token: 0');
      assert.equal(await articleStatus(server, fileId, 'f'.repeat(32)), 0, '/status with another token: 0');

      // B: the same file, from 0, to the end.
      await B.page.goto(`${server.url}/?protocol=article`);
      await B.chooseFiles([src.file]);
      await waitDone(B.page, name);
      const tokenB = await B.page.evaluate(() => localStorage.getItem('resumed:token'));
      assert.match(tokenB, /^[0-9a-f]{32}$/);
      assert.notEqual(tokenB, tokenA, 'each browser has its own token');
      const bPosts = postsOf(B);
      assert.equal(bPosts.length, 1);
      assert.deepEqual([bPosts[0].headers['x-file-id'], bPosts[0].headers['x-start-byte'], bPosts[0].headers['x-upload-token']],
        [fileId, '0', tokenB], 'B starts its own upload at 0, with its token, under the same file id');
      assert.equal(await articleStatus(server, fileId, tokenA), held, "B's upload left A's alone");
      assert.equal(dataFiles(dir).length, 2, 'two data files: one per browser');

      // A resumes where it was.
      await A.unthrottle();
      await A.page.getByRole('button', { name: `Resume ${name}`, exact: true }).click();
      await waitDone(A.page, name);
      const aPosts = postsOf(A);
      assert.equal(aPosts.at(-1).headers['x-start-byte'], String(held), 'A resumes at its own offset');
      assert.equal(aPosts.at(-1).headers['x-upload-token'], tokenA);
      const stored = dataFiles(dir);
      assert.equal(stored.length, 2, 'two data files');
      for (const f of stored) assertStored(f, src);
      assert.equal(await articleStatus(server, fileId), 0, '/status without a token: still 0');
    }));

  test('accessible names, live region, keyboard; a 375 px phone without horizontal scroll; same origin only',
    { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
      const dir = serverDir(scope);
      // No --web: the server must find the repository's web/ by default.
      const server = await startServer(scope, { dir, web: process.env.RESUMED_WEB ? OUR_WEB : null });
      const index = await fetch(`${server.url}/`);
      assert.equal(await index.text(), fs.readFileSync(path.join(OUR_WEB, 'index.html'), 'utf8'),
        "GET / (no --web) serves the repository's web/index.html");
      assert.ok(fs.readFileSync(path.join(OUR_WEB, 'app.js'), 'utf8').includes('row-template'), 'the new page');
      const name = `a-very-long-file-name-without-any-spaces-${'x'.repeat(120)}.bin`;
      const src = writeSource(scope, name, 4 * MiB);
      const { page, requests, chooseFiles, throttleUpload, unthrottle } =
        await newPage(scope, { viewport: { width: 375, height: 700 } });
      await page.goto(`${server.url}/`);

      const status = page.getByRole('status');
      assert.equal(await status.getAttribute('id'), 'announce', 'the live region is #announce');
      assert.equal(await status.getAttribute('aria-live'), 'polite');
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'file', 'Tab focuses the file input');
      assert.equal(await page.getByLabel('choose files').getAttribute('id'), 'file', 'the input is labelled');

      await throttleUpload(MiB);
      await chooseFiles([src.file]);
      await waitRow(page, name, { states: ['uploading'], minSent: 1 });
      const bar = page.getByRole('progressbar', { name: `Upload of ${name}`, exact: true });
      assert.equal(await bar.count(), 1, 'the progress bar is named after the file');
      assert.equal(await page.getByRole('button', { name: `Pause ${name}`, exact: true }).count(), 1);
      assert.equal(await page.getByRole('button', { name: `Cancel ${name}`, exact: true }).count(), 1);
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), `Pause ${name}`,
        'the next Tab reaches the row\'s Pause button');
      const widths = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
      assert.ok(widths[0] <= 375, `no horizontal scroll at 375 px with a long name: scrollWidth ${widths[0]}`);
      assert.ok((await bar.evaluate((p) => p.value)) > 0, 'the bar moves');

      await unthrottle();
      await waitDone(page, name);
      assert.equal(await bar.evaluate((p) => p.value === p.max), true, 'the bar is full');
      assert.equal(await status.textContent(), `${name}: Done`, 'the live region announces the end');
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth) <= 375, 'no horizontal scroll when done');
      const [patch] = tusRequests(requests, 'PATCH');
      assertStored(tusDataFile(dir, patch.url), src);

      const outside = requests.filter((r) => !r.url.startsWith(`${server.url}/`) && !r.url.startsWith('data:'));
      assert.deepEqual(outside.map((r) => r.url), [], 'no request leaves the server\'s origin');
      assert.ok(requests.some((r) => r.path === '/style.css') && requests.some((r) => r.path === '/app.js'),
        'the page\'s own files were requested (the recorder works)');
    }));
});
