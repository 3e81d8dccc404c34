/**
 * The composition root: opens the store and transport, starts the API, the ladder engine (handed the ladder
 * table of src/ladder.ts and the layers' steps, so the core imports no layer) and the layers' managers
 * and/or workers. `strata up` runs everything in one process on embedded defaults (SQLite, in-process
 * transport); `strata manager` and `strata worker` split it over NATS. A worker-only process
 * (`startWorkers`) opens the transport alone: workers hold no store.
 */
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import './core/kinds/index.ts';
import { addTokenRoutes, ensureAdminToken, TokenAuth } from './api/auth.ts';
import { addLadderRoute } from './api/ladder.ts';
import { ApiServer } from './api/server.ts';
import { serveUi } from './api/ui.ts';
import { EVENTS_SUBJECT, EventHub } from './core/events.ts';
import { type EngineOptions, LadderEngine } from './core/ladder/engine.ts';
import type { CoreServices } from './core/ladder/step.ts';
import type { LadderTable } from './core/ladder/table.ts';
import type { Layer, Stoppable } from './core/layer.ts';
import { createLogger, type Logger } from './core/log.ts';
import { acquirePidLock, releasePidLock } from './core/pidlock.ts';
import { ResourceService } from './core/resources/service.ts';
import type { StrataEvent } from './core/resources/types.ts';
import { openStore, type StoreOptions } from './core/store/index.ts';
import type { Store } from './core/store/types.ts';
import { openTransport } from './core/transport/index.ts';
import type { Transport } from './core/transport/types.ts';
import { LADDER } from './ladder.ts';
import { LAYERS } from './layers.ts';

import { VERSION } from './version.ts';

export { VERSION };

export interface PlatformOptions {
  dataDir: string;
  /** `host:port` of the API. */
  listen?: string;
  /** Store URL: empty → SQLite in dataDir, `postgres://...` → PostgreSQL. */
  database?: string;
  store?: StoreOptions;
  /** `nats://...` → NATS transport, empty → in-process. */
  nats?: string;
  /** Run managers + API. */
  manager: boolean;
  /** Worker roles to run; `['*']` means every role. */
  roles: string[];
  /** Use this admin token instead of generating one (tests, automation). */
  token?: string;
  engine?: EngineOptions;
  layers?: Layer[];
  /** The ladder table; default src/ladder.ts (tests hand their own). */
  ladder?: LadderTable;
  log?: Logger;
  /** Serve the API over HTTPS with this certificate and key (PEM). */
  tls?: { cert: string; key: string };
  /** Called once with a newly created admin token, so the CLI can print it once. */
  onToken?: (token: string) => void;
}

export interface Platform extends CoreServices {
  api?: ApiServer;
  engine?: LadderEngine;
  address?: { host: string; port: number };
  stop(): Promise<void>;
}

export async function startPlatform(opts: PlatformOptions): Promise<Platform> {
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // `strata worker` may share a manager's data dir (the README's split mode on one machine)
  const releaseLock = opts.manager ? lockDataDir(dataDir) : () => {};
  const log = opts.log ?? createLogger({ component: 'strata' });
  const store: Store = await openStore(opts.database ?? '', dataDir, opts.store);
  const transport: Transport = await openTransport(opts.nats);
  const hub = new EventHub(store, log);
  const resources = new ResourceService(store, hub);
  const core: CoreServices = { store, transport, hub, resources, log };
  const stoppers: Stoppable[] = [];
  const layers = opts.layers ?? LAYERS;
  const out: Platform = { ...core, stop: async () => {} };

  if (opts.manager) {
    const auth = new TokenAuth(store);
    const token = await ensureAdminToken(store, dataDir, opts.token);
    if (token) opts.onToken?.(token);
    await auth.load();
    const engine = new LadderEngine(
      core,
      { table: opts.ladder ?? LADDER, steps: layers.flatMap((l) => l.steps ?? []) },
      opts.engine,
    );
    resources.limits = {
      highestState: () => engine.highestImplementedState(),
      providers: (protocol) => {
        const names = layers.flatMap((l) => l.providers?.[protocol] ?? []);
        return names.length ? [...new Set(names)].sort() : undefined;
      },
    };
    const api = new ApiServer({ resources, hub, auth, log, version: VERSION, fallback: serveUi });
    addTokenRoutes(api.router, auth);
    addLadderRoute(api.router, opts.ladder ?? LADDER);
    // Workers elsewhere report timeline events over the transport.
    const sub = await transport.subscribe<StrataEvent>(EVENTS_SUBJECT, (ev) => {
      const { id: _id, time: _t, ...rest } = ev;
      hub.record(rest);
    });
    stoppers.push({ stop: () => sub.unsubscribe() });
    for (const layer of layers) {
      const s = await layer.manager?.({ ...core, engine, router: api.router, dataDir, layers });
      if (s) stoppers.push(s);
    }
    const [host, port] = splitHostPort(opts.listen ?? '127.0.0.1:7420');
    const addr = await api.listen(host, port, opts.tls);
    await engine.start();
    stoppers.push({ stop: () => engine.stop() });
    stoppers.push({ stop: () => api.close() });
    out.api = api;
    out.engine = engine;
    out.address = { host: addr.address, port: addr.port };
  }

  stoppers.push(...(await runWorkers(layers, opts.roles, transport, log, dataDir)));

  out.stop = async () => {
    for (const s of stoppers.reverse()) await s.stop();
    await hub.flush();
    await transport.close();
    await store.close();
    releaseLock();
  };
  return out;
}

/**
 * One `strata up` (or `strata manager`) per data dir: two would both serve DHCP on the same segments and
 * write the same store and files. The lock (`<dataDir>/strata.lock`) is held by the live process; one left
 * by a killed process is stale and taken over, so a kill -9 never blocks the next start.
 */
function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, 'strata.lock');
  const got = acquirePidLock(path, { dataDir });
  if (!got.ok) {
    throw new Error(
      `data dir ${dataDir} is in use by another Strata (pid ${got.holder.pid}, running since ${got.holder.since}): ` +
        'stop that one first, or give this one another --data-dir',
    );
  }
  const release = () => void releasePidLock(path);
  process.once('exit', release);
  return () => {
    process.off('exit', release);
    release();
  };
}

/** The workers of the given roles on one transport. They get no store (see WorkerContext). */
async function runWorkers(
  layers: Layer[],
  roles: string[],
  transport: Transport,
  log: Logger,
  dataDir: string,
): Promise<Stoppable[]> {
  const unknown = roles.filter((r) => r !== '*' && !layers.some((l) => l.roles.includes(r)));
  if (unknown.length) {
    throw new Error(
      `unknown worker role(s) ${unknown.join(', ')}: known roles are ${layers.flatMap((l) => l.roles).join(', ')}`,
    );
  }
  const stoppers: Stoppable[] = [];
  const all = roles.includes('*');
  for (const layer of layers) {
    for (const role of layer.roles) {
      if (!all && !roles.includes(role)) continue;
      const id = `${role}-worker@${hostname()}`;
      const s = await layer.worker?.({ transport, dataDir, id, log: log.child({ worker: id }) }, role);
      if (s) stoppers.push(s);
    }
  }
  return stoppers;
}

export interface WorkerOptions {
  dataDir: string;
  /** `nats://...`; a worker-only process needs a transport shared with a manager. */
  nats: string;
  roles: string[];
  layers?: Layer[];
  log?: Logger;
}

export interface Workers {
  transport: Transport;
  stop(): Promise<void>;
}

/** A worker-only process (`strata worker`): the transport and the workers, no store, no API. */
export async function startWorkers(opts: WorkerOptions): Promise<Workers> {
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const log = opts.log ?? createLogger({ component: 'strata-worker' });
  const transport = await openTransport(opts.nats);
  let stoppers: Stoppable[];
  try {
    stoppers = await runWorkers(opts.layers ?? LAYERS, opts.roles, transport, log, dataDir);
  } catch (err) {
    await transport.close();
    throw err;
  }
  return {
    transport,
    async stop() {
      for (const s of stoppers.reverse()) await s.stop();
      await transport.close();
    },
  };
}

export function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid listen address "${s}": expected HOST:PORT like 127.0.0.1:7420`);
  }
  return [s.slice(0, i).replace(/^\[|\]$/g, ''), port];
}
