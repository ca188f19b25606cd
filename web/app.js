// resumed's upload page: every picked or dropped file starts at once, a few at a time
// (UploadQueue), each in its own row; uploader.js does the resuming.
//
// Settings come from the page's query string, so that a deployment can link to the
// variant it needs without editing files:
//   ?protocol=tus|article  (default tus: unguessable upload URLs, and cancel deletes)
//   ?chunk=8M              bytes per request, for proxies that buffer request bodies
//   ?concurrency=3         uploads moving bytes at once
//   ?endpoint=/files/      where uploads are created
'use strict';

(() => {
  const { Uploader, UploadQueue } = window.ResumedUploader;

  const params = new URLSearchParams(location.search);
  const settings = {
    protocol: params.get('protocol') === 'article' ? 'article' : 'tus',
    chunkSize: parseSize(params.get('chunk')),
    concurrency: Math.max(1, Number(params.get('concurrency')) || 3),
    endpoint: params.get('endpoint') || null,
  };
  const queue = new UploadQueue({ concurrency: settings.concurrency });

  const input = document.getElementById('file');
  const drop = document.getElementById('drop');
  const list = document.getElementById('uploads');
  const template = document.getElementById('row-template');
  const announcer = document.getElementById('announce');
  const unfinished = document.getElementById('unfinished');
  const unfinishedList = document.getElementById('unfinished-list');

  function parseSize(text) {
    const m = /^(\d+)\s*([kmg]?)i?b?$/i.exec(String(text || '').trim());
    if (!m) return 0;
    return Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()];
  }

  function formatBytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
  }

  function formatDuration(s) {
    if (!Number.isFinite(s)) return '';
    s = Math.max(0, Math.round(s));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }

  function announce(text) {
    announcer.textContent = text;
  }

  // ---- one row per file ----

  function addRow(file) {
    const row = template.content.firstElementChild.cloneNode(true);
    const $ = (sel) => row.querySelector(sel);
    const progress = $('progress');
    const pauseButton = $('.pause');
    const cancelButton = $('.cancel');
    $('.name').textContent = file.name;
    $('.size').textContent = formatBytes(file.size);
    progress.setAttribute('aria-label', `Upload of ${file.name}`);
    pauseButton.setAttribute('aria-label', `Pause ${file.name}`);
    cancelButton.setAttribute('aria-label', `Cancel ${file.name}`);
    list.appendChild(row);

    let countdown = null;
    const uploader = new Uploader({
      file,
      protocol: settings.protocol,
      endpoint: settings.endpoint,
      chunkSize: settings.chunkSize,
      token: true,
      onProgress: (sent, total, up) => showProgress(sent, total, up),
      onAcknowledged: (offset) => {
        row.dataset.acknowledged = String(offset);
        $('.stored').textContent = `${formatBytes(offset)} stored`;
      },
      onState: (state, up) => showState(state, up),
    });
    row.uploader = uploader;

    function showProgress(sent, total, up) {
      progress.max = Math.max(total, 1);
      progress.value = total === 0 && up.state === 'done' ? 1 : sent;
      const pct = total > 0 ? Math.floor((sent * 100) / total) : (up.state === 'done' ? 100 : 0);
      $('.percent').textContent = `${pct}%`;
      row.dataset.sent = String(sent);
      const moving = up.state === 'uploading' && up.speed > 0;
      $('.speed').textContent = moving ? `${formatBytes(up.speed)}/s` : '';
      $('.eta').textContent = moving && Number.isFinite(up.eta) ? `${formatDuration(up.eta)} left` : '';
    }

    function stateText(state, up) {
      switch (state) {
        case 'queued': return 'Queued';
        case 'checking': return 'Connecting…';
        case 'uploading': return 'Uploading';
        case 'retrying': return `Retrying in ${Math.max(0, Math.ceil((up.retryAt - Date.now()) / 1000))} s`;
        case 'offline': return 'Offline: waiting for the network';
        case 'paused': return 'Paused';
        case 'done': return 'Done';
        case 'failed': return `Failed: ${up.error ? up.error.message : 'unknown error'}`;
        case 'stopped': return 'Stopped';
        case 'cancelled': return 'Cancelled';
        default: return state;
      }
    }

    function showState(state, up) {
      row.dataset.state = state;
      $('.state').textContent = stateText(state, up);
      clearInterval(countdown);
      if (state === 'retrying') {
        countdown = setInterval(() => { $('.state').textContent = stateText('retrying', up); }, 1000);
      }
      if (state === 'uploading' || state === 'checking') forgetListed(up.key);
      if (state !== 'uploading') {
        $('.speed').textContent = '';
        $('.eta').textContent = '';
      }
      if (state === 'done') showProgress(up.total, up.total, up);
      const paused = state === 'paused';
      pauseButton.textContent = paused ? 'Resume' : 'Pause';
      pauseButton.setAttribute('aria-label', `${paused ? 'Resume' : 'Pause'} ${file.name}`);
      const over = state === 'done' || state === 'failed' || state === 'cancelled';
      pauseButton.hidden = over;
      cancelButton.hidden = over;
      if (over && row.contains(document.activeElement)) list.focus();
      if (['done', 'failed', 'cancelled', 'paused', 'retrying', 'offline'].includes(state)) {
        announce(`${file.name}: ${stateText(state, up)}`);
      }
    }

    pauseButton.addEventListener('click', () => {
      if (uploader.state === 'paused') uploader.resume();
      else uploader.pause();
    });
    cancelButton.addEventListener('click', () => uploader.cancel());

    queue.add(uploader).catch(() => { /* shown in the row by onState('failed') */ });
  }

  function start(files) {
    for (const file of files) addRow(file);
  }

  // ---- uploads left unfinished by an earlier visit ----

  function forgetListed(key) {
    const item = key && unfinishedList.querySelector(`li[data-key="${CSS.escape(key)}"]`);
    if (item) item.remove();
    unfinished.hidden = unfinishedList.children.length === 0;
  }

  function listUnfinished() {
    for (const entry of Uploader.unfinished()) {
      const item = document.createElement('li');
      item.dataset.key = entry.key;
      const text = document.createElement('span');
      text.textContent = `${entry.name} (${formatBytes(entry.size)})`;
      const forget = document.createElement('button');
      forget.type = 'button';
      forget.textContent = 'Forget';
      forget.setAttribute('aria-label', `Forget ${entry.name}`);
      forget.addEventListener('click', () => {
        Uploader.forget(entry.key);
        forgetListed(entry.key);
      });
      item.append(text, ' ', forget);
      unfinishedList.appendChild(item);
    }
    unfinished.hidden = unfinishedList.children.length === 0;
  }

  // ---- picking and dropping ----

  input.addEventListener('change', () => {
    start(Array.from(input.files));
    input.value = ''; // the same file can be picked again
  });
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
  }
  for (const type of ['dragleave', 'drop']) {
    drop.addEventListener(type, () => drop.classList.remove('over'));
  }
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) start(Array.from(e.dataTransfer.files));
  });
  // A file dropped beside the area must not replace the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());

  list.tabIndex = -1;
  listUnfinished();
})();
