// Real-browser tests for resumed (Chromium driven by playwright-core).
//
//  1. The article's own client (uploader.js + index.html), unchanged, against
//     build/resumed: a plain upload, then stop mid-way and resume.
//  2. Our page in web/ (served from the server's default web dir): stop
//     mid-way, resume, done; and the server's reason shown on an error.
//
// The article's code is not part of the repository: it is extracted at test
// time from the seed text that lives beside the checkout
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
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  REPO, MiB, sha256, tempDir, scenario, startServer, launchBrowser, closeBrowser, openPage,
} from './lib.mjs';

const SEED = process.env.RESUMED_SEED
  ? path.resolve(process.env.RESUMED_SEED)
  : path.join(path.dirname(REPO), 'shared', 'seed', '000_62fda8adf1aeaf24.txt');

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

// The data files under DIR/uploads (everything but *.meta).
function dataFiles(dir) {
  const up = path.join(dir, 'uploads');
  if (!fs.existsSync(up)) return [];
  return fs.readdirSync(up)
    .filter((name) => !name.endsWith('.meta'))
    .map((name) => path.join(up, name));
}

function onlyDataFile(dir) {
  const files = dataFiles(dir);
  assert.equal(files.length, 1,
    `expected exactly one data file under ${dir}/uploads, found: ${JSON.stringify(files.map((f) => path.basename(f)))}`);
  return files[0];
}

function writeSource(scope, name, size) {
  const dir = tempDir('src');
  scope.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  const data = randomBytes(size);
  fs.writeFileSync(file, data);
  return { file, data, size, sha: sha256(data) };
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
    // Chooses a local file in an <input type=file> by path, through CDP
    // (playwright-core refuses files over 50 MB for a CDP-connected browser;
    // Chromium runs on this machine, so a path is all it needs). Chromium
    // fires the input's input and change events.
    async chooseFile(selector, file) {
      const { result } = await cdp.send('Runtime.evaluate', {
        expression: `document.querySelector(${JSON.stringify(selector)})`,
      });
      assert.ok(result.objectId, `no element matches ${selector}`);
      await cdp.send('DOM.enable');
      await cdp.send('DOM.setFileInputFiles', { files: [file], objectId: result.objectId });
      await cdp.send('Runtime.releaseObject', { objectId: result.objectId });
    },
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

// The seed text has three top-level fenced code blocks, in order: server.js,
// uploader.js, index.html (the indented ```javascript snippets in its
// numbered list are excerpts, not files).
function articleFiles() {
  if (!fs.existsSync(SEED)) {
    throw new Error(
      `the article's seed text is missing: ${SEED}\n` +
      'It is expected beside the repository at ../shared/seed/ (set RESUMED_SEED to override).');
  }
  const lines = fs.readFileSync(SEED, 'utf8').split(/\r?\n/);
  const blocks = [];
  let open = null;
  for (const line of lines) {
    if (open) {
      if (line.trim() === '```') { blocks.push(open); open = null; } else open.lines.push(line);
    } else {
      const m = /^(\s*)```(.*)$/.exec(line);
      if (m) open = { topLevel: m[1] === '' && m[2].trim() === '', lines: [] };
    }
  }
  const files = blocks.filter((b) => b.topLevel).map((b) => `${b.lines.join('\n')}\n`);
  const problem =
    files.length !== 3 ? `found ${files.length} top-level fenced code blocks, expected 3`
    : !files[1].includes('class Uploader') ? 'the 2nd code block is not uploader.js (no "class Uploader")'
    : !files[2].includes('<script src="uploader.js">') ? 'the 3rd code block is not index.html'
    : null;
  if (problem) throw new Error(`cannot extract the article's client from ${SEED}: ${problem}`);
  return { uploaderJs: files[1], indexHtml: files[2] };
}

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

describe('our page (web/)', () => {
  test('upload, stop mid-way, resume, done', { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
    const dir = serverDir(scope);
    // No --web: the server must find the repository's web/ by default.
    const server = await startServer(scope, { dir });
    const index = await fetch(`${server.url}/`);
    const indexBody = await index.text();
    assert.equal(index.status, 200, 'GET / status');
    assert.equal(indexBody, fs.readFileSync(path.join(REPO, 'web', 'index.html'), 'utf8'),
      'GET / (no --web flag) should serve the repository\'s web/index.html');

    const src = writeSource(scope, 'our page 80MiB.bin', 80 * MiB);
    const { page, uploads, chooseFile, throttleUpload, unthrottle } = await newPage(scope);
    await page.goto(`${server.url}/`);

    const state = page.getByRole('status');
    const progress = page.getByRole('progressbar', { name: 'Progress' });
    const uploadButton = page.getByRole('button', { name: 'Upload' });
    const stopButton = page.getByRole('button', { name: 'Stop' });
    const input = page.getByLabel('File');

    assert.equal(await state.getAttribute('aria-live'), 'polite');
    assert.equal(await state.getAttribute('data-state'), 'idle', 'app.js ran');
    assert.equal(await stopButton.isDisabled(), true, 'Stop is disabled before an upload');

    await chooseFile('#file', src.file);
    const fileId = await articleFileId(input);
    assert.equal(await state.getAttribute('data-state'), 'ready');

    await throttleUpload(SLOW_UPLOAD);
    await uploadButton.click();
    await page.waitForFunction((size) => document.getElementById('progress').value >= size / 4,
      src.size, { timeout: 60_000, polling: 20 });
    assert.equal(await state.getAttribute('data-state'), 'uploading');
    assert.match(await page.locator('#progress-text').textContent(), new RegExp(`^\\d+ of ${src.size} bytes \\(\\d+%\\)$`));
    await stopButton.click();
    await page.waitForFunction(() => document.getElementById('state').dataset.state !== 'uploading',
      null, { timeout: 30_000 });
    assert.equal(await state.getAttribute('data-state'), 'stopped', `state after Stop: ${await state.textContent()}`);
    assert.match(await state.textContent(), /Stopped/);
    assert.equal(await uploadButton.isEnabled(), true, 'Upload is enabled again after Stop');

    const held = await status(server, fileId);
    t.diagnostic(`stopped: /status reports ${held} of ${src.size} bytes`);
    assert.ok(held > 0 && held < src.size, `after stop, /status should be a partial count in (0, ${src.size}), got ${held}`);
    const kept = fs.readFileSync(onlyDataFile(dir));
    assert.equal(kept.length, held, `stored partial file length should equal /status (${held})`);
    assert.ok(kept.equals(src.data.subarray(0, held)), 'the stored partial file is a prefix of the source');

    await unthrottle();
    await uploadButton.click();
    await page.waitForFunction(
      () => ['done', 'error', 'stopped'].includes(document.getElementById('state').dataset.state),
      null, { timeout: 120_000, polling: 50 });
    assert.equal(await state.getAttribute('data-state'), 'done', `final state: ${await state.textContent()}`);
    assert.equal(await page.locator('#progress-text').textContent(), `${src.size} of ${src.size} bytes (100%)`);
    assert.equal(await progress.evaluate((p) => p.value === p.max), true, 'progress bar full');

    assert.equal(uploads.length, 2, 'two POST /upload requests (first, then the resume)');
    assert.deepEqual(
      [uploads[0]['x-file-id'], uploads[0]['x-start-byte'], uploads[0]['x-file-size']],
      [fileId, '0', String(src.size)], 'first POST /upload headers');
    assert.deepEqual(
      [uploads[1]['x-file-id'], uploads[1]['x-start-byte'], uploads[1]['x-file-size']],
      [fileId, String(held), String(src.size)], 'resume POST /upload headers');

    const stored = onlyDataFile(dir);
    assert.equal(fs.statSync(stored).size, src.size, 'stored file size');
    assert.equal(sha256File(stored), src.sha, 'stored file sha256 equals the source');
    assert.equal(await status(server, fileId), 0, 'a finished upload is forgotten: /status → 0');
  }));

  test("shows the server's reason on an error", { timeout: TEST_TIMEOUT }, (t) => scenario(async (scope) => {
    const dir = serverDir(scope);
    const server = await startServer(scope, {
      dir, web: path.join(REPO, 'web'), extraArgs: ['--max-size', '1M'],
    });
    const src = writeSource(scope, 'too big.bin', 2 * MiB);
    const { page, chooseFile } = await newPage(scope);
    await page.goto(`${server.url}/`);
    await chooseFile('#file', src.file);
    await page.getByRole('button', { name: 'Upload' }).click();
    const state = page.getByRole('status');
    await page.waitForFunction(
      () => ['done', 'error', 'stopped'].includes(document.getElementById('state').dataset.state),
      null, { timeout: 60_000, polling: 50 });
    assert.equal(await state.getAttribute('data-state'), 'error');
    assert.match(await state.textContent(), /\b413\b/,
      'the error names the server\'s status (POST /upload with X-File-Size 2 MiB > --max-size 1M → 413)');
    assert.deepEqual(dataFiles(dir).map((f) => fs.statSync(f).size).filter((n) => n > 0), [],
      'nothing beyond the limit is kept');
  }));
});
