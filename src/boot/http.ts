/**
 * The segment's HTTP server: iPXE scripts (decided by the manager, src/ipxe/http.ts serves them) and
 * artifacts, the segment's local registry cache under `/registry/`, and the installer's calls under
 * `/install/` relayed to the manager as they are (the worker holds no install state).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readBody } from '../core/http.ts';
import { createBootHttpHandler } from '../ipxe/http.ts';
import { startLocalRegistry } from '../registry/local.ts';
import { type InstallHttpRequest, type InstallHttpResponse, subjects } from './protocol.ts';
import type { Segment, SegmentServer } from './segment.ts';

export async function serveHttp(seg: Segment): Promise<SegmentServer> {
  const { transport, log, network } = seg;
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
    if (!req.url?.startsWith('/install/')) return boot(req, res);
    void relayInstall(seg, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(seg.spec.boot.httpPort, seg.spec.serverAddress, () => resolve());
  });
  return {
    stop: () =>
      new Promise<void>((r) => {
        http.closeAllConnections();
        http.close(() => r());
      }),
  };
}

/** An installer's call, relayed to the manager; 503 (retry) when the manager does not answer. */
async function relayInstall(seg: Segment, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const r = await seg.transport.request<InstallHttpRequest, InstallHttpResponse>(
      subjects.install,
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
    seg.log.warn('install request failed', { err, path: req.url });
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.end('strata manager unavailable, retry\n');
  }
}
