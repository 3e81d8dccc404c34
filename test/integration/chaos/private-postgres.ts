/**
 * A private PostgreSQL server for tests that restart it: `initdb` in a temporary directory owned by the
 * postgres user and `postgres` run directly on a free port, so restarting it never disturbs the shared
 * server on 5432 that other tests use. Stopped and removed in `after` (and killed on process exit).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type Cleanup, freePort } from '../../helpers/services.ts';

const BIN = '/usr/lib/postgresql/15/bin';

export function privatePostgresSkip(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (runs postgres as the postgres user)';
  if (!existsSync(join(BIN, 'initdb'))) return `no PostgreSQL 15 binaries in ${BIN}`;
  return undefined;
}

export interface PrivatePostgres {
  url: string;
  /** Fast shutdown (what `pg_ctl restart -m fast` does first): clients see their connections cut. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function privatePostgres(t: Cleanup): Promise<PrivatePostgres> {
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  const dir = mkdtempSync(join(tmpdir(), 'strata-chaos-pg-'));
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  // Run as the postgres user directly (no runuser in between, so signals reach postgres itself).
  const as = { uid, gid, cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' } };
  execFileSync(join(BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], {
    ...as,
    stdio: 'ignore',
  });
  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = '';
  const start = async () => {
    const c = spawn(
      join(BIN, 'postgres'),
      ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=on'],
      { ...as, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    c.stderr?.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
    });
    child = c;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
      try {
        await client.connect();
        await client.query('SELECT 1');
        return;
      } catch (e) {
        if (c.exitCode !== null || Date.now() > deadline)
          throw new Error(`private postgres did not start: ${(e as Error).message}\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      } finally {
        await client.end().catch(() => {});
      }
    }
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    // SIGINT: fast shutdown.
    c.kill('SIGINT');
    const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  };
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  process.once('exit', () => child?.kill('SIGKILL'));
  t.after(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await start();
  return { url, stop, start };
}
