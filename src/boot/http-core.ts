/**
 * Entry of one more process of a segment's HTTP boot server, forked by the boot worker (http-cores.ts says
 * why and how the work is split). It answers artifacts itself with the worker's own handler, asks the
 * worker for every script decision, sends it every fetch summary, and proxies the worker's prefixes to it
 * whole. Its IPC channel to the worker is its life line: the moment the channel closes, it exits.
 */
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import { createLogger } from '../core/log.ts';
import { type BootScriptResult, createBootHttpHandler, type FetchSummary } from '../ipxe/http.ts';
import { batcher, CLIENT_HEADER, type FromCore, IDLE_MS, PROCESS_HEADER, type ToCore } from './http-cores.ts';

process.on('disconnect', () => process.exit(0));
if (!process.send) {
  process.stderr.write('http-core.ts is started by the boot worker (src/boot/http-cores.ts), over IPC\n');
  process.exit(2);
}
process.stderr.on('error', () => {});

const send = (m: FromCore, then?: () => void) => {
  if (process.connected) process.send!(m, undefined, undefined, () => then?.());
};

const onFetch = batcher<FetchSummary>((list) => send({ t: 'fetches', list }));
const askScript = batcher<Extract<FromCore, { t: 'scripts' }>['list'][number]>((list) =>
  send({ t: 'scripts', list }),
);

/** Script decisions waiting on the worker (which always answers: its own request times out at 15 s). */
const waiting = new Map<number, (r: BootScriptResult | Error) => void>();
let nextId = 1;

let prefixes: string[] = [];
process.on('message', (m: ToCore) => {
  if (m.t === 'start') start(m);
  else if (m.t === 'prefixes') prefixes = m.prefixes;
  else if (m.t === 'scripts') {
    for (const a of m.list) {
      const w = waiting.get(a.id);
      waiting.delete(a.id);
      w?.(a.result ?? new Error(a.error ?? 'no answer from the boot worker'));
    }
  }
});
send({ t: 'hello' });

function start(m: Extract<ToCore, { t: 'start' }>): void {
  prefixes = m.prefixes;
  const log = createLogger({ component: 'boot-http', process: m.index });
  const handler = createBootHttpHandler({
    artifactsDir: m.artifacts,
    logger: log,
    onFetch,
    resolveScript: (q) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        waiting.set(id, (r) => (r instanceof Error ? reject(r) : resolve(r)));
        askScript({ id, mac: q.mac, remoteAddress: q.remoteAddress, query: q.params.toString() });
      }),
  });
  // Idle connections closed by this side first, well before the worker's (http-cores.ts).
  const agent = new Agent({ keepAlive: true, timeout: IDLE_MS });
  const index = String(m.index);

  /** A request under the worker's prefixes, passed to it whole and its answer passed back as it comes. */
  const proxy = (req: IncomingMessage, res: ServerResponse) => {
    const headers = withoutHop(req.headers);
    headers[CLIENT_HEADER] = req.socket.remoteAddress ?? '';
    const up = request({ socketPath: m.socket, agent, method: req.method, path: req.url, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, { ...withoutHop(r.headers), [PROCESS_HEADER]: index });
      r.pipe(res);
    });
    up.on('error', (err) => {
      log.warn('request to the boot worker failed', { err, path: req.url });
      if (res.headersSent) return void res.destroy();
      res.writeHead(503, { 'content-type': 'text/plain', [PROCESS_HEADER]: index });
      res.end('strata boot worker unavailable, retry\n');
    });
    res.once('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  };

  const server = createServer((req, res) => {
    res.setHeader(PROCESS_HEADER, index);
    const url = req.url ?? '/';
    if (prefixes.some((p) => url.startsWith(p))) return proxy(req, res);
    handler(req, res);
  });
  server.once('error', (err) => send({ t: 'failed', message: err.message }, () => process.exit(1)));
  server.listen({ host: m.host, port: m.port, reusePort: true }, () => send({ t: 'ready' }));
}

/** Headers that belong to one connection, not to the request or response passed on. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'upgrade']);

function withoutHop(h: IncomingMessage['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP.has(k)) out[k] = v;
  return out;
}
