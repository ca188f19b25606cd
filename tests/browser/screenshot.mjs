// Makes docs/screenshot.png: our page (web/) in a 900×700 window with three
// uploads in three states — one done, one uploading at about 40 %, one queued
// (?concurrency=1). The image is the whole page, a little taller than 700.
// Not a test (node --test does not pick it up); run it by hand from anywhere:
//
//   node tests/browser/screenshot.mjs [OUT.png]
//
// It starts build/resumed and Chromium the way the browser tests do (lib.mjs)
// and kills both by PID when it is done. Uploads are held part-way with
// Chromium's upload throttling.
//
// Env: RESUMED_BIN, CHROMIUM (see lib.mjs).

import fs from 'node:fs';
import path from 'node:path';
import {
  REPO, MiB, scenario, startServer, launchBrowser, closeBrowser, openPage, writeSource,
  setInputFiles,
} from './lib.mjs';

const OUT = path.resolve(process.argv[2] || path.join(REPO, 'docs', 'screenshot.png'));

function waitRow(page, name, states, minFraction = 0) {
  return page.waitForFunction(({ name, states, minFraction }) => {
    const r = [...document.querySelectorAll('#uploads li.row')]
      .find((x) => x.querySelector('.name').textContent === name);
    return !!r && states.includes(r.dataset.state) &&
      Number(r.dataset.sent || 0) >= minFraction * r.querySelector('progress').max;
  }, { name, states, minFraction }, { timeout: 60_000, polling: 20 });
}

await launchBrowser();
try {
  await scenario(async (scope) => {
    const server = await startServer(scope, { web: path.join(REPO, 'web') });
    const done = writeSource(scope, 'holiday-photos.zip', 7 * MiB + 314_159);
    const moving = writeSource(scope, 'interview-recording.mp4', 96 * MiB + 161_803);
    const waiting = writeSource(scope, 'site-backup-2024-06-30.tar.gz', 48 * MiB + 271_828);
    const { page, cdp, throttleUpload } = await openPage(scope, {
      viewport: { width: 900, height: 700 }, colorScheme: 'light',
    });
    // One upload at a time, so that the last file waits in the queue.
    await page.goto(`${server.url}/?concurrency=1`);

    await setInputFiles(cdp, '#file', [done.file]);
    await waitRow(page, path.basename(done.file), ['done']);

    await throttleUpload(8 * MiB);
    await setInputFiles(cdp, '#file', [moving.file, waiting.file]);
    await waitRow(page, path.basename(waiting.file), ['queued']);
    await waitRow(page, path.basename(moving.file), ['uploading'], 0.4);
    await page.mouse.move(0, 0);
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    fs.mkdirSync(path.dirname(OUT), { recursive: true });
    await page.screenshot({ path: OUT, fullPage: true }); // the whole page: ~900×790
    console.log(`wrote ${OUT}`);
  });
} finally {
  await closeBrowser();
}
