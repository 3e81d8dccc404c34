/**
 * A test double of Strata's install manager: a small static server for the installer protocol
 * (src/install/PROTOCOL.md), so a test can run the real installer against fixed configs without a Strata
 * platform (test/integration/lab/install-direct.test.ts), and a reference for the real handlers
 * (src/install/manager.ts). It serves one or more nodes' configs and scripts, the OS image
 * file, checks Bearer tokens, and records every event, host key and installed report it receives
 * (`onRequest` sees them as they come). Plain node:http; the OS image is streamed from disk.
 */

import { createReadStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type InstallConfig,
  type InstallEvent,
  type InstalledReport,
  parseHostKeys,
  parseInstallEvent,
  parseInstalledReport,
  renderInstallConfig,
} from '../../src/install/protocol.ts';

export interface StaticNode {
  installToken: string;
  config: InstallConfig;
  preReboot?: string;
  postReboot?: string;
}

export interface InstallServerOptions {
  nodes: Record<string, StaticNode>;
  /** URL path → file, e.g. { '/images/debian.tar.zst': '/…/debian-bookworm-amd64.tar.zst' }. */
  files?: Record<string, string>;
  onRequest?: (r: RecordedRequest) => void;
}

export type RecordedRequest =
  | { kind: 'config' | 'script' | 'file'; node?: string; path: string; at: number }
  | { kind: 'event'; node: string; event: InstallEvent; at: number }
  | { kind: 'hostkey'; node: string; keys: ReturnType<typeof parseHostKeys>; at: number }
  | { kind: 'installed'; node: string; report: InstalledReport; at: number }
  | { kind: 'denied' | 'notfound'; path: string; at: number };

export interface InstallServer {
  server: Server;
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

function bearer(req: IncomingMessage): string {
  const h = req.headers.authorization ?? '';
  return h.startsWith('Bearer ') ? h.slice(7) : '';
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startInstallServer(
  opts: InstallServerOptions,
  listen: { host: string; port?: number },
): Promise<InstallServer> {
  const requests: RecordedRequest[] = [];
  const record = (r: RecordedRequest) => {
    requests.push(r);
    opts.onRequest?.(r);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const at = Date.now();
    const file = opts.files?.[path];
    if (file && req.method === 'GET') {
      record({ kind: 'file', path, at });
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': statSync(file).size,
      });
      createReadStream(file).pipe(res);
      return;
    }
    const m =
      /^\/install\/([^/]+)\/(config|events|hostkey|installed|scripts\/pre-reboot|scripts\/post-reboot)$/.exec(
        path,
      );
    const node = m ? opts.nodes[decodeURIComponent(m[1]!)] : undefined;
    if (!m || !node) {
      record({ kind: 'notfound', path, at });
      res.writeHead(404).end();
      return;
    }
    const name = decodeURIComponent(m[1]!);
    const what = m[2]!;
    const want = what === 'installed' ? node.config.installedToken : node.installToken;
    if (bearer(req) !== want) {
      record({ kind: 'denied', path, at });
      res.writeHead(401).end();
      return;
    }
    if (req.method === 'GET' && what === 'config') {
      record({ kind: 'config', node: name, path, at });
      res
        .writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
        .end(renderInstallConfig(node.config));
    } else if (req.method === 'GET' && what.startsWith('scripts/')) {
      record({ kind: 'script', node: name, path, at });
      const script = what === 'scripts/pre-reboot' ? node.preReboot : node.postReboot;
      if (script === undefined) res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': 'text/x-shellscript' }).end(script);
    } else if (req.method === 'POST' && what === 'events') {
      record({ kind: 'event', node: name, event: parseInstallEvent(JSON.parse(await body(req))), at });
      res.writeHead(204).end();
    } else if (req.method === 'POST' && what === 'hostkey') {
      record({ kind: 'hostkey', node: name, keys: parseHostKeys(await body(req)), at });
      res.writeHead(204).end();
    } else if (req.method === 'POST' && what === 'installed') {
      record({
        kind: 'installed',
        node: name,
        report: parseInstalledReport(JSON.parse(await body(req))),
        at,
      });
      res.writeHead(204).end();
    } else {
      res.writeHead(405).end();
    }
  };
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(400);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port ?? 0, listen.host, resolve);
  });
  const addr = server.address() as AddressInfo;
  return {
    server,
    url: `http://${listen.host}:${addr.port}/`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
