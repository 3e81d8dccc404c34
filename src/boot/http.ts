/**
 * The segment's HTTP server: iPXE scripts (decided by the manager, src/ipxe/http.ts serves them) and
 * artifacts, the segment's local registry cache under `/registry/`, and the paths its configuration names
 * (`BootConfig.relays`: the installer's calls) relayed as they are to the manager that serves them, so the
 * worker holds no install state and knows no install path.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readBody } from '../core/http.ts';
import { createBootHttpHandler } from '../ipxe/http.ts';
import { startLocalRegistry } from '../registry/local.ts';
import {
  type BootConfig,
  type HttpRelay,
  type HttpRelayRequest,
  type HttpRelayResponse,
  subjects,
} from './protocol.ts';
import type { Segment, SegmentServer } from './segment.ts';

export async function serveHttp(seg: Segment, first: BootConfig): Promise<SegmentServer> {
  const { transport, log, network } = seg;
  let relays = first.relays;
  const boot = createBootHttpHandler({
    artifactsDir: seg.artifacts,
    logger: log,
    resolveScript: (q) =>
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
      ),
    onFetch: (f) => {
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
    },
  });
  const registry = await startLocalRegistry({ dataDir: seg.dataDir, network, transport, log });
  const http = createServer((req, res) => {
    if (req.url?.startsWith('/registry/')) return registry.handle(req, res);
    // Paths the configuration names (the installer's calls) go to the manager that serves them.
    const relay = relays.find((x) => req.url?.startsWith(x.prefix));
    if (!relay) return boot(req, res);
    void relayHttp(seg, relay, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(seg.spec.boot.httpPort, seg.spec.serverAddress, () => resolve());
  });
  return {
    update(next) {
      relays = next.relays;
    },
    stop: () =>
      new Promise<void>((r) => {
        http.closeAllConnections();
        http.close(() => r());
      }),
  };
}

/** A call relayed to the manager that serves it; 503 (retry) when the manager does not answer. */
async function relayHttp(
  seg: Segment,
  relay: HttpRelay,
  req: IncomingMessage,
  res: ServerResponse,
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
        remoteAddress: (req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
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
