/**
 * TFTP transfers on every core. A transfer is one DATA datagram per round trip, and most of its cost is the
 * kernel's send path, paid on the sending thread: one Node process moves one core's worth of datagrams,
 * where tftpd-hpa forks a process per client and uses them all (BENCHMARKS.md, "TFTP"). So the listener
 * stays where it is (one socket on port 69, bound exclusively, every request parsed and refused or accepted
 * there, as before) and hands each accepted read request to one of `count` processes (core.ts), in turn. A
 * transfer's own socket is an ephemeral port anyway (its TID), so the process that runs it opens it.
 * - The processes start with the first request, or earlier when told firmware is on the wire (`warm`: a
 *   segment's worker calls it on a PXE client's DHCP request, which comes before its TFTP request),
 *   not with the server: a segment that never sees firmware costs nothing, and until one is up the
 *   listener runs transfers itself.
 * - Each process sends back one summary per transfer and the counters it moved (a tally, applied to this
 *   process's registry: nobody scrapes theirs), batched per event-loop turn.
 * - They live exactly as long as this process's IPC channel: each exits when it closes, however this process
 *   ended, so none is left behind. One that exits early fails its transfers (the clients time out and ask
 *   again) and is started again on a later request.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { endChild, processCount } from '../core/child.ts';
import type { Logger } from '../core/log.ts';
import {
  applyTally,
  type RunningTransfer,
  type Tally,
  type TransferHost,
  type TransferRequest,
  type TransferSettings,
  type TransferSummary,
} from './server.ts';

/** A directory a process serves from (a `DirectorySource`); the processes chain them in order. */
export interface CoreDir {
  root: string;
  allowLeadingSlash?: boolean;
}

/** Listener → process. */
export type ToTftpCore =
  | {
      t: 'start';
      index: number;
      dirs: CoreDir[];
      settings: TransferSettings;
    }
  | { t: 'run'; id: number; req: TransferRequest }
  | { t: 'abort'; id: number; reason: string };

/** Process → listener. */
export type FromTftpCore =
  | { t: 'hello' }
  | { t: 'ready' }
  | { t: 'done'; list: { id: number; summary: TransferSummary }[]; tally?: Tally };

/**
 * How many processes run a segment's TFTP transfers: `processes` (spec.tftp.processes), else
 * STRATA_BOOT_TFTP_PROCESSES, else one per core (at most 8). 1 = the listener's process alone.
 */
export function tftpProcessCount(processes: number | undefined, env = process.env): number {
  return processCount(processes, 'STRATA_BOOT_TFTP_PROCESSES', env);
}

export interface TransferCoresOptions {
  count: number;
  dirs: CoreDir[];
  settings: TransferSettings;
  log: Logger;
}

export interface TransferCores extends TransferHost {
  /** Processes up and taking transfers. */
  readonly ready: number;
  /** Starts the processes that are not running yet, ahead of the first request. */
  warm(): void;
  /** Ends the processes (abort the transfers through the server first: `TftpServer.stop`). */
  stop(): Promise<void>;
}

const CORE_MAIN = join(import.meta.dirname, 'core.ts');
/** How long stopping waits for a process to report a transfer it was told to abort. */
const ABORT_WAIT_MS = 1000;
/** A process that exited is started again (on a later request) no sooner than this after. */
const RESTART_AFTER_MS = 5_000;

/** A transfer handed to a process: what to call with its summary, and with the end of its abort. */
interface Handed {
  done: (s: TransferSummary) => void;
  req: TransferRequest;
  aborted?: () => void;
}

interface Core {
  child: ChildProcess;
  ready: boolean;
  /** Transfers it runs: id → what to call with their summary. */
  running: Map<number, Handed>;
}

export function transferCores(o: TransferCoresOptions): TransferCores {
  const cores: (Core | undefined)[] = new Array(o.count).fill(undefined);
  const lastExit: number[] = new Array(o.count).fill(0);
  let stopping = false;
  let next = 0;
  let nextId = 1;

  const send = (c: ChildProcess, m: ToTftpCore) => {
    if (c.connected) c.send(m, undefined, undefined, () => {});
  };

  const launch = (index: number) => {
    const child = fork(CORE_MAIN, [], { execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const core: Core = { child, ready: false, running: new Map() };
    cores[index] = core;
    child.on('message', (m: FromTftpCore) => {
      if (m.t === 'hello') send(child, { t: 'start', index: index + 1, dirs: o.dirs, settings: o.settings });
      else if (m.t === 'ready') {
        core.ready = true;
        o.log.debug('tftp transfer process ready', { index: index + 1, pid: child.pid });
      } else if (m.t === 'done') {
        if (m.tally) applyTally(m.tally);
        for (const { id, summary } of m.list) {
          const r = core.running.get(id);
          core.running.delete(id);
          r?.done(summary);
          r?.aborted?.();
        }
      }
    });
    child.on('error', (err) => o.log.warn('tftp transfer process', { index: index + 1, err }));
    child.once('exit', (code, signal) => {
      if (cores[index] === core) cores[index] = undefined;
      lastExit[index] = Date.now();
      if (!stopping) o.log.warn('tftp transfer process exited', { index: index + 1, code, signal });
      // Its transfers are gone with it: report them failed so the listener forgets them.
      for (const r of core.running.values()) {
        r.done(failed(r.req, 'transfer process exited'));
        r.aborted?.();
      }
      core.running.clear();
    });
  };

  /** Starts the processes that are not running (none at first); a crashed one only after a pause. */
  const ensure = () => {
    const now = Date.now();
    for (let i = 0; i < o.count; i++)
      if (!cores[i] && now - lastExit[i]! > (lastExit[i] ? RESTART_AFTER_MS : 0)) launch(i);
  };

  return {
    get ready() {
      return cores.filter((c) => c?.ready).length;
    },
    warm() {
      if (!stopping) ensure();
    },
    run(req, done): RunningTransfer | false {
      if (stopping) return false;
      ensure();
      for (let k = 0; k < o.count; k++) {
        const core = cores[(next + k) % o.count];
        if (!core?.ready || !core.child.connected) continue;
        next = (next + k + 1) % o.count;
        const id = nextId++;
        const entry: Handed = { done, req };
        core.running.set(id, entry);
        send(core.child, { t: 'run', id, req });
        return {
          abort(reason) {
            if (!core.running.has(id)) return Promise.resolve();
            // Done when its summary comes back, or when the process exits; one that hangs is not waited for
            // longer than a second (stop() then ends it).
            return new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, ABORT_WAIT_MS);
              entry.aborted = () => {
                clearTimeout(timer);
                resolve();
              };
              send(core.child, { t: 'abort', id, reason });
            });
          },
        };
      }
      return false;
    },
    async stop() {
      stopping = true;
      await Promise.all(cores.map((c) => (c ? endChild(c.child) : undefined)));
    },
  };
}

function failed(req: TransferRequest, error: string): TransferSummary {
  return {
    client: req.client,
    path: req.path,
    mode: req.mode,
    bytes: 0,
    size: undefined,
    blksize: 0,
    windowsize: 0,
    durationMs: 0,
    ok: false,
    error,
    retransmits: 0,
  };
}
