/**
 * The segment's HTTP server: iPXE scripts (decided by the manager, src/ipxe/http.ts serves them) and
 * artifacts, the segment's local registry cache under `/registry/`, and the paths its configuration names
 * (`BootConfig.relays`: the installer's calls) relayed as they are to the manager that serves them, so the
 * worker holds no install state and knows no install path. It runs on every core (http-cores.ts):
 * `spec.boot.httpProcesses` processes share the port and the worker decides for them. Or, with
 * `spec.boot.artifactServer` nginx, the worker's own nginx takes the port, serves `/artifacts/` itself and
 * passes everything else to this server on a private unix socket (http-nginx.ts).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBody } from '../core/http.ts';
import {
  type BootScriptResolver,
  countBootFetch,
  createBootHttpHandler,
  type FetchSummary,
} from '../ipxe/http.ts';
import { startLocalRegistry } from '../registry/local.ts';
import { type HttpCores, httpProcessCount, listen, PROCESS_HEADER, startHttpCores } from './http-cores.ts';
import { artifactServer, startNginxFront } from './http-nginx.ts';
import {
  type BootConfig,
  type HttpRelay,
  type HttpRelayRequest,
  type HttpRelayResponse,
  subjects,
} from './protocol.ts';
import type { Segment, SegmentServer } from './segment.ts';

const REGISTRY_PREFIX = '/registry/';

/** The server, and `ready` once its other processes listen too (the worker's own serves from the start). */
export async function serveHttp(
  seg: Segment,
  first: BootConfig,
): Promise<SegmentServer & { ready: Promise<void> }> {
  const { transport, log, network } = seg;
  let relays = first.relays;
  const count = httpProcessCount(seg.spec.boot);
  const front = artifactServer(seg.spec.boot);
  const resolveScript: BootScriptResolver = (q) =>
    transport.request(
      subjects.script,
      {
        network,
        mac: q.mac,
        remoteAddress: q.remoteAddress,
        baseUrl: seg.httpBase,
        ...(q.params.get('arch') ? { arch: q.params.get('arch')! } : {}),
        // Boot media (src/media) carry the site's enrolment token and the Node they were made for.
        ...(q.params.has('token') ? { token: q.params.get('token')! } : {}),
        ...(q.params.get('node') ? { node: q.params.get('node')! } : {}),
      },
      { timeout: 15_000 },
    );
  const onFetch = (f: FetchSummary) => {
    if (f.kind === 'other') return;
    seg.report({
      kind: 'http',
      network,
      ip: f.remoteAddress.replace(/^::ffff:/, ''),
      path: f.path,
      what: f.kind,
      status: f.status,
      bytes: f.bytes,
      durationMs: Math.round(f.durationMs),
      ...(f.mac ? { mac: f.mac } : {}),
    });
  };
  const boot = createBootHttpHandler({ artifactsDir: seg.artifacts, logger: log, resolveScript, onFetch });
  const registry = await startLocalRegistry({ dataDir: seg.dataDir, network, transport, log });
  /** Every route; `remote` is the client's address (another process passes it with a proxied request). */
  const route = (req: IncomingMessage, res: ServerResponse, remote: string) => {
    if (req.url?.startsWith(REGISTRY_PREFIX)) return registry.handle(req, res);
    // Paths the configuration names (the installer's calls) go to the manager that serves them.
    const relay = relays.find((x) => req.url?.startsWith(x.prefix));
    if (!relay) return boot(req, res, remote);
    void relayHttp(seg, relay, req, res, remote);
  };
  if (front === 'nginx') {
    const behind = await behindNginx(seg, route, count, (f) => {
      countBootFetch(f);
      onFetch(f);
    });
    return {
      ready: Promise.resolve(),
      update(next) {
        relays = next.relays;
      },
      stop: behind.stop,
    };
  }
  const http = createServer((req, res) => {
    if (count > 1) res.setHeader(PROCESS_HEADER, '0');
    route(req, res, req.socket.remoteAddress ?? '');
  });
  const host = seg.spec.serverAddress;
  const port = seg.spec.boot.httpPort;
  const publicOpts = { port, host, ...(count > 1 ? { reusePort: true } : {}) };
  await listen(http, publicOpts);
  const workerPrefixes = () => [REGISTRY_PREFIX, ...relays.map((r) => r.prefix)];
  // With more processes the worker serves the port only until they all listen, and again if none does:
  // connections it already holds finish with it. (Closing a SO_REUSEPORT listener resets what waits in
  // its own accept queue at that instant: a worker's start or a crash of every process, not a steady state.)
  let serving = true;
  let stopped = false;
  const onServing = (n: number) => {
    if (n === count && serving) {
      serving = false;
      http.close();
    } else if (n === 0 && !serving && !stopped) {
      serving = true;
      listen(http, publicOpts).catch((err) => log.error('boot HTTP: cannot take the port back', { err }));
    }
  };
  let cores: HttpCores | undefined;
  if (count > 1) {
    try {
      cores = await startHttpCores({
        count,
        artifacts: seg.artifacts,
        host,
        port,
        prefixes: workerPrefixes(),
        resolveScript,
        onFetch: (f) => {
          countBootFetch(f);
          onFetch(f);
        },
        onServing,
        route,
        log,
      });
    } catch (err) {
      log.warn('boot HTTP served by the worker alone: cannot start its other processes', { err });
    }
  }
  return {
    // Not awaited by the worker: its own server answers everything until the others listen.
    ready: cores?.ready ?? Promise.resolve(),
    update(next) {
      relays = next.relays;
      cores?.setPrefixes(workerPrefixes());
    },
    stop: async () => {
      stopped = true;
      http.closeAllConnections();
      await Promise.all([cores?.stop(), new Promise<void>((r) => http.close(() => r()))]);
    },
  };
}

/**
 * This server on a unix socket of the worker's own, behind the segment's nginx on the public port: nginx
 * serves `/artifacts/` (its fetches reported through `onFetch`) and passes every other request here, the
 * client's address in X-Real-IP (set by nginx, and only nginx can reach the socket).
 */
async function behindNginx(
  seg: Segment,
  route: (req: IncomingMessage, res: ServerResponse, remote: string) => void,
  processes: number,
  onFetch: (f: FetchSummary) => void,
): Promise<{ stop(): Promise<void> }> {
  const dir = join(seg.dataDir, 'run', `http-${seg.network}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let socket = join(dir, 'node.sock');
  // A unix socket's path holds at most 107 bytes: a deep data dir gets one in a private temp dir.
  const socketDir = Buffer.byteLength(socket) > 100 ? mkdtempSync(join(tmpdir(), 'strata-http-')) : undefined;
  if (socketDir) socket = join(socketDir, 'node.sock');
  rmSync(socket, { force: true });
  const inner = createServer((req, res) => route(req, res, String(req.headers['x-real-ip'] ?? '')));
  // Longer than nginx's upstream keepalive_timeout (60 s): nginx, not Node, closes an idle connection.
  inner.keepAliveTimeout = 75_000;
  const close = async () => {
    inner.closeAllConnections();
    await new Promise<void>((r) => inner.close(() => r()));
    if (socketDir) rmSync(socketDir, { recursive: true, force: true });
  };
  await listen(inner, { path: socket });
  try {
    const nginx = await startNginxFront({
      dir,
      host: seg.spec.serverAddress,
      port: seg.spec.boot.httpPort,
      artifacts: seg.artifacts,
      socket,
      processes,
      onFetch,
      log: seg.log,
    });
    return {
      stop: async () => {
        await nginx.stop();
        await close();
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** A call relayed to the manager that serves it; 503 (retry) when the manager does not answer. */
async function relayHttp(
  seg: Segment,
  relay: HttpRelay,
  req: IncomingMessage,
  res: ServerResponse,
  remote: string,
): Promise<void> {
  try {
    const r = await seg.transport.request<HttpRelayRequest, HttpRelayResponse>(
      relay.subject,
      {
        network: seg.network,
        method: req.method ?? 'GET',
        path: req.url!,
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
        body: await readBody(req, 1 << 20),
        remoteAddress: remote.replace(/^::ffff:/, ''),
      },
      { timeout: 30_000 },
    );
    res.writeHead(r.status, { ...r.headers, 'content-type': r.contentType });
    res.end(r.body);
  } catch (err) {
    seg.log.warn('relayed request failed', { err, path: req.url, subject: relay.subject });
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.end('strata manager unavailable, retry\n');
  }
}
