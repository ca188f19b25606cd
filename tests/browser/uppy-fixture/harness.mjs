// Page side of tests/browser/uppy.test.mjs: Uppy core + its Tus plugin (from
// the prebuilt bundle the test copies beside this file), no UI. The test
// drives it through window.harness with page.evaluate; everything handed
// back is plain JSON.
import { Uppy, Tus } from './uppy.min.mjs';
import { testBytes } from './prng.mjs';

let run = null;

// Starts one Uppy upload of `files` ([{ name, seed, size }], bytes from
// prng.mjs) to `endpoint`, in PATCHes of at most chunkSize bytes. With
// `pause: { name, afterBytes }`, that file is paused (uppy.pauseResume) in the
// first 'upload-progress' event reporting more than afterBytes; it stays
// paused until harness.resume().
function start({ endpoint, chunkSize = Infinity, files, pause = null }) {
  if (run) throw new Error('harness.start called twice');
  const uppy = new Uppy({ autoProceed: false, debug: false })
    // retryDelays: [] — a bad answer from the server must fail the upload,
    // not be retried away. chunkSize must not be undefined: tus-js-client
    // would then send empty PATCHes forever (Infinity is its own default).
    .use(Tus, { endpoint, chunkSize, retryDelays: [] });

  const events = [];         // ordered 'kind:name' strings, to check sequencing
  const uploadErrors = [];   // 'upload-error' events
  const errors = [];         // 'error' events and a rejected upload()
  let paused = null;         // { name, bytesUploaded, bytesTotal, uploadURL }
  let onPaused;
  const pausedPromise = new Promise((resolve) => { onPaused = resolve; });

  for (const f of files) {
    uppy.addFile({
      name: f.name,
      type: 'application/octet-stream',
      source: 'harness',
      data: new Blob([testBytes(f.seed, f.size)], { type: 'application/octet-stream' }),
    });
  }

  uppy.on('upload-progress', (file, progress) => {
    if (!pause || paused || file.name !== pause.name) return;
    if (progress.bytesUploaded <= pause.afterBytes) return;
    // Set before pauseResume: it emits events that can re-enter this handler.
    paused = {
      name: file.name,
      bytesUploaded: progress.bytesUploaded,
      bytesTotal: progress.bytesTotal,
      uploadURL: uppy.getFile(file.id).tus?.uploadUrl ?? null,
    };
    uppy.pauseResume(file.id);
    events.push(`paused:${file.name}`);
    onPaused(paused);
  });
  uppy.on('upload-success', (file) => events.push(`success:${file.name}`));
  uppy.on('upload-error', (file, error, response) => {
    events.push(`error:${file?.name}`);
    uploadErrors.push({ name: file?.name, message: String(error?.message ?? error), status: response?.status ?? null });
  });
  uppy.on('error', (error) => errors.push(String(error?.message ?? error)));

  const completed = new Promise((resolve) => {
    uppy.once('complete', (result) => resolve(result));
    uppy.upload().catch((err) => {
      errors.push(`upload() rejected: ${err?.message ?? err}`);
      resolve(null);
    });
  });

  const summary = completed.then((result) => ({
    completeFired: result !== null,
    successful: (result?.successful ?? []).map((f) => ({
      name: f.name, size: f.size, uploadURL: f.response?.uploadURL ?? null,
    })),
    failed: (result?.failed ?? []).map((f) => ({ name: f.name, error: String(f.error) })),
    uploadErrors,
    errors,
    events,
    paused,
  }));

  run = { uppy, pausedPromise, summary, events, get paused() { return paused; } };
}

window.harness = {
  start,
  // Resolves with the pause details, or with null if the upload ended first.
  waitPaused: () => Promise.race([run.pausedPromise, run.summary.then(() => null)]),
  resume() {
    const file = run.uppy.getFiles().find((f) => f.name === run.paused.name);
    run.events.push(`resumed:${file.name}`);
    run.uppy.pauseResume(file.id);
  },
  // Resolves once Uppy reported 'complete' (or upload() rejected).
  result: () => run.summary,
};
document.getElementById('state').textContent = 'ready';
