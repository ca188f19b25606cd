// Real-browser tests for resumed (Chromium driven by playwright-core).
//
// The article's own client (uploader.js + index.html), unchanged, against
// build/resumed: a plain upload, then stop mid-way and resume. (Our page in
// web/ and our uploader.js are uploader.test.mjs's.)
//
// The article's code is not part of the repository: lib.mjs articleFiles()
// extracts it at test time from the seed text that lives beside the checkout
// (<repo>/../shared/seed/000_62fda8adf1aeaf24.txt; env RESUMED_SEED overrides).
//
// Starting resumed and Chromium, killing them and cleaning up after each test
// are lib.mjs's (shared with uppy.test.mjs).
//
// Env: RESUMED_BIN (default <repo>/build/resumed), RESUMED_SEED (the seed
//      text), CHROMIUM (default /usr/bin/chromium).
//
// Run: node --test tests/browser/      (or tests/browser/run.sh)

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  MiB, sha256, tempDir, scenario, startServer, launchBrowser, closeBrowser, openPage,
  writeSource, dataFiles, articleFiles, setInputFiles,
} from './lib.mjs';

const TEST_TIMEOUT = 180_000;
// Upload speed while we want to catch an upload mid-way (Chromium network
// emulation paces the request body). 64 MiB at 8 MiB/s takes ~8 s.
const SLOW_UPLOAD = 8 * MiB;

// ---------------------------------------------------------------- helpers --

const sha256File = (file) => sha256(fs.readFileSync(file));

async function status(server, fileId) {
  const res = await fetch(`${server.url}/status`, { headers: { 'X-File-Id': fileId } });
  const body = await res.text();
  assert.equal(res.status, 200, `GET /status (X-File-Id: ${fileId}) → ${res.status} ${body}`);
  assert.match(body, /^\d+$/, `GET /status body should be a decimal count, got ${JSON.stringify(body)}`);
  return Number(body);
}

function onlyDataFile(dir) {
  const files = dataFiles(dir);
  assert.equal(files.length, 1,
    `expected exactly one data file under ${dir}/uploads, found: ${JSON.stringify(files.map((f) => path.basename(f)))}`);
  return files[0];
}

function serverDir(scope) {
  const dir = tempDir('data');
  scope.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ------------------------------------------------------------ the browser --

// A fresh page (lib.mjs openPage) that records every POST /upload it sends,
// with its headers; it can choose a file and throttle the upload.
async function newPage(scope) {
  const { page, cdp, throttleUpload } = await openPage(scope);
  const uploads = [];
  page.on('request', (req) => {
    if (req.method() === 'POST' && new URL(req.url()).pathname === '/upload') uploads.push(req.headers());
  });
  return {
    page,
    uploads,
    chooseFile: (selector, file) => setInputFiles(cdp, selector, file),
    throttleUpload,
    unthrottle: () => throttleUpload(-1),
  };
}

// The article's id for the file chosen in an <input type=file>.
function articleFileId(input) {
  return input.evaluate((el) => {
    const f = el.files[0];
    return f.name + '-' + f.size + '-' + f.lastModified;
  });
}

// ------------------------------------------------------- the article code --

function articleWebDir(scope) {
  const { uploaderJs, indexHtml } = articleFiles();
  const dir = tempDir('articleweb');
  scope.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'uploader.js'), uploaderJs);
  fs.writeFileSync(path.join(dir, 'index.html'), indexHtml);
  return dir;
}

// Opens the article's page. Its index.html has no <meta charset> and its
// script writes Ukrainian words into #log, so it only works if the server
// declares the encoding (the article's node-static sends
// "text/html; charset=UTF-8").
async function openArticlePage(page, server) {
  const response = await page.goto(`${server.url}/`);
  assert.equal(response.status(), 200, 'GET / status');
  const type = response.headers()['content-type'];
  assert.equal(await page.evaluate(() => document.characterSet), 'UTF-8',
    `the article's page (no <meta charset>, Ukrainian text in its script) must be decoded as UTF-8; ` +
    `GET / answered Content-Type: ${JSON.stringify(type)}`);
}

// Waits until the article's #log shows one of the given final words
// (its words: успішно = success, зупинено = stopped, помилка = error) and
// returns the log's text.
async function articleOutcome(page, words = ['успішно', 'зупинено', 'помилка'], timeout = 120_000) {
  try {
    await page.waitForFunction(
      (w) => w.includes(document.getElementById('log').textContent.trim()),
      words, { timeout, polling: 50 });
  } catch (err) {
    err.message += `\n#log shows: ${JSON.stringify(await page.locator('#log').textContent())}`;
    throw err;
  }
  return (await page.locator('#log').textContent()).trim();
}

// ------------------------------------------------------------------ tests --

before(launchBrowser);
after(closeBrowser);

describe("the article's own client, unchanged", () => {
  test('uploads a 3 MiB file', { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
    const web = articleWebDir(scope);
    const dir = serverDir(scope);
    const server = await startServer(scope, { dir, web });
    const src = writeSource(scope, 'article small.bin', 3 * MiB);
    const { page, uploads, chooseFile } = await newPage(scope);

    await openArticlePage(page, server);
    const input = page.locator('form[name=upload] input[name=myfile]');
    await chooseFile('form[name=upload] input[name=myfile]', src.file);
    const fileId = await articleFileId(input);
    await page.locator('form[name=upload] input[type=submit]').click();

    assert.equal(await articleOutcome(page), 'успішно', "the article's log should say success");
    assert.equal(uploads.length, 1, 'one POST /upload');
    assert.equal(uploads[0]['x-file-id'], fileId);
    assert.equal(uploads[0]['x-start-byte'], '0');
    const stored = onlyDataFile(dir);
    assert.equal(fs.statSync(stored).size, src.size, 'stored file size');
    assert.equal(sha256File(stored), src.sha, 'stored file sha256 equals the source');
    assert.equal(await status(server, fileId), 0, 'a finished upload is forgotten: /status → 0');
  }));

  test('stops mid-way and resumes a 64 MiB file', { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
    const web = articleWebDir(scope);
    const dir = serverDir(scope);
    const server = await startServer(scope, { dir, web });
    const src = writeSource(scope, 'article big.bin', 64 * MiB);
    const { page, uploads, chooseFile, throttleUpload, unthrottle } = await newPage(scope);

    await openArticlePage(page, server);
    const input = page.locator('form[name=upload] input[name=myfile]');
    await chooseFile('form[name=upload] input[name=myfile]', src.file);
    const fileId = await articleFileId(input);

    await throttleUpload(SLOW_UPLOAD);
    await page.locator('form[name=upload] input[type=submit]').click();
    // The article's progress line: "завантажується <loaded> / <total>".
    await page.waitForFunction((size) => {
      const m = /завантажується (\d+) \/ (\d+)/.exec(document.getElementById('log').textContent);
      return m && Number(m[1]) >= size / 4;
    }, src.size, { timeout: 60_000, polling: 20 });
    await page.getByRole('button', { name: 'Зупинити завантаження' }).click();
    assert.equal(await articleOutcome(page), 'зупинено', "the article's log should say stopped");

    const held = await status(server, fileId);
    t.diagnostic(`stopped: /status reports ${held} of ${src.size} bytes`);
    assert.ok(held > 0 && held < src.size, `after stop, /status should be a partial count in (0, ${src.size}), got ${held}`);
    const partial = onlyDataFile(dir);
    const kept = fs.readFileSync(partial);
    assert.equal(kept.length, held, `stored partial file length should equal /status (${held})`);
    assert.ok(kept.equals(src.data.subarray(0, held)), 'the stored partial file is a prefix of the source');

    await unthrottle();
    await page.locator('form[name=upload] input[type=submit]').click();
    // #log still says "stopped" until the resumed upload reports; nothing stops it now.
    assert.equal(await articleOutcome(page, ['успішно', 'помилка']), 'успішно',
      "the article's log should say success after resuming");

    assert.equal(uploads.length, 2, 'two POST /upload requests (first, then the resume)');
    assert.equal(uploads[1]['x-file-id'], fileId);
    assert.equal(uploads[1]['x-start-byte'], String(held), 'the resume starts at the byte /status reported');
    const stored = onlyDataFile(dir);
    assert.equal(fs.statSync(stored).size, src.size, 'stored file size');
    assert.equal(sha256File(stored), src.sha, 'stored file sha256 equals the source');
    assert.equal(await status(server, fileId), 0, 'a finished upload is forgotten: /status → 0');
  }));
});
