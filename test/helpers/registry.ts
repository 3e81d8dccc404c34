/**
 * The two registries as real HTTP servers, for the registry's integration tests: a global registry (a
 * Strata manager in this process with the registry layer, its API on a free port) and a site's local
 * registry (the same handler the boot worker mounts, on its own free port) that learns the global one's
 * address and pull token over the manager's transport, exactly as a boot worker does (or, with no address
 * advertised, reads through the transport).
 */
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { silentLogger } from '../../src/core/log.ts';
import { type Platform, startPlatform } from '../../src/platform.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { registryLayer } from '../../src/registry/index.ts';
import {
  createLocalRegistry,
  type LocalRegistry,
  type Upstream,
  upstreamFromManager,
} from '../../src/registry/local.ts';
import { REGISTRY_API_BASE } from '../../src/registry/protocol.ts';
import { type Cleanup, freePort } from './services.ts';
import { tempDir } from './strata.ts';

export interface GlobalRegistry {
  platform: Platform;
  /** `http://127.0.0.1:PORT/api/v1/registry`. */
  url: string;
  dataDir: string;
  /** A client with the admin token (push, tag, gc). */
  admin: RegistryClient;
  /** Stops the manager: the global registry is away. */
  stop(): Promise<void>;
}

/** `advertise`: the manager tells sites its address (STRATA_REGISTRY_URL); without, they read over the transport. */
export async function startGlobalRegistry(
  t: Cleanup,
  opts: { advertise?: boolean; token?: string } = {},
): Promise<GlobalRegistry> {
  const token = opts.token ?? 'registry-test-admin';
  const dataDir = tempDir(t, 'strata-registry-global-');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}${REGISTRY_API_BASE}`;
  const before = process.env.STRATA_REGISTRY_URL;
  if (opts.advertise === false) delete process.env.STRATA_REGISTRY_URL;
  else process.env.STRATA_REGISTRY_URL = `http://127.0.0.1:${port}`;
  let platform: Platform;
  try {
    platform = await startPlatform({
      dataDir,
      listen: `127.0.0.1:${port}`,
      manager: true,
      roles: [],
      token,
      log: silentLogger,
      layers: [registryLayer],
    });
  } finally {
    if (before === undefined) delete process.env.STRATA_REGISTRY_URL;
    else process.env.STRATA_REGISTRY_URL = before;
  }
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await platform.stop();
  };
  t.after(stop);
  return { platform, url, dataDir, admin: new RegistryClient({ url, token }), stop };
}

export interface LocalRegistryServer {
  registry: LocalRegistry;
  /** `http://127.0.0.1:PORT/registry`. */
  url: string;
  root: string;
  server: Server;
}

export async function startLocalRegistryServer(
  t: Cleanup,
  upstream: () => Promise<Upstream | undefined>,
): Promise<LocalRegistryServer> {
  const root = join(tempDir(t, 'strata-registry-local-'), 'registry-cache');
  const registry = await createLocalRegistry({ root, upstream, log: silentLogger });
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/registry/')) return registry.handle(req, res);
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { registry, url: `http://127.0.0.1:${port}/registry`, root, server };
}

/**
 * Both registries, the local one told where the global one is by the manager, as a boot worker is: over
 * HTTP, or (`overTransport`) with no address advertised, over the manager's transport.
 */
export async function startSite(
  t: Cleanup,
  opts: { overTransport?: boolean } = {},
): Promise<{ global: GlobalRegistry; local: LocalRegistryServer }> {
  const global = await startGlobalRegistry(t, { advertise: !opts.overTransport });
  const local = await startLocalRegistryServer(t, upstreamFromManager(global.platform.transport, 2_000));
  return { global, local };
}
