/**
 * Real backing services for integration tests: a throwaway PostgreSQL database per test (on the server
 * `scripts/services.sh` starts) and a private nats-server per test on a free port with its own JetStream
 * directory. Tests never share state with each other or with a developer's services, and everything a
 * helper starts is torn down in `t.after` (and on process exit, should a test crash).
 *
 * PostgreSQL is skipped only on a developer machine without it: when `STRATA_TEST_POSTGRES` is set or
 * `CI=true`, an unreachable server is a failure, not a skip.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** Anything with `after(fn)`: a node:test TestContext or SuiteContext. */
export interface Cleanup {
  after(fn: () => unknown): void;
}

export const DEFAULT_POSTGRES_URL = 'postgres://strata:strata@127.0.0.1:5432/strata';

/** The server the tests use: `STRATA_TEST_POSTGRES` or the role/database `scripts/services.sh` creates. */
export function postgresAdminUrl(): string {
  return process.env.STRATA_TEST_POSTGRES || DEFAULT_POSTGRES_URL;
}

const mustHavePostgres = () => Boolean(process.env.STRATA_TEST_POSTGRES) || process.env.CI === 'true';

let probed: Promise<string | undefined> | undefined;

/**
 * Why PostgreSQL tests must be skipped, or undefined when the server is reachable. Throws (fails the
 * run) instead of skipping when `STRATA_TEST_POSTGRES` is set or `CI=true`. Use as
 * `describe('x', { skip: await postgresSkipReason() }, ...)`.
 */
export function postgresSkipReason(): Promise<string | undefined> {
  probed ??= (async () => {
    const url = postgresAdminUrl();
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return undefined;
    } catch (e) {
      const why = `PostgreSQL not reachable at ${redactUrl(url)} (${(e as Error).message})`;
      if (mustHavePostgres()) {
        throw new Error(
          `${why}; it is required here (CI=true or STRATA_TEST_POSTGRES set): run scripts/services.sh`,
        );
      }
      return `${why}: run scripts/services.sh (as root) or set STRATA_TEST_POSTGRES`;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return probed;
}

export interface PostgresDatabase {
  /** URL of the new, empty database (same server and credentials as the admin URL). */
  url: string;
  name: string;
  /** Drops the database, closing whatever connections are left on it. Idempotent. */
  cleanup(): Promise<void>;
}

/**
 * Creates an empty database with a unique name; dropped in `t.after` when a context is given. Throws
 * when PostgreSQL is unreachable: check `postgresSkipReason()` first to skip instead.
 */
export async function withPostgres(t?: Cleanup): Promise<PostgresDatabase> {
  const admin = postgresAdminUrl();
  const name = `strata_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await adminQuery(admin, `CREATE DATABASE "${name}"`);
  const u = new URL(admin);
  u.pathname = `/${name}`;
  let dropped = false;
  // Retried: under load the admin connection can time out, and a DROP that failed once left the
  // database behind (twice in control-plane benchmarks) with nothing said.
  const cleanup = async () => {
    if (dropped) return;
    dropped = true;
    for (let attempt = 1; ; attempt++) {
      try {
        return await adminQuery(admin, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } catch (err) {
        if (attempt >= 5) throw new Error(`database ${name} not dropped: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
  };
  t?.after(cleanup);
  return { url: u.toString(), name, cleanup };
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

export interface NatsServer {
  url: string;
  port: number;
  /** JetStream store directory (kept across `restart()`, removed by `stop()`). */
  storeDir: string;
  /** Stops the server (SIGTERM, then SIGKILL) keeping the store: JetStream data survives. */
  kill(): Promise<void>;
  /** Starts it again on the same port and store directory after `kill()`. */
  restart(): Promise<void>;
  /** Stops the server and removes its store directory. Idempotent. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/** Spawns a private `nats-server` on 127.0.0.1 and a free port; resolves once it accepts connections. */
export async function startNats(opts: { jetstream?: boolean } = {}, t?: Cleanup): Promise<NatsServer> {
  const storeDir = mkdtempSync(join(tmpdir(), 'strata-nats-'));
  let port = 0;
  let child: ChildProcess | undefined;
  let stopped = false;

  const launch = async (fixedPort?: number) => {
    for (let tries = 0; ; tries++) {
      port = fixedPort ?? (await freePort());
      const args = ['-a', '127.0.0.1', '-p', String(port)];
      if (opts.jetstream) args.push('-js', '-sd', storeDir);
      const p = spawn('nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let log = '';
      p.stderr?.on('data', (d: Buffer) => {
        log = (log + d.toString()).slice(-4000);
      });
      running.add(p);
      p.once('exit', () => running.delete(p));
      let spawnError: Error | undefined;
      p.once('error', (e) => {
        spawnError = e;
      });
      const alive = () => !spawnError && p.exitCode === null && p.signalCode === null;
      if (await waitForPort(port, 10_000, alive)) {
        child = p;
        return;
      }
      p.kill('SIGKILL');
      if (spawnError) {
        throw new Error(`cannot start nats-server (${spawnError.message}): run scripts/services.sh`);
      }
      // Lost the race for the port to another process: try another one (not when restarting).
      if (fixedPort !== undefined || tries >= 3) throw new Error(`nats-server exited before ready:\n${log}`);
    }
  };

  const kill = async () => {
    const p = child;
    child = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((res) => p.once('exit', () => res()));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(timer);
  };

  await launch();
  const server: NatsServer = {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    storeDir,
    kill,
    restart: async () => {
      await kill();
      await launch(port);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await kill();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
  t?.after(() => server.stop());
  return server;
}

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * `n` different free ports: every listener stays open until all are chosen, so two calls cannot get the
 * same port back (separate freePort() calls can, once the first is closed again).
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const srv = createServer();
          srv.once('error', reject);
          srv.listen(0, '127.0.0.1', () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((srv) => {
    const addr = srv.address();
    return typeof addr === 'object' && addr ? addr.port : 0;
  });
  await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  return ports;
}

/** True once something accepts connections on the port; false if `alive()` turns false or time runs out. */
async function waitForPort(port: number, timeoutMs: number, alive: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (alive() && Date.now() < deadline) {
    const ok = await new Promise<boolean>((res) => {
      const s = createConnection({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (ok) return alive();
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
