/**
 * What every benchmark of bench/ shares: the machine's load and CPU steal sampled around each
 * measurement (the machine is shared, so every figure carries the load it was taken under), medians and
 * percentiles, interleaved rounds (Strata and its peer alternate, so a burst of load hits both), cleanup
 * that runs on exit and on SIGINT/SIGTERM, and writing one section of BENCHMARKS.md per benchmark.
 *
 * A benchmark prints its table and, with `--write`, replaces its own section of BENCHMARKS.md (between
 * `<!-- bench:NAME:begin -->` and `<!-- bench:NAME:end -->`), so reruns of one benchmark leave the others.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createNetns, type NetnsSet } from '../test/helpers/netns.ts';
import { waitFor } from '../test/helpers/strata.ts';

export const REPO = resolve(import.meta.dirname, '..');
export const BENCHMARKS_MD = resolve(REPO, 'BENCHMARKS.md');

/** CPU time counters of /proc/stat's first line. */
function cpuTimes(): { total: number; steal: number; idle: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { total, steal: f[7] ?? 0, idle: (f[3] ?? 0) + (f[4] ?? 0) };
}

export function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** The load around one measurement: 1-minute load average at its end, CPU steal and busy share during it. */
export interface Load {
  load1: number;
  stealPct: number;
  busyPct: number;
}

export function loadText(l: Load): string {
  return `load ${l.load1.toFixed(2)}, steal ${l.stealPct.toFixed(1)} %`;
}

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 on Linux almost everywhere). */
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** A process's name and CPU ticks from /proc/PID/stat (own, and its waited-for children's); undefined once gone. */
export function procStat(
  pid: number | string,
): { comm: string; ticks: number; childTicks: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited meanwhile
  }
  // pid (comm) state ppid …: comm may hold spaces and parentheses, so split after its last ')'.
  const close = stat.lastIndexOf(')');
  const f = stat.slice(close + 2).split(' ');
  return {
    comm: stat.slice(stat.indexOf('(') + 1, close),
    ticks: Number(f[11]) + Number(f[12]),
    childTicks: Number(f[13]) + Number(f[14]),
  };
}

/**
 * CPU seconds each process spent while this sampler ran, summed by group (`group` names a process by its
 * pid and comm; undefined leaves it out). /proc/PID/stat is read at start and on every `sample()`: a
 * process that exits between two samples loses what it spent since the last one, so sample often.
 */
export class ProcessCpu {
  readonly #start = new Map<number, number>();
  readonly #last = new Map<number, { comm: string; ticks: number }>();
  constructor() {
    for (const [pid, p] of this.#read()) this.#start.set(pid, p.ticks);
  }
  #read(): Map<number, { comm: string; ticks: number }> {
    const out = new Map<number, { comm: string; ticks: number }>();
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      const p = procStat(d);
      if (p) out.set(Number(d), p);
    }
    return out;
  }
  sample(): void {
    for (const [pid, p] of this.#read()) this.#last.set(pid, p);
  }
  /** Seconds by group since the start. */
  byGroup(group: (pid: number, comm: string) => string | undefined): Map<string, number> {
    this.sample();
    const out = new Map<string, number>();
    for (const [pid, p] of this.#last) {
      const g = group(pid, p.comm);
      if (g === undefined) continue;
      const s = (p.ticks - (this.#start.get(pid) ?? 0)) / CLK_TCK;
      out.set(g, (out.get(g) ?? 0) + s);
    }
    return out;
  }
}

/** Runs `fn` and returns its result with the load it ran under. */
export async function underLoad<T>(fn: () => Promise<T>): Promise<{ value: T; load: Load }> {
  const a = cpuTimes();
  const value = await fn();
  const b = cpuTimes();
  const dt = Math.max(1, b.total - a.total);
  return {
    value,
    load: {
      load1: loadAverage(),
      stealPct: (100 * (b.steal - a.steal)) / dt,
      busyPct: 100 - (100 * (b.idle - a.idle)) / dt,
    },
  };
}

/** Sorted-sample percentile (nearest rank). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

export function median(xs: number[]): number {
  return percentile(xs, 0.5);
}

export function medianLoad(ls: Load[]): Load {
  return {
    load1: median(ls.map((l) => l.load1)),
    stealPct: median(ls.map((l) => l.stealPct)),
    busyPct: median(ls.map((l) => l.busyPct)),
  };
}

/** One line describing the machine. */
export function machine(): string {
  const c = cpus();
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  return `${c.length} × ${c[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${kernel}, Node ${process.version}`;
}

export function have(cmd: string): boolean {
  try {
    execFileSync('which', [cmd], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A helper process that answers on its stdout. `next()` resolves with the next line it prints (e.g. its
 * `ready`); `ask(cmd)` drops the lines nobody read, writes `cmd` as a line to its stdin and resolves with
 * the next line, or undefined after `timeoutMs` (a helper that does not know the question, e.g. an older
 * checkout's).
 */
export interface LineChannel {
  next(): Promise<string>;
  ask(cmd: string, timeoutMs?: number): Promise<string | undefined>;
}

export function lineChannel(child: ChildProcess): LineChannel {
  const unread: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  if (child.stdout)
    createInterface({ input: child.stdout }).on('line', (l) => {
      const w = waiting.shift();
      if (w) w(l);
      else unread.push(l);
    });
  const next = () =>
    new Promise<string>((resolve) => (unread.length ? resolve(unread.shift()!) : waiting.push(resolve)));
  return {
    next,
    ask: (cmd, timeoutMs = 2000) => {
      unread.length = 0;
      return new Promise((resolve) => {
        const answer = (line: string) => {
          clearTimeout(timer);
          resolve(line);
        };
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(answer), 1);
          resolve(undefined);
        }, timeoutMs);
        waiting.push(answer);
        child.stdin?.write(`${cmd}\n`);
      });
    },
  };
}

/**
 * Functions run once, last registered first, at exit, on SIGINT/SIGTERM, or when `run()` is called. A
 * signal may end the process before an async run is through (test/helpers/netns.ts exits on it at once):
 * the functions it has not reached yet then run at exit, synchronously, so a synchronous cleanup (kill,
 * `ip netns del`, rm) always happens.
 */
export class Cleanup {
  readonly #fns: (() => unknown)[] = [];
  constructor() {
    process.once('exit', () => this.runSync());
    for (const sig of ['SIGINT', 'SIGTERM'] as const)
      process.once(sig, () => {
        void this.run().finally(() => process.exit(128 + (sig === 'SIGINT' ? 2 : 15)));
      });
  }
  after(fn: () => unknown): void {
    this.#fns.push(fn);
  }
  async run(): Promise<void> {
    for (let fn = this.#fns.pop(); fn; fn = this.#fns.pop()) {
      try {
        await fn();
      } catch (err) {
        // Best effort: the rest still runs, and what was left behind is said.
        console.error(`cleanup: ${(err as Error).message}`);
      }
    }
  }
  runSync(): void {
    for (let fn = this.#fns.pop(); fn; fn = this.#fns.pop()) {
      try {
        fn();
      } catch {
        /* best effort */
      }
    }
  }
}

/** A table row: what was measured, Strata's figure, the peer's, the ratio and the load. */
export interface Row {
  what: string;
  strata: string;
  peer: string;
  ratio: string;
  load: Load;
}

export function ratio(strata: number, peer: number, higherIsBetter: boolean): string {
  if (!Number.isFinite(strata) || !Number.isFinite(peer) || strata === 0 || peer === 0) return '—';
  return `${(higherIsBetter ? strata / peer : peer / strata).toFixed(2)}×`;
}

/** The table, after `kept`: rows of earlier runs, as their cells. */
export function table(rows: Row[], kept: string[][] = []): string {
  const lines = [
    '| what | Strata | peer | Strata/peer (>1 = Strata better) | load, steal |',
    '|---|---|---|---|---|',
  ];
  for (const cells of kept) lines.push(`| ${cells.join(' | ')} |`);
  for (const r of rows)
    lines.push(`| ${r.what} | ${r.strata} | ${r.peer} | ${r.ratio} | ${loadText(r.load)} |`);
  return lines.join('\n');
}

export interface Report {
  /** Section key, e.g. `dhcp`. */
  name: string;
  title: string;
  command: string;
  rows: Row[];
  /** Paragraphs after the table: method, caveats. */
  notes?: string[];
  /**
   * Keep the section's rows from earlier commands that this run did not measure, with the lines naming
   * those commands, so runs of different sizes write one table: a row's key is `merge(first cell)`, and
   * this run's rows replace the earlier ones of the same key.
   */
  merge?: (what: string) => string;
}

/** The line naming a run: its command, when, on what machine, under what load. */
function runLine(command: string): string {
  return `\`${command}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; ${machine()}; load before the run ${loadAverage().toFixed(2)}.`;
}

export function render(
  r: Report,
  earlier: { runs: string[]; rows: string[][] } = { runs: [], rows: [] },
): string {
  const key = r.merge ?? ((w: string) => w);
  const mine = new Set(r.rows.map((x) => key(x.what)));
  const kept = earlier.rows.filter((x) => !mine.has(key(x[0]!)));
  const runs = kept.length ? earlier.runs.filter((l) => !l.startsWith(`\`${r.command}\` on `)) : [];
  return [
    `### ${r.title}`,
    '',
    ...[...runs, runLine(r.command)].flatMap((l) => [l, '']),
    table(r.rows, kept),
    '',
    ...(r.notes ?? []).flatMap((n) => [n, '']),
  ].join('\n');
}

/** Prints the report and, when `write`, replaces its section of BENCHMARKS.md (appending it the first time). */
export function publish(r: Report, write: boolean): void {
  const begin = `<!-- bench:${r.name}:begin -->`;
  const end = `<!-- bench:${r.name}:end -->`;
  const doc = existsSync(BENCHMARKS_MD) ? readFileSync(BENCHMARKS_MD, 'utf8') : '# Benchmarks\n';
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  const text = render(r, write && r.merge && i >= 0 && j > i ? earlier(doc.slice(i, j)) : undefined);
  console.log(text);
  if (!write) return;
  const block = `${begin}\n${text.trimEnd()}\n${end}`;
  const next =
    i >= 0 && j > i ? doc.slice(0, i) + block + doc.slice(j + end.length) : `${doc.trimEnd()}\n\n${block}\n`;
  writeFileSync(BENCHMARKS_MD, next);
  // The project's formatter pads Markdown tables; keep the file as `npm run check` wants it.
  execFileSync(join(REPO, 'node_modules/.bin/biome'), ['format', '--write', BENCHMARKS_MD], {
    stdio: 'ignore',
  });
}

/** A written section's run lines and table rows (as cells, the header and separator left out). */
export function earlier(section: string): { runs: string[]; rows: string[][] } {
  const lines = section.split('\n');
  const rows = lines
    .filter((l) => l.startsWith('| ') && !/^\| what\s/.test(l) && !/^\|[\s|-]+\|$/.test(l))
    .map((l) => l.split(' | ').map((c) => c.replace(/^\|\s*|\s*\|$/g, '').trim()));
  return { runs: lines.filter((l) => /^`[^`]+` on \d{4}-/.test(l)), rows };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What bench/eld-probe.ts writes for one process: its worst loop delay and the longest work held it. */
export interface Probe {
  pid: number;
  maxMs: number;
  maxCpuMs: number;
}

/** The processes whose event-loop probe (bench/eld-probe.ts) writes into `dir`. */
export function probedPids(dir: string): number[] {
  return readdirSync(dir)
    .filter((f) => /^eld-\d+\.json$/.test(f))
    .map((f) => Number(f.slice(4, -5)));
}

/** Starts the probes of `pids` measuring afresh; resolves once each has (they look twice a second). */
export async function resetProbes(dir: string, pids: readonly number[]): Promise<void> {
  for (const pid of pids) writeFileSync(join(dir, `reset-${pid}`), '');
  await waitFor(
    'the event-loop probes to reset',
    () => pids.every((pid) => !existsSync(join(dir, `reset-${pid}`))),
    10_000,
  );
}

/** A probe's latest figures (written twice a second). */
export function readProbe(dir: string, pid: number): Probe {
  return { pid, ...(JSON.parse(readFileSync(join(dir, `eld-${pid}.json`), 'utf8')) as Omit<Probe, 'pid'>) };
}

export function fmt(n: number, digits = 0): string {
  return Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '—';
}

/**
 * Parses `--name value` options (each with its default), `--write` and the boolean `flags` (e.g.
 * `--smoke`); `--help` prints the usage.
 */
export function benchArgs<K extends string, F extends string = never>(
  usage: string,
  defaults: Record<K, string>,
  flags: readonly F[] = [],
): { opts: Record<K, string>; flags: Record<F, boolean>; write: boolean; argv: string } {
  const options: Record<string, { type: 'string' | 'boolean'; default?: string | boolean }> = {
    write: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  };
  for (const [k, v] of Object.entries(defaults)) options[k] = { type: 'string', default: v as string };
  for (const f of flags) options[f] = { type: 'boolean', default: false };
  const { values } = parseArgs({ options });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  return {
    opts: values as Record<K, string>,
    flags: Object.fromEntries(flags.map((f) => [f, values[f] === true])) as Record<F, boolean>,
    write: values.write === true,
    argv: process.argv.slice(2).join(' '),
  };
}

/** Measured values by key (e.g. `strata@rate`), each with the load it was measured under. */
export class Samples {
  readonly #m = new Map<string, { v: number[]; loads: Load[] }>();
  /** Runs `fn` (which returns the measured value), records it under `key` with its load, returns it. */
  async measure(key: string, fn: () => Promise<number>): Promise<number> {
    const { value, load } = await underLoad(fn);
    this.add(key, value, load);
    console.error(`${key}: ${fmt(value, 2)} (${loadText(load)})`);
    return value;
  }
  add(key: string, value: number, load: Load): void {
    const e = this.#m.get(key) ?? { v: [], loads: [] };
    e.v.push(value);
    e.loads.push(load);
    this.#m.set(key, e);
  }
  median(key: string): number {
    return median(this.#m.get(key)?.v ?? []);
  }
  max(key: string): number {
    return Math.max(...(this.#m.get(key)?.v ?? [Number.NaN]));
  }
  /** The median load over every measurement of these keys. */
  load(...keys: string[]): Load {
    return medianLoad(keys.flatMap((k) => this.#m.get(k)?.loads ?? []));
  }
}

/** What a benchmark run owns: its namespaces, a scratch directory and cleanup, all removed when it ends. */
export interface Scratch {
  set: NetnsSet;
  dir: string;
  cleanup: Cleanup;
}

/** Runs `fn` with fresh namespaces and a scratch directory; removes both afterwards, even on failure. */
export async function withScratch<T>(name: string, fn: (s: Scratch) => Promise<T>): Promise<T> {
  const cleanup = new Cleanup();
  try {
    const set = createNetns(cleanup);
    const dir = mkdtempSync(join(tmpdir(), `strata-bench-${name}-`));
    cleanup.after(() => rmSync(dir, { recursive: true, force: true }));
    return await fn({ set, dir, cleanup });
  } finally {
    await cleanup.run();
  }
}

const hex = (n: number) => n.toString(16).padStart(2, '0');

/** The MAC of bench Node `i` (52:54:01:…, unique for i < 2^24). */
export function benchMac(i: number): string {
  return `52:54:01:${hex((i >> 16) & 255)}:${hex((i >> 8) & 255)}:${hex(i & 255)}`;
}

/** A multi-document manifest of `n` Nodes `bench-<i>` with target `targetState` and `spec` merged in. */
export function nodesManifest(n: number, targetState: number, spec: Record<string, unknown> = {}): string {
  return Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      apiVersion: 'strata.dev/v1alpha1',
      kind: 'Node',
      metadata: { name: `bench-${i}`, labels: { bench: 'yes' } },
      spec: { macAddresses: [benchMac(i)], targetState, ...spec },
    }),
  ).join('\n---\n');
}
