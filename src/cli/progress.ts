/**
 * Live progress for long CLI work (`strata lab up`): one line per task with a bar, the percentage, the
 * elapsed time and what it is doing now. On a terminal the lines are redrawn in place ten times a second,
 * so the clock keeps moving even while nothing reports; finished tasks stay printed above the live ones.
 * On a pipe or in CI it prints plain lines instead: one when a task starts, changes phase or ends, and a
 * heartbeat every 10 s while it runs, so a log never looks hung and never fills with redraws.
 *
 * Our own small renderer rather than cli-progress or listr2: cli-progress's non-TTY mode reprints every bar
 * on a timer (no "one line per phase change"), and listr2 wants to own the control flow as a task list,
 * while here tasks come and go from callbacks (the asset build's IPC messages, the API's node states).
 */

export interface TaskUpdate {
  /** Shown first on the line, e.g. `rootfs` or `lab-1`. */
  label?: string;
  /** 0..100; undefined shows a moving bar (work of unknown length). */
  percent?: number | undefined;
  /** A coarse phase: the plain output prints a line when it changes. */
  phase?: string;
  /** What it is doing now. */
  doing?: string;
}

interface Task extends Required<Omit<TaskUpdate, 'percent'>> {
  percent: number | undefined;
  startedAt: number;
  endedAt?: number;
  failed?: boolean;
  printedPhase?: string;
  printedAt: number;
}

export interface ProgressOutput {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  out?: ProgressOutput;
  /** Redraw in place (default: when `out` is a terminal and TERM is not dumb). */
  tty?: boolean;
  /** Plain output: a line at least this often while a task runs (default 10 s). */
  heartbeatMs?: number;
}

const BAR = 20;

export function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class ProgressView {
  readonly #out: ProgressOutput;
  readonly #tty: boolean;
  readonly #heartbeatMs: number;
  readonly #tasks = new Map<string, Task>();
  readonly #timer: NodeJS.Timeout;
  #drawn = 0;
  #frame = 0;
  #closed = false;

  constructor(opts: ProgressOptions = {}) {
    this.#out = opts.out ?? process.stderr;
    this.#tty = opts.tty ?? (Boolean(this.#out.isTTY) && process.env.TERM !== 'dumb');
    this.#heartbeatMs = opts.heartbeatMs ?? 10_000;
    this.#timer = setInterval(() => this.#tick(), this.#tty ? 100 : 1000);
    this.#timer.unref();
  }

  /** Creates or updates a task. */
  update(id: string, u: TaskUpdate): void {
    let t = this.#tasks.get(id);
    if (!t) {
      t = {
        label: u.label ?? id,
        percent: undefined,
        phase: '',
        doing: '',
        startedAt: Date.now(),
        printedAt: 0,
      };
      this.#tasks.set(id, t);
    }
    if (t.endedAt) return;
    if (u.label !== undefined) t.label = u.label;
    if ('percent' in u)
      t.percent = u.percent === undefined ? undefined : Math.max(0, Math.min(100, u.percent));
    if (u.phase !== undefined) t.phase = u.phase;
    if (u.doing !== undefined) t.doing = u.doing;
    if (!this.#tty) this.#plain(t, false);
  }

  /** Ends a task (done, or failed), leaving its last line printed. */
  end(id: string, doing: string, failed = false): void {
    const t = this.#tasks.get(id);
    if (!t || t.endedAt) return;
    t.endedAt = Date.now();
    t.failed = failed;
    t.doing = doing;
    if (!failed) t.percent = 100;
    if (this.#tty) this.#redraw();
    else this.#plain(t, true);
  }

  /** Prints a line above the live tasks. */
  log(line: string): void {
    if (this.#tty) {
      this.#clear();
      this.#out.write(line + '\n');
      this.#redraw();
    } else this.#out.write(line + '\n');
  }

  /** Stops redrawing; running tasks keep their last line. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#tty) {
      this.#redraw();
      this.#drawn = 0;
    }
  }

  #tick(): void {
    this.#frame++;
    if (this.#tty) {
      this.#redraw();
      return;
    }
    for (const t of this.#tasks.values()) if (!t.endedAt) this.#plain(t, false);
  }

  #plain(t: Task, ended: boolean): void {
    const changed = t.printedPhase !== t.phase;
    if (!ended && !changed && Date.now() - t.printedAt < this.#heartbeatMs) return;
    t.printedPhase = t.phase;
    t.printedAt = Date.now();
    const pct = t.percent === undefined ? '' : ` ${Math.floor(t.percent)}%`;
    const state = ended ? (t.failed ? ' FAILED' : ' done') : '';
    const phase = t.phase && !ended ? ` ${t.phase}` : '';
    this.#out.write(
      `[${formatElapsed((t.endedAt ?? Date.now()) - t.startedAt)}] ${t.label}${state}${pct}${phase}: ${t.doing}\n`,
    );
  }

  #line(t: Task): string {
    let bar: string;
    if (t.percent === undefined) {
      const pos = this.#frame % (BAR * 2 - 6);
      const at = pos < BAR - 3 ? pos : BAR * 2 - 6 - pos;
      bar = ' '.repeat(at) + '<=>' + ' '.repeat(BAR - 3 - at);
    } else {
      const n = Math.round((t.percent / 100) * BAR);
      bar = '#'.repeat(n) + '-'.repeat(BAR - n);
    }
    const pct = t.failed
      ? 'FAIL'
      : t.percent === undefined
        ? '    '
        : `${Math.floor(t.percent)}%`.padStart(4);
    const el = formatElapsed((t.endedAt ?? Date.now()) - t.startedAt).padStart(6);
    const line = `${t.label.padEnd(10)} [${bar}] ${pct} ${el}  ${t.doing}`;
    const cols = this.#out.columns || 100;
    return line.length > cols - 1 ? line.slice(0, cols - 2) + '…' : line;
  }

  #clear(): void {
    if (this.#drawn) this.#out.write(`\x1b[${this.#drawn}A\x1b[J`);
    this.#drawn = 0;
  }

  #redraw(): void {
    if (this.#closed && this.#drawn === 0) return;
    this.#clear();
    let text = '';
    // Ended tasks are printed once for good, above the live ones.
    for (const [id, t] of this.#tasks) {
      if (t.endedAt) {
        text += `\r${this.#line(t)}\n`;
        this.#tasks.delete(id);
      }
    }
    let live = 0;
    for (const t of this.#tasks.values()) {
      text += `\r${this.#line(t)}\n`;
      live++;
    }
    this.#out.write(text);
    this.#drawn = live;
  }
}
