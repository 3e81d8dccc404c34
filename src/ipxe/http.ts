/**
 * The HTTP boot worker's request handler (plain `node:http`, no framework): iPXE fetches its script from
 * `GET /boot/ipxe?mac=…`, then kernels and initramfs images from `/artifacts/…`.
 *
 * Artifacts are served by `send`, which already does what firmware and iPXE rely on: single Range
 * requests (206, 416 when unsatisfiable), ETag/If-None-Match (304), Last-Modified/If-Modified-Since,
 * HEAD, Content-Length, streaming from disk, and refusing `..` traversal (403) and dotfiles (404). `send`
 * follows symbolic links, so the handler first resolves the path and answers 404 for anything whose real
 * path leaves the artifacts root (a link in there to the admin token file must not serve it).
 * Small artifacts asked for whole (no Range, no condition) are answered from memory with the same headers
 * (small-files.ts: one `stat` a request instead of `send`'s six file-system calls).
 * Which script a node gets is not decided here: an injected resolver (node by MAC, PXE-once) returns
 * the script or an HTTP error. Every finished request — complete or aborted — is reported to `onFetch`
 * so the caller can put "kernel fetched, 9 MB in 0.4 s" on the node's timeline.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { join } from 'node:path';
import send from 'send';
import { type Logger, silentLogger } from '../core/log.ts';
import { counter } from '../core/metrics.ts';
import { BOOT_SCRIPT_PATH } from './paths.ts';
import { normalizeMac } from './script.ts';
import { realPathInside, type SmallFile, SmallFiles } from './small-files.ts';

export interface BootScriptQuery {
  /** Normalised MAC (`52:54:00:12:34:56`). */
  mac: string;
  remoteAddress: string;
  /** All query parameters as sent (e.g. extra ones a DHCP-given URL carries: arch, uuid…). */
  params: URLSearchParams;
}

export type BootScriptResult = { script: string } | { status: number; message: string };

export type BootScriptResolver = (query: BootScriptQuery) => Promise<BootScriptResult>;

export interface FetchSummary {
  remoteAddress: string;
  method: string;
  /** Request path without the query string. */
  path: string;
  kind: 'script' | 'artifact' | 'other';
  status: number;
  /** Body bytes actually written. */
  bytes: number;
  durationMs: number;
  /** False when the client went away before the response was finished. */
  completed: boolean;
  /** The Range header, when there was one. */
  range?: string;
  /** For script fetches with a valid MAC. */
  mac?: string;
}

export interface BootHttpOptions {
  /** Directory holding artifacts (kernels, initramfs…). */
  artifactsDir: string;
  /** URL prefix for artifacts, default `/artifacts/`. */
  artifactsPrefix?: string;
  resolveScript: BootScriptResolver;
  onFetch?: (summary: FetchSummary) => void;
  /**
   * Bytes read from an artifact at a time; default 1 MiB. Node has no sendfile: every byte goes through
   * a buffer, and fs streams' 64 KiB reads made a download take many more trips through JS (1 MiB read
   * ~1.5–2× faster on loopback, BENCHMARKS.md) for up to 1 MiB more memory per download in flight.
   */
  artifactReadBytes?: number;
  /** Cache-Control max-age for artifacts in seconds (content-addressed stores can use a year); default 0. */
  artifactMaxAgeSeconds?: number;
  /** Artifacts up to this size are held in memory (small-files.ts); 0 holds none. Default 1 MiB. */
  smallFileBytes?: number;
  logger?: Logger;
}

/**
 * `remote`: the client's address when the connection is not the client's own (a front server such as
 * the segment's nginx passed the request on); the socket's peer address otherwise.
 */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse, remote?: string) => void;

const requests = counter('strata_http_boot_requests_total', 'HTTP boot requests, by kind and status', [
  'kind',
  'status',
]);
const bytesServed = counter('strata_http_boot_bytes_total', 'HTTP boot body bytes sent, by kind', ['kind']);

/**
 * Counts one finished request. The handler counts its own; a server whose other processes answer too
 * (src/boot/http-cores.ts) counts theirs from the summaries they send, so /metrics shows them all.
 */
export function countBootFetch(f: Pick<FetchSummary, 'kind' | 'status' | 'bytes'>): void {
  requests.inc({ kind: f.kind, status: String(f.status) });
  if (f.bytes) bytesServed.inc({ kind: f.kind }, f.bytes);
}

export function createBootHttpHandler(opts: BootHttpOptions): RequestHandler {
  const prefix = opts.artifactsPrefix ?? '/artifacts/';
  if (!prefix.startsWith('/') || !prefix.endsWith('/'))
    throw new Error('artifactsPrefix must start and end with /');
  const log = opts.logger ?? silentLogger;
  // send passes the options it does not know on to fs.createReadStream, highWaterMark among them.
  const sendOpts: send.SendOptions & { highWaterMark: number } = {
    highWaterMark: opts.artifactReadBytes ?? 1 << 20,
    root: opts.artifactsDir,
    dotfiles: 'ignore',
    index: false,
    etag: true,
    lastModified: true,
    acceptRanges: true,
    maxAge: (opts.artifactMaxAgeSeconds ?? 0) * 1000,
  };
  const small =
    opts.smallFileBytes === 0
      ? undefined
      : new SmallFiles(opts.artifactsDir, { maxFileBytes: opts.smallFileBytes ?? 1 << 20 });
  const cacheControl = `public, max-age=${Math.floor(opts.artifactMaxAgeSeconds ?? 0)}`;

  return (req, res, remote) => {
    const started = performance.now();
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
    const remoteAddress = remote ?? req.socket.remoteAddress ?? '';
    const kind: FetchSummary['kind'] =
      path === BOOT_SCRIPT_PATH ? 'script' : path.startsWith(prefix) ? 'artifact' : 'other';
    const track = { bytes: 0, mac: undefined as string | undefined };

    res.once('close', () => {
      const status = res.statusCode;
      countBootFetch({ kind, status, bytes: track.bytes });
      if (!opts.onFetch) return;
      const summary: FetchSummary = {
        remoteAddress,
        method: req.method ?? '',
        path,
        kind,
        status,
        bytes: track.bytes,
        durationMs: Math.round((performance.now() - started) * 1000) / 1000,
        completed: res.writableFinished,
      };
      const range = req.headers.range;
      if (range) summary.range = range;
      if (track.mac) summary.mac = track.mac;
      try {
        opts.onFetch(summary);
      } catch (err) {
        log.warn('onFetch observer threw', { err });
      }
    });

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return plain(res, req, 405, 'method not allowed\n', track);
    }

    if (kind === 'script') {
      const params = new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1));
      const mac = normalizeMac(params.get('mac') ?? '');
      if (!mac) return plain(res, req, 400, 'missing or invalid mac parameter\n', track);
      track.mac = mac;
      opts.resolveScript({ mac, remoteAddress, params }).then(
        (result) => {
          if ('script' in result) {
            res.setHeader('Cache-Control', 'no-store');
            plain(res, req, 200, result.script, track);
          } else {
            const status = result.status >= 400 && result.status <= 599 ? result.status : 500;
            plain(
              res,
              req,
              status,
              result.message.endsWith('\n') ? result.message : result.message + '\n',
              track,
            );
          }
        },
        (err: unknown) => {
          log.error('boot script resolver failed', { mac, err });
          plain(res, req, 500, 'internal error\n', track);
        },
      );
      return;
    }

    if (kind === 'artifact') {
      const rel = path.slice(prefix.length - 1); // keeps the leading '/'
      if (small && wholeAndUnconditional(req)) {
        void small.get(rel).then((file) => {
          if (file === 'outside') refuseOutside();
          else if (file) sendSmall(file);
          else checkAndSend(rel);
        });
        return;
      }
      checkAndSend(rel);
      return;
    }

    plain(res, req, 404, 'not found\n', track);

    /** The headers `send` sets for a whole file, and its bytes. */
    function sendSmall(file: SmallFile) {
      res.statusCode = 200;
      res.setHeader('Accept-Ranges', 'bytes');
      res.setHeader('Cache-Control', cacheControl);
      res.setHeader('Last-Modified', file.lastModified);
      res.setHeader('ETag', file.etag);
      res.setHeader('Content-Type', file.contentType);
      res.setHeader('Content-Length', file.bytes.length);
      if (req.method === 'HEAD') return void res.end();
      track.bytes += file.bytes.length;
      res.end(file.bytes);
    }

    function checkAndSend(rel: string) {
      void insideRoot(opts.artifactsDir, rel).then((inside) => {
        if (inside) sendArtifact(rel);
        else refuseOutside();
      });
    }

    function refuseOutside() {
      log.debug('artifact refused: its real path leaves the artifacts root', { path });
      plain(res, req, 404, 'not found\n', track);
    }

    function sendArtifact(rel: string) {
      const stream = send(req, rel, sendOpts);
      stream.on('stream', (file: NodeJS.ReadableStream) => {
        file.on('data', (chunk: Buffer) => {
          track.bytes += chunk.length;
        });
      });
      stream.on('directory', () => plain(res, req, 404, 'not found\n', track));
      stream.on(
        'error',
        (err: { status?: number; statusCode?: number; headers?: Record<string, string> }) => {
          const status = err.status ?? err.statusCode ?? 500;
          if (res.headersSent) {
            res.destroy();
            return;
          }
          for (const [k, v] of Object.entries(err.headers ?? {})) res.setHeader(k, v);
          plain(res, req, status, `${STATUS_CODES[status] ?? 'error'}\n`, track);
        },
      );
      stream.pipe(res);
    }
  };
}

/** A request `send` would answer 200 with the whole file: no range, no precondition. */
function wholeAndUnconditional(req: IncomingMessage): boolean {
  const h = req.headers;
  return (
    h.range === undefined &&
    h['if-none-match'] === undefined &&
    h['if-modified-since'] === undefined &&
    h['if-match'] === undefined &&
    h['if-unmodified-since'] === undefined
  );
}

/**
 * False when `rel` (URL path under the root, still %-encoded) names something whose real path is outside
 * `root`. Paths `send` will refuse or not find anyway (bad encoding, traversal, missing) are left to it.
 */
async function insideRoot(root: string, rel: string): Promise<boolean> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rel);
  } catch {
    return true;
  }
  if (decoded.includes('\0') || decoded.split(/[\\/]/).includes('..')) return true; // send: 400 / 403
  try {
    return await realPathInside(root, join(root, decoded));
  } catch {
    return true;
  }
}

function plain(
  res: ServerResponse,
  req: IncomingMessage,
  status: number,
  body: string,
  track: { bytes: number },
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const length = Buffer.byteLength(body, 'utf8');
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', length);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  track.bytes += length;
  // A string, not a Buffer: node:http then sends the headers and the body as one string in one write(),
  // with no Buffer made per answer (a Buffer body goes out as a writev of two).
  res.end(body, 'utf8');
}
