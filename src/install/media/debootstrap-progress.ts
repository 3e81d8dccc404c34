/**
 * Reads debootstrap's progress from its output lines (`I: Retrieving libc6 2.36-9`, `I: Extracting
 * libc6...`, `I: Unpacking ...`, `I: Configuring ...`, `W: ...`) and turns them into a percentage, a phase
 * and "what it is doing now". Pure (no I/O), so the parser is tested on the lines alone.
 *
 * debootstrap prints no totals, so the percentage counts packages: the download phase against the number of
 * packages the last build fetched (kept in the cache) or an estimate on a first run, the later phases
 * against the number actually fetched. Phases are weighted by how long they take without KVM on two
 * cores: indices 5 %, download 50 %, extraction 10 %, unpack and configure the rest. The percentage never
 * goes backwards, and it reaches 100 only on "Base system installed successfully".
 */

export interface DebootstrapStatus {
  percent: number;
  phase: 'indices' | 'download' | 'extract' | 'install' | 'done';
  doing: string;
}

/** Packages of a first build of the lab image (minbase + OS_PACKAGES and their dependencies), roughly. */
export const DEBOOTSTRAP_PACKAGES_ESTIMATE = 280;

const RANGES = { indices: [0, 5], download: [5, 55], extract: [55, 65], install: [65, 99], done: [100, 100] };

export class DebootstrapProgress {
  readonly warnings: string[] = [];
  readonly errors: string[] = [];
  readonly #expected: number;
  readonly #retrieved = new Set<string>();
  readonly #validated = new Set<string>();
  #extracted = 0;
  #unpacked = 0;
  #configured = 0;
  #status: DebootstrapStatus = { percent: 0, phase: 'indices', doing: 'starting' };

  constructor(expectedPackages = DEBOOTSTRAP_PACKAGES_ESTIMATE) {
    this.#expected = Math.max(1, expectedPackages);
  }

  /** Distinct packages fetched so far. */
  get packages(): number {
    return this.#retrieved.size;
  }

  get status(): DebootstrapStatus {
    return this.#status;
  }

  /** Feeds one line of output (stdout or stderr); returns the new status when the line is progress. */
  line(raw: string): DebootstrapStatus | undefined {
    const text = raw.trim();
    const m = /^([IWE]): (.*)$/.exec(text);
    if (!m) return undefined;
    const [, level, msg] = m as unknown as [string, string, string];
    if (level === 'W') {
      this.warnings.push(msg);
      return this.#set(this.#status.phase, this.#status.percent, `warning: ${msg}`);
    }
    if (level === 'E') {
      this.errors.push(msg);
      return this.#set(this.#status.phase, this.#status.percent, `error: ${msg}`);
    }
    const fetched = /^(Retrieving|Validating) (\S+) (\S+)$/.exec(msg);
    if (fetched) {
      (fetched[1] === 'Retrieving' ? this.#retrieved : this.#validated).add(fetched[2]!);
      const total = Math.max(this.#expected, this.#retrieved.size + 1);
      const done = (this.#retrieved.size + this.#validated.size) / 2;
      return this.#set('download', this.#at('download', done / total), msg);
    }
    if (/^Extracting \S+?\.*$/.test(msg)) {
      this.#extracted++;
      return this.#set('extract', this.#at('extract', this.#extracted / this.#total()), msg);
    }
    if (/^Unpacking \S+?\.*$/.test(msg) && !/ packages|base system/.test(msg)) this.#unpacked++;
    else if (/^Configuring \S+?\.*$/.test(msg) && !/ packages|base system/.test(msg)) this.#configured++;
    if (/^(Installing|Unpacking|Configuring) /.test(msg)) {
      const done = (this.#unpacked + this.#configured) / (2 * this.#total());
      return this.#set('install', this.#at('install', done), msg);
    }
    if (/installed successfully/.test(msg)) return this.#set('done', 100, msg);
    // indices, signatures, dependency resolution
    const phase = this.#status.phase === 'indices' ? 'indices' : this.#status.phase;
    return this.#set(
      phase,
      phase === 'indices' ? Math.min(4, this.#status.percent + 1) : this.#status.percent,
      msg,
    );
  }

  #total(): number {
    return Math.max(1, this.#retrieved.size);
  }

  #at(phase: keyof typeof RANGES, fraction: number): number {
    const [lo, hi] = RANGES[phase];
    return lo! + (hi! - lo!) * Math.min(1, Math.max(0, fraction));
  }

  #set(phase: DebootstrapStatus['phase'], percent: number, doing: string): DebootstrapStatus {
    this.#status = { phase, percent: Math.max(this.#status.percent, Math.floor(percent)), doing };
    return this.#status;
  }
}
