/**
 * The one SSH runner: OpenSSH's `ssh` driven as a child process, with Strata's key and only the node's
 * pinned host keys (StrictHostKeyChecking=yes against a known_hosts file written for the call; no user or
 * global configuration is read). Every command above state 4 goes through here.
 *
 * Why OpenSSH and not the ssh2 npm library: OpenSSH is what the nodes run and what an operator would type,
 * so a failure here reproduces by hand with the same flags; its host key checking, key formats and
 * algorithms are the reference ones rather than a re-implementation; `ssh -tt` gives an interactive
 * session a real remote terminal whose bytes we only relay; and it adds no dependency with its own crypto
 * to keep current. What it costs, a process per connection and a private key written to a 0600 file for
 * the call's duration, is small next to the commands it runs.
 *
 * On top of ssh: a concurrency limit (at most `concurrency` connections at once; the rest queue), a
 * timeout that ends a hung command and reports it with its last output, and retries with exponential
 * backoff when the connection drops or cannot be made (never when the host key is refused or the key is
 * not accepted). Commands may therefore run more than once and should be idempotent, as steps are.
 * Interactive sessions count against the same limit for as long as they are open.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backoffMs } from '../core/ladder/queue.ts';
import type { ShellResult, SshTarget } from './protocol.ts';

export interface SshRunnerOptions {
  /** Connections at once. Default 8. */
  concurrency?: number;
  /** Extra tries after a dropped or refused connection. Default 2. */
  retries?: number;
  backoffBaseMs?: number;
  /** Seconds ssh waits for the TCP connection. Default 10. */
  connectTimeoutS?: number;
}

export interface RunOptions {
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed (a bundle's files, never its command line). */
  input?: string;
  /** Called with output as it arrives. */
  onOutput?(stream: 'stdout' | 'stderr', text: string): void;
}

/** What an interactive session runs when no command is given: the user's login shell. */
const LOGIN_SHELL = 'exec "$SHELL" -l';

/** Output kept per stream; older bytes are dropped so a chatty command cannot fill memory. */
const KEEP = 1 << 20;

/** ssh's own messages when the connection could not be made or dropped: worth another try. */
const DROPPED =
  /Connection (refused|reset|timed out)|connect to host .* port \d+:|No route to host|Network is unreachable|kex_exchange_identification|Connection closed by|closed by remote host|Broken pipe|Timeout, server .* not responding/i;
/** Never retried: the node is not the one we pinned, or it does not accept our key. */
const REFUSED = /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|Permission denied/i;

/** Why ssh failed, in words a timeline reader understands. */
export function sshFailure(stderr: string): string {
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/i.test(stderr))
    return "host key verification failed: the node's host key is not the one pinned for it";
  if (/Permission denied/i.test(stderr)) return 'the node refused the key (permission denied)';
  const last = stderr.trim().split('\n').pop() ?? '';
  return last ? `ssh failed: ${last}` : 'ssh failed';
}

export class SshRunner {
  readonly #opts: Required<SshRunnerOptions>;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(opts: SshRunnerOptions = {}) {
    this.#opts = {
      concurrency: opts.concurrency ?? 8,
      retries: opts.retries ?? 2,
      backoffBaseMs: opts.backoffBaseMs ?? 500,
      connectTimeoutS: opts.connectTimeoutS ?? 10,
    };
  }

  async #slot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#opts.concurrency) await new Promise<void>((r) => this.#waiting.push(r));
    this.#active++;
    try {
      return await fn();
    } finally {
      this.#active--;
      this.#waiting.shift()?.();
    }
  }

  /** Runs one command to its end, its timeout, or the last retry. */
  async run(target: SshTarget, command: string, opts: RunOptions = {}): Promise<ShellResult> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.#slot(() => this.#once(target, command, opts));
      const retry =
        r.code === 255 &&
        !r.timedOut &&
        DROPPED.test(r.stderr) &&
        !REFUSED.test(r.stderr) &&
        attempt <= this.#opts.retries;
      if (!retry) return { ...r, attempts: attempt };
      await new Promise((res) => setTimeout(res, backoffMs(attempt, this.#opts.backoffBaseMs, 30_000)));
    }
  }

  async #once(target: SshTarget, command: string, opts: RunOptions): Promise<ShellResult> {
    return withKeyFiles(target, this.#opts.connectTimeoutS, async (args) => {
      const child = spawn('ssh', [...args, '-T', '--', command], {
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
      if (opts.input !== undefined) {
        child.stdin!.on('error', () => {});
        child.stdin!.end(opts.input);
      }
      let stdout = '';
      let stderr = '';
      const keep = (s: string) => (s.length > KEEP ? s.slice(-KEEP) : s);
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        stdout = keep(stdout + d);
        opts.onOutput?.('stdout', d);
      });
      child.stderr!.setEncoding('utf8').on('data', (d: string) => {
        stderr = keep(stderr + d);
        opts.onOutput?.('stderr', d);
      });
      const timeoutMs = opts.timeoutMs ?? 30_000;
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        stop(child);
      }, timeoutMs);
      const code = await exited(child);
      clearTimeout(timer);
      if (timedOut) {
        const last = (stdout.trim() || stderr.trim()).split('\n').slice(-3).join(' | ');
        return {
          code: 124,
          stdout,
          stderr,
          timedOut: true,
          error: `timed out after ${(timeoutMs / 1000).toFixed(1)} s; last output: ${last ? JSON.stringify(last) : '(none)'}`,
        };
      }
      return { code, stdout, stderr, ...(code === 255 ? { error: sshFailure(stderr) } : {}) };
    });
  }

  /**
   * Starts an interactive or streamed session: the caller relays the child's stdin, stdout and stderr and
   * gets its exit status. The key files are removed when the session ends.
   */
  async open(
    target: SshTarget,
    command: string | undefined,
    tty: { cols: number; rows: number } | undefined,
  ): Promise<{ child: ChildProcess; done: Promise<number> }> {
    let release!: () => void;
    const started = new Promise<{ child: ChildProcess; done: Promise<number> }>((resolve, reject) => {
      void this.#slot(() =>
        withKeyFiles(
          target,
          this.#opts.connectTimeoutS,
          (args) =>
            new Promise<void>((finish) => {
              release = finish;
              // A terminal's size cannot follow the client's without a local pty; it is set once, at start.
              const remote = tty
                ? `stty cols ${tty.cols} rows ${tty.rows} 2>/dev/null; ${command ?? LOGIN_SHELL}`
                : command;
              const child = spawn('ssh', [...args, tty ? '-tt' : '-T', ...(remote ? ['--', remote] : [])], {
                stdio: ['pipe', 'pipe', 'pipe'],
              });
              const done = exited(child).finally(() => release());
              resolve({ child, done });
            }),
        ),
      ).catch(reject);
    });
    return started;
  }
}

/** ssh's arguments: this key, only these host keys, no configuration of the user or the machine. */
export function sshArgs(
  target: SshTarget,
  keyFile: string,
  knownHosts: string,
  connectTimeoutS = 10,
): string[] {
  return [
    '-F',
    '/dev/null',
    '-i',
    keyFile,
    '-p',
    String(target.port ?? 22),
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'UpdateHostKeys=no',
    '-o',
    `ConnectTimeout=${connectTimeoutS}`,
    '-o',
    'ServerAliveInterval=5',
    '-o',
    'ServerAliveCountMax=3',
    '-o',
    'LogLevel=ERROR',
    '-l',
    target.user,
    target.host,
  ];
}

/** Writes the key and the pinned known_hosts for one call and removes them after it. */
async function withKeyFiles<T>(
  target: SshTarget,
  connectTimeoutS: number,
  fn: (args: string[]) => Promise<T>,
): Promise<T> {
  if (!target.knownHostKeys.length)
    throw new Error(`no host key is pinned for ${target.host}: refusing to trust an unknown host`);
  const dir = await mkdtemp(join(tmpdir(), 'strata-ssh-'));
  try {
    const key = join(dir, 'id');
    const known = join(dir, 'known_hosts');
    const pk = target.privateKey;
    await writeFile(key, pk.endsWith('\n') ? pk : `${pk}\n`, { mode: 0o600 });
    const port = target.port ?? 22;
    const host = port === 22 ? target.host : `[${target.host}]:${port}`;
    await writeFile(known, target.knownHostKeys.map((k) => `${host} ${k.trim()}`).join('\n') + '\n');
    return await fn(sshArgs(target, key, known, connectTimeoutS));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function exited(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('error', () => resolve(255));
    child.once('close', (code) => resolve(code ?? 255));
  });
}

function stop(child: ChildProcess): void {
  child.kill('SIGTERM');
  setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }, 2000).unref();
}
