/**
 * Runs Strata the way a user does, for integration tests: `bin/strata up` (or `manager`/`worker`) as a real
 * child process with its own temporary data directory, a free port and a fixed admin token, and the CLI
 * as a real child process pointed at it through STRATA_SERVER/STRATA_TOKEN. Everything started here is
 * killed in the test's `after` (SIGTERM, then SIGKILL) and on process exit, so a failing test leaves no
 * server behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after } from 'node:test';
import { type Cleanup, freePort } from './services.ts';

export const REPO = resolve(import.meta.dirname, '../..');
export const STRATA_BIN = join(REPO, 'bin/strata');

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/** A `Cleanup` whose functions run in the enclosing suite's `after` hook (call it in a describe body). */
export function suiteCleanup(): Cleanup {
  const fns: (() => unknown)[] = [];
  after(async () => {
    for (const fn of fns.reverse()) await fn();
  });
  return { after: (fn) => void fns.push(fn) };
}

/** A private temporary directory, removed in `after`. */
export function tempDir(t: Cleanup, prefix = 'strata-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  server?: string;
  /** `null`: no token at all (STRATA_TOKEN unset, no local token file). */
  token?: string | null;
  stdin?: string;
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Another tree's `bin/strata` (benchmarks' "before" side); default this tree's. */
  bin?: string;
}

/** The environment a CLI or server child gets: the test's own, minus any STRATA_* a developer set. */
function cleanEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('STRATA_')) env[k] = v;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

// The CLI falls back to <data-dir>/admin-token; point it at a directory that never holds one.
const noTokenDir = mkdtempSync(join(tmpdir(), 'strata-cli-'));
process.once('exit', () => rmSync(noTokenDir, { recursive: true, force: true }));
// `strata up` writes a context into the client config: never the developer's own ~/.config/strata. Servers
// write into one private file, CLIs read another (empty) one, so a CLI only uses a context a test gave it
// (a test of the config passes STRATA_CONFIG itself).
export const SERVERS_CONFIG = join(noTokenDir, 'servers-config.yaml');
const CLI_CONFIG = join(noTokenDir, 'cli-config.yaml');

/** Runs `bin/strata ARGS` to completion. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(opts.bin ?? STRATA_BIN, args, {
      cwd: opts.cwd ?? noTokenDir,
      env: cleanEnv({
        STRATA_SERVER: opts.server,
        STRATA_TOKEN: opts.token ?? undefined,
        STRATA_DATA_DIR: noTokenDir,
        STRATA_CONFIG: CLI_CONFIG,
        STRATA_LOG_LEVEL: 'warn',
        ...opts.env,
      }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolvePromise({ code, stdout, stderr });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

/** A long-running CLI command (`events --follow`): its output so far, a way to wait for a line, a kill. */
export interface CliFollower {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  kill(): Promise<void>;
}

export function spawnCli(args: string[], opts: CliOptions = {}): CliFollower {
  const child = spawn(opts.bin ?? STRATA_BIN, args, {
    cwd: opts.cwd ?? noTokenDir,
    env: cleanEnv({
      STRATA_SERVER: opts.server,
      STRATA_TOKEN: opts.token ?? undefined,
      STRATA_DATA_DIR: noTokenDir,
      STRATA_CONFIG: CLI_CONFIG,
      ...opts.env,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const out = new OutputBuffer(child);
  return {
    child,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    waitFor: (re, ms) => out.waitFor(re, ms, 'stdout'),
    kill: () => killProcess(child, 'SIGKILL'),
  };
}

/** Collects a child's stdout/stderr and lets a test wait for a line matching a pattern. */
class OutputBuffer {
  stdout = '';
  stderr = '';
  readonly #waiters = new Set<() => void>();
  readonly #child: ChildProcess;

  constructor(child: ChildProcess) {
    this.#child = child;
    child.stdout?.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      this.#wake();
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      this.#wake();
    });
    child.once('exit', () => this.#wake());
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  waitFor(re: RegExp, timeoutMs = 15_000, stream: 'stdout' | 'stderr' | 'both' = 'both'): Promise<string> {
    const text = () =>
      stream === 'stdout'
        ? this.stdout
        : stream === 'stderr'
          ? this.stderr
          : `${this.stdout}\n${this.stderr}`;
    return new Promise((resolvePromise, reject) => {
      const check = () => {
        const line = text()
          .split('\n')
          .find((l) => re.test(l));
        if (line !== undefined) return done(() => resolvePromise(line));
        if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
          return done(() =>
            reject(
              new Error(
                `process exited (${this.#child.exitCode ?? this.#child.signalCode}) before printing ${re}\n` +
                  `stdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
              ),
            ),
          );
        }
      };
      const timer = setTimeout(
        () =>
          done(() =>
            reject(
              new Error(
                `no line matching ${re} after ${timeoutMs} ms\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
              ),
            ),
          ),
        timeoutMs,
      );
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        f();
      };
      this.#waiters.add(check);
      check();
    });
  }
}

async function killProcess(child: ChildProcess, signal: NodeJS.Signals, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(timer);
  running.delete(child);
}

export interface StrataOptions {
  mode?: 'up' | 'manager' | 'worker';
  /** Reuse a data directory (default: a fresh temporary one, removed in `after`). */
  dataDir?: string;
  /** `postgres://...` (e.g. from withPostgres) or nothing for SQLite in the data directory. */
  database?: string;
  /** `nats://...`: required for `manager` and `worker`. */
  nats?: string;
  /** Worker roles (`worker` mode), e.g. `sshkeys`. */
  roles?: string;
  /** Admin token; default a random one per server. `null`: let the server make one and read it from stdout. */
  token?: string | null;
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  /** More arguments for up/manager (e.g. `--tls`); with `https` the server is reached over TLS. */
  args?: string[];
  https?: boolean;
  /** Another tree's `bin/strata` (benchmarks' "before" side); default this tree's. */
  bin?: string;
}

export interface ApiResponse {
  status: number;
  text: string;
  /** Parsed body, or undefined when it is not JSON. */
  json: unknown;
}

export interface StrataServer {
  readonly mode: 'up' | 'manager' | 'worker';
  /** `http://127.0.0.1:PORT` (empty for a worker). */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly token: string;
  readonly child: ChildProcess;
  /** Everything the server printed so far, across restarts. */
  stdout(): string;
  stderr(): string;
  /** Waits for a line of the current process's output (stdout and stderr). */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<string>;
  /** `bin/strata ARGS` against this server, with its token unless `token` says otherwise. */
  cli(args: string[], opts?: Omit<CliOptions, 'server'>): Promise<CliResult>;
  /** `bin/strata ARGS` left running (e.g. `events node x --follow`); killed in `after`. */
  follow(args: string[], opts?: Omit<CliOptions, 'server'>): CliFollower;
  /** A raw HTTP call, authenticated with the admin token unless `token` says otherwise. */
  api(
    method: string,
    path: string,
    body?: unknown,
    opts?: { token?: string | null; contentType?: string },
  ): Promise<ApiResponse>;
  /** `kill -9`. */
  kill(): Promise<void>;
  /** SIGTERM and wait (SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** Starts the same command again on the same data directory, port and store. */
  start(): Promise<void>;
}

/** The status of a GET over HTTPS without checking the certificate (readiness only; tests check it elsewhere). */
function httpsStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    httpsGet(url, { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).once('error', reject);
  });
}

/** Starts `bin/strata up|manager|worker` and waits until it serves /healthz (a worker: until it says so). */
export async function startStrata(t: Cleanup, opts: StrataOptions = {}): Promise<StrataServer> {
  const mode = opts.mode ?? 'up';
  const dataDir = opts.dataDir ?? tempDir(t, `strata-${mode}-`);
  let token = opts.token === null ? '' : (opts.token ?? `test-${randomBytes(12).toString('hex')}`);
  let port = 0;
  let child: ChildProcess | undefined;
  let out: OutputBuffer | undefined;
  let allStdout = '';
  let allStderr = '';
  const followers: CliFollower[] = [];

  const args = (): string[] => {
    const a = ['--data-dir', dataDir, mode];
    if (mode !== 'worker') {
      a.push('--listen', `127.0.0.1:${port}`);
      if (token && opts.token !== null) a.push('--admin-token', token);
      if (opts.database) a.push('--database', opts.database);
      a.push(...(opts.args ?? []));
    }
    if (opts.nats) a.push('--nats', opts.nats);
    if (opts.roles) a.push('--roles', opts.roles);
    return a;
  };

  const launch = async (keepPort: boolean) => {
    for (let tries = 0; ; tries++) {
      if (!keepPort && mode !== 'worker') port = await freePort();
      const p = spawn(opts.bin ?? STRATA_BIN, args(), {
        cwd: dataDir,
        env: cleanEnv({ STRATA_LOG_LEVEL: 'info', STRATA_CONFIG: SERVERS_CONFIG, ...opts.env }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      running.add(p);
      p.once('exit', () => running.delete(p));
      p.stdout.on('data', (d: Buffer) => {
        allStdout += d.toString();
      });
      p.stderr.on('data', (d: Buffer) => {
        allStderr += d.toString();
      });
      child = p;
      out = new OutputBuffer(p);
      try {
        if (mode === 'worker') {
          await out.waitFor(/Strata worker is up/, opts.readyTimeoutMs ?? 20_000);
        } else {
          await out.waitFor(/Strata \S+ is up/, opts.readyTimeoutMs ?? 20_000);
          const health = opts.https
            ? await httpsStatus(`https://127.0.0.1:${port}/healthz`)
            : (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
          if (health !== 200) throw new Error(`/healthz answered ${health}`);
        }
        if (opts.token === null && !token) {
          const m = /Admin API token[^:]*: (\S+)/.exec(out.stdout);
          if (!m) throw new Error(`the server printed no admin token:\n${out.stdout}`);
          token = m[1]!;
        }
        return;
      } catch (e) {
        await killProcess(p, 'SIGKILL');
        // Someone took the port between freePort() and listen: try another one (not on a restart).
        if (!keepPort && tries < 3 && /EADDRINUSE/.test(out.stderr)) continue;
        throw e;
      }
    }
  };

  /** A CLI call against this server: its url, its token unless `o` says otherwise, and the CLI of the same
   * tree as the server (a benchmark's "before" side runs both from its checkout). */
  const against = (o: Omit<CliOptions, 'server'>): CliOptions => ({
    ...(opts.bin ? { bin: opts.bin } : {}),
    ...o,
    server: server.url,
    token: o.token === undefined ? token : o.token,
  });

  const server: StrataServer = {
    mode,
    get url() {
      return mode === 'worker' ? '' : `${opts.https ? 'https' : 'http'}://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dataDir,
    get token() {
      return token;
    },
    get child() {
      return child!;
    },
    stdout: () => allStdout,
    stderr: () => allStderr,
    waitForOutput: (re, ms) => out!.waitFor(re, ms),
    cli: (a, o = {}) => runCli(a, against(o)),
    follow: (a, o = {}) => {
      const f = spawnCli(a, against(o));
      followers.push(f);
      return f;
    },
    api: (method, path, body, o = {}) =>
      httpCall(method, server.url + path, body, { ...o, token: o.token === undefined ? token : o.token }),
    kill: async () => {
      if (child) await killProcess(child, 'SIGKILL');
    },
    stop: async () => {
      if (child) await killProcess(child, 'SIGTERM');
    },
    start: () => launch(true),
  };
  t.after(async () => {
    for (const f of followers) await f.kill();
    await server.stop();
  });
  await launch(false);
  return server;
}

/**
 * One HTTP call as a client author makes it: a bearer token when given, a JSON body as application/json
 * and a string as application/yaml unless `contentType` says otherwise; the reply parsed when it is JSON.
 */
export async function httpCall(
  method: string,
  url: string,
  body?: unknown,
  o: { token?: string | null; contentType?: string; headers?: Record<string, string> } = {},
): Promise<ApiResponse & { headers: Headers }> {
  const headers: Record<string, string> = {
    ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
    ...o.headers,
  };
  let payload: string | undefined;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    headers['content-type'] =
      o.contentType ?? (typeof body === 'string' ? 'application/yaml' : 'application/json');
  }
  const res = await fetch(url, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

type Falsy = undefined | null | false | '' | 0;

/** Polls `fn` until it returns something truthy; fails with `what` and the last value after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | Falsy> | T | Falsy,
  timeoutMs = 15_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
