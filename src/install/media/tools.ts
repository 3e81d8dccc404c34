/**
 * The build tools of the install media: commands run with their output piped (never inherited, so no tool
 * writes to this process's stdout), tracked so an abandoned build can end them, and the stamp files (a hash
 * of a stage's inputs) that make a build skip what is up to date.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { BuildProgress } from './paths.ts';

export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; input?: string | Buffer } = {},
): string {
  return execFileSync(cmd, args, {
    cwd: opts.cwd,
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
}

export function sh(script: string, cwd?: string): string {
  return run('/bin/sh', ['-euc', script], { cwd });
}

/** The tools running now (debootstrap, tar, zstd...), so an abandoned build can end them. */
const running = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once('close', () => running.delete(child));
  return child;
}

/**
 * Ends the tools of a build in progress (its parent went away, or a signal): a process removes what it
 * started. Each tool runs in a process group of its own, so the whole group goes (debootstrap's wget and
 * dpkg too).
 */
export function stopRunningTools(): void {
  for (const c of running) {
    try {
      if (c.pid) process.kill(-c.pid, 'SIGTERM');
    } catch {
      c.kill('SIGTERM');
    }
  }
}

/**
 * Runs a command without blocking, its stdout and stderr piped (never inherited) and handed over line by
 * line; rejects with the command's last output lines.
 */
export function runAsync(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; onLine?: (line: string) => void } = {},
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    track(child);
    const tail: string[] = [];
    const lines = (stream: NodeJS.ReadableStream) => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        buf += d;
        const parts = buf.split(/\r?\n|\r/);
        buf = parts.pop()!;
        for (const l of parts) take(l);
      });
      stream.on('end', () => buf && take(buf));
    };
    const take = (l: string) => {
      tail.push(l);
      if (tail.length > 30) tail.shift();
      opts.onLine?.(l);
    };
    lines(child.stdout);
    lines(child.stderr);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) return resolvePromise();
      reject(
        new Error(
          `${cmd} ${args.join(' ').slice(0, 200)} failed (${signal ?? `exit ${code}`}):\n${tail.join('\n')}`,
        ),
      );
    });
  });
}

export type Progress = (p: Omit<BuildProgress, 'stage'>) => void;

export function hashOf(...parts: Array<string | Buffer>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

function fileSha256(path: string): string {
  return sh(`sha256sum '${path}'`).split(' ')[0]!;
}

/** sha256 of a file, cached in `<file>.sha256` next to it and reused while size and mtime match. */
export function cachedSha256(path: string): string {
  const st = statSync(path);
  const key = `${st.size} ${st.mtimeMs}`;
  const cache = path + '.sha256';
  if (existsSync(cache)) {
    const [sum, ...rest] = readFileSync(cache, 'utf8').trim().split(' ');
    if (sum && rest.join(' ') === key) return sum;
  }
  const sum = fileSha256(path);
  writeFileSync(cache, `${sum} ${key}\n`);
  return sum;
}

export function stampOk(stampFile: string, want: string, outputs: string[]): boolean {
  if (!existsSync(stampFile)) return false;
  if (readFileSync(stampFile, 'utf8').trim() !== want) return false;
  return outputs.every((o) => existsSync(o));
}
