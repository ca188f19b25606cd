// resumed: a small resumable-upload page, following the article's flow.
//
// Upload: ask GET /status how many bytes the server holds for this file,
// then POST /upload everything from that byte on. Stop aborts the request;
// the server keeps what it received, so pressing Upload again resumes.
// XMLHttpRequest is used for the body because fetch cannot report upload
// progress.
'use strict';

(() => {
  const form = document.getElementById('upload-form');
  const input = document.getElementById('file');
  const uploadButton = document.getElementById('upload');
  const stopButton = document.getElementById('stop');
  const progress = document.getElementById('progress');
  const progressText = document.getElementById('progress-text');
  const stateLine = document.getElementById('state');

  // The upload in progress: { controller, xhr, sent } or null.
  let current = null;

  function setState(state, text) {
    stateLine.dataset.state = state;
    stateLine.textContent = text;
  }

  // done: the server confirmed the whole file (which matters for 0 bytes).
  function showProgress(loaded, total, done = false) {
    progress.max = Math.max(total, 1);
    progress.value = done ? progress.max : loaded;
    const percent = done ? 100 : total > 0 ? Math.floor((loaded * 100) / total) : 0;
    progressText.textContent = `${loaded} of ${total} bytes (${percent}%)`;
  }

  function setBusy(busy) {
    const focusMoves = document.activeElement === (busy ? uploadButton : stopButton);
    uploadButton.disabled = busy;
    input.disabled = busy;
    stopButton.disabled = !busy;
    if (focusMoves) (busy ? stopButton : uploadButton).focus();
  }

  // The article's file id: name-size-lastModified. A header value can only
  // carry Latin-1, so a name with other characters is percent-encoded (the
  // article's own client cannot send such a name at all).
  function fileIdFor(file) {
    const name = /^[\t\x20-\x7e\x80-\xff]*$/.test(file.name)
      ? file.name
      : encodeURIComponent(file.name);
    return `${name}-${file.size}-${file.lastModified}`;
  }

  function stoppedError() {
    return new DOMException('stopped', 'AbortError');
  }

  function serverReason(status, statusText, body) {
    let reason = `the server answered ${status} ${statusText}`.trimEnd();
    const text = String(body || '').trim();
    if (text && text.length <= 200) reason += ` (${text})`;
    return reason;
  }

  // How many bytes the server holds for this id (0 if none).
  async function heldBytes(fileId, signal) {
    const response = await fetch('status', {
      headers: { 'X-File-Id': fileId },
      cache: 'no-store',
      signal,
    });
    const text = await response.text();
    if (response.status !== 200) {
      throw new Error(`status check failed: ${serverReason(response.status, response.statusText, text)}`);
    }
    if (!/^\s*\d+\s*$/.test(text)) {
      throw new Error(`status check failed: unexpected answer "${text.slice(0, 100)}"`);
    }
    return Number(text);
  }

  // POST the file from startByte on. Resolves with the response text on 200.
  function send(job, file, fileId, startByte) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      job.xhr = xhr;
      xhr.open('POST', 'upload');
      xhr.setRequestHeader('X-File-Id', fileId);
      xhr.setRequestHeader('X-Start-Byte', String(startByte));
      xhr.setRequestHeader('X-File-Size', String(file.size));
      xhr.upload.onprogress = (e) => {
        job.sent = startByte + e.loaded;
        showProgress(job.sent, file.size);
      };
      xhr.onload = () => {
        if (xhr.status === 200) resolve(xhr.responseText);
        else reject(new Error(serverReason(xhr.status, xhr.statusText, xhr.responseText)));
      };
      xhr.onerror = () => reject(new Error('the connection failed; press Upload to resume'));
      xhr.onabort = () => reject(stoppedError());
      xhr.send(file.slice(startByte));
    });
  }

  async function upload() {
    if (current) return;
    const file = input.files[0];
    if (!file) {
      setState('error', 'Choose a file first.');
      return;
    }
    const fileId = fileIdFor(file);
    const job = { controller: new AbortController(), xhr: null, sent: 0 };
    current = job;
    setBusy(true);
    setState('checking', 'Asking the server how much of the file it already holds…');
    try {
      const startByte = await heldBytes(fileId, job.controller.signal);
      if (job.controller.signal.aborted) throw stoppedError();
      if (startByte > file.size) {
        throw new Error(`the server holds ${startByte} bytes, more than the file's ${file.size}`);
      }
      job.sent = startByte;
      showProgress(startByte, file.size);
      setState('uploading', startByte > 0
        ? `Uploading, resumed at byte ${startByte}…`
        : 'Uploading…');
      const answer = await send(job, file, fileId, startByte);
      if (/^Success \d+/.test(answer)) {
        showProgress(file.size, file.size, true);
        setState('done', `Done: the server holds all ${file.size} bytes.`);
      } else {
        setState('error', 'Error: the server did not confirm completion; press Upload to resume.');
      }
    } catch (err) {
      if (err && err.name === 'AbortError') {
        setState('stopped', `Stopped after ${job.sent} of ${file.size} bytes were sent. Press Upload to resume.`);
      } else {
        setState('error', `Error: ${err && err.message ? err.message : err}.`);
      }
    } finally {
      current = null;
      setBusy(false);
    }
  }

  function stop() {
    if (!current) return;
    current.controller.abort();
    if (current.xhr) current.xhr.abort();
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    upload();
  });
  stopButton.addEventListener('click', stop);
  input.addEventListener('change', () => {
    const file = input.files[0];
    showProgress(0, file ? file.size : 0);
    if (!file) {
      setState('idle', 'Choose a file to upload.');
      return;
    }
    setState('ready', `Ready to upload ${file.name} (${file.size} bytes).`);
  });
  setState('idle', 'Choose a file to upload.');
})();
