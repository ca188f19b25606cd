// server.mjs - @tus/server + @tus/file-store: the baseline of bench/tus_compare.py and a foreign
// tus server for the client tests (tests/client/test_tus_node.py).
//
// Usage: node server.mjs PORT DIR     (or env PORT / TUS_DIR; PORT 0 picks one)
// Prints "tus-node: listening on http://127.0.0.1:PORT" on stderr once bound,
// the same shape as resumed's line, so the harness can parse both alike.
//
// Deliberately the stock setup from the @tus/server README: a plain node:http
// server handing every request to Server#handle (what Server#listen does too),
// default options (MemoryLocker, FileStore's default FileKvStore for the .json
// metadata). Anything tuned here would no longer be "what a @tus/server user
// gets".
import http from 'node:http';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const directory = process.argv[3] ?? process.env.TUS_DIR;
if (!Number.isInteger(port) || port < 0 || !directory) {
  console.error('usage: node server.mjs PORT DIR');
  process.exit(2);
}

const tus = new Server({ path: '/files', datastore: new FileStore({ directory }) });

const server = http.createServer((req, res) => {
  // Benchmark-only shim, the one deviation from stock: node sends a HEAD
  // response with neither Content-Length nor Transfer-Encoding (valid HTTP), but
  // wrk's parser is never told the request was HEAD and waits for a body until
  // the connection closes (wg/wrk#198), so not one request would complete.
  // "Content-Length: 0" is what resumed sends; one more header costs next to
  // nothing. Headers set here are merged into the ones @tus/server writes.
  if (req.method === 'HEAD') res.setHeader('Content-Length', '0');
  tus.handle(req, res);
});

// Only loopback: the benchmark must never expose an upload endpoint.
server.listen(port, '127.0.0.1', () => {
  console.error(`tus-node: listening on http://127.0.0.1:${server.address().port}`);
});
