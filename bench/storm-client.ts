/**
 * The boot-storm load: N simulated machines powering on at once, each doing what BIOS PXE firmware and
 * then iPXE do, in order: DHCP (PXE vendor class, arch 0), a TFTP fetch of the boot file from next-server,
 * DHCP again as iPXE (user class "iPXE"), the boot script over HTTP (the DHCP file name, `${netX/mac}`
 * filled in as iPXE does), every `kernel`/`initrd` URL of the script over HTTP, then a report-in (POST
 * to `strata.url`/install/<node>/events with the script's install token, or to `/report` without one).
 * TFTP and HTTP leave from the machine's leased address: the namespace routes the pool to itself
 * (`ip route add local POOL dev lo`), so each machine has its own source address as real ones do.
 * DHCP runs on a thread of its own (bench/storm-dhcp.ts), so a machine answers an OFFER within
 * milliseconds, as firmware does, however busy this process's loop is with downloads.
 *   node bench/storm-client.ts MACHINES MAC_OFFSET [SPREAD_S] [START_AT]
 * Simulates machines MAC_OFFSET … MAC_OFFSET + MACHINES - 1 (bench/storm.ts runs several of these
 * processes, each on a range of its own, so one process's event loop does not limit the storm). Machines
 * power on at random moments within SPREAD_S seconds of START_AT (epoch ms; default now), as a rack's
 * machines finish their self-tests at different times.
 * Prints one JSON line (a `Storm` below): each machine's own time and when it was done, and the failed
 * ones counted by the phase they failed in.
 */
import { request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { intToIp } from '../src/dhcp/codec.ts';
import { benchMac } from './lib.ts';
import type { DhcpAnswer, DhcpAsk, Reply } from './storm-dhcp.ts';
import { tftpFetch } from './tftp-client.ts';

const now = () => performance.timeOrigin + performance.now();
const spreadMs = Number(process.argv[4] ?? 0) * 1000;
const startAt = Number(process.argv[5] ?? now());

/** Where a machine can fail, in boot order: what a reader needs to see which side limits a storm. */
export const PHASES = ['no OFFER', 'no ACK', 'TFTP', 'script', 'HTTP', 'report'] as const;
export type Phase = (typeof PHASES)[number];

/** A booted machine's steps, in order, each timed from the end of the one before. */
export const STEPS = ['DHCP', 'TFTP', 'DHCP as iPXE', 'script', 'kernel + initrd', 'report'] as const;
export type Step = (typeof STEPS)[number];

/** What one client process prints. */
export interface Storm {
  /** The common start (epoch ms) and how late this process was for it. */
  startAt: number;
  lateMs: number;
  /** Per booted machine: its own time from power-on to report-in, and when it was done (epoch ms). */
  ms: number[];
  doneAt: number[];
  failed: Partial<Record<Phase, number>>;
  /** One message per failed phase, for the log. */
  examples: Partial<Record<Phase, string>>;
  retries: number;
  /** NAKs answered by starting over from DISCOVER. */
  naks: number;
  /** Per booted machine, the milliseconds each of its steps took (keys: STEPS), to see where a side is slower. */
  stepMs: Record<Step, number[]>;
  /** TFTP: times a machine waited 1 s and sent its last packet again; DATA blocks out of order (resent). */
  tftpTimeouts: number;
  tftpOutOfOrder: number;
  /**
   * This process's worst event-loop delay: a simulator that stalls for seconds answers OFFERs late and
   * reads ACKs late, and its machines fail for that, not for the server.
   */
  stallMs: number;
}

class PhaseError extends Error {
  readonly phase: Phase;
  constructor(phase: Phase, message: string) {
    super(message);
    this.phase = phase;
  }
}

/** The DHCP thread (bench/storm-dhcp.ts) and the machines waiting for its answers. */
let dhcpThread: Worker | undefined;
const asked = new Map<number, (a: DhcpAnswer) => void>();
let asks = 0;
/** The DHCP thread's counts, as of its latest answer. */
let dhcpRetries = 0;
let naks = 0;
let retries = 0;
let tftpTimeouts = 0;
let tftpOutOfOrder = 0;

async function openDhcp(): Promise<void> {
  const w = new Worker(new URL('./storm-dhcp.ts', import.meta.url));
  dhcpThread = w;
  await new Promise<void>((resolve, reject) => {
    w.once('error', reject);
    w.once('message', () => resolve());
  });
  w.on('message', (a: DhcpAnswer) => {
    dhcpRetries = a.retries;
    naks = a.naks;
    asked.get(a.id)?.(a);
    asked.delete(a.id);
  });
}

/** DISCOVER … ACK for `mac` on the DHCP thread (NAKs start over there, as RFC 2131 has clients do). */
function dhcp(mac: string, ipxe: boolean): Promise<Reply> {
  const id = asks++;
  return new Promise((resolve, reject) => {
    asked.set(id, (a) => ('reply' in a ? resolve(a.reply) : reject(new PhaseError(a.phase, a.message))));
    dhcpThread?.postMessage({ id, mac, ipxe } satisfies DhcpAsk);
  });
}

function http(method: string, url: string, localAddress: string, body?: string, token?: string) {
  return new Promise<{ status: number; text: string; bytes: number }>((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        localAddress,
        agent: false,
        headers: {
          ...(body ? { 'content-type': 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        let bytes = 0;
        const keep: Buffer[] = [];
        res.on('data', (d: Buffer) => {
          bytes += d.length;
          if (keep.length < 4 && bytes < 65536) keep.push(d);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(keep).toString(), bytes }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** `fn`, its failure (other than a DHCP one) counted as `phase`. */
async function phase<T>(p: Phase, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof PhaseError) throw e;
    throw new PhaseError(p, e instanceof Error ? e.message : String(e));
  }
}

async function machine(i: number): Promise<{ ms: number; doneAt: number; steps: number[] }> {
  const wait = startAt + Math.random() * spreadMs - now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const t0 = performance.now();
  const marks = [t0];
  const mark = () => marks.push(performance.now());
  const mac = benchMac(i);
  const first = await dhcp(mac, false);
  mark();
  const ip = intToIp(first.yiaddr);
  const tftp = await phase('TFTP', () =>
    tftpFetch({
      host: intToIp(first.siaddr || first.server),
      port: 69,
      file: first.file,
      blksize: 1432,
      windowsize: 0,
      localAddress: ip,
    }),
  );
  tftpTimeouts += tftp.timeouts;
  tftpOutOfOrder += tftp.outOfOrder;
  if (!tftp.ok) throw new PhaseError('TFTP', `tftp ${first.file} failed`);
  mark();
  const second = await dhcp(mac, true);
  mark();
  // iPXE expands `${netX/mac}` (the interface it last opened; older scripts said `${net0/mac}`) to the MAC.
  const scriptUrl = second.file.replace(/\$\{net[0-9X]\/mac\}/, mac);
  const script = await phase('script', async () => {
    let r = await http('GET', scriptUrl, intToIp(second.yiaddr));
    // Strata refuses a script until the lease is recorded; iPXE's error script retries, so do we.
    for (let n = 0; r.status !== 200 && n < 20; n++) {
      retries++;
      await new Promise((res) => setTimeout(res, 500));
      r = await http('GET', scriptUrl, intToIp(second.yiaddr));
    }
    if (r.status !== 200) throw new Error(`script ${r.status}: ${r.text.slice(0, 200)}`);
    return r;
  });
  mark();
  const base = new URL(scriptUrl);
  const urls = [...script.text.matchAll(/^(?:kernel|initrd)(?:\s+--name\s+\S+)?\s+(\S+)/gm)].map((m) =>
    new URL(m[1]!, base).toString(),
  );
  if (urls.length < 2)
    throw new PhaseError('script', `script names no kernel and initrd: ${script.text.slice(0, 300)}`);
  for (const u of urls) {
    const r = await phase('HTTP', () => http('GET', u, ip));
    if (r.status !== 200) throw new PhaseError('HTTP', `GET ${u}: ${r.status}`);
  }
  mark();
  const token = /strata\.token=(\S+)/.exec(script.text)?.[1];
  const node = /strata\.node=(\S+)/.exec(script.text)?.[1];
  const strataUrl = /strata\.url=(\S+)/.exec(script.text)?.[1];
  const event = JSON.stringify({ step: 'bench', message: 'report-in', status: 'running' });
  const send = () =>
    token && node && strataUrl
      ? http('POST', `${strataUrl}/install/${node}/events`, ip, event, token)
      : http('POST', new URL('/report', base).toString(), ip, event);
  const report = await phase('report', async () => {
    let r = await send();
    // The install agent (src/install/agent.sh) sends an event again, once a second, whenever it cannot
    // tell it landed: a 5xx here (a 503 from Strata, a 502 from a proxy).
    for (let n = 0; r.status >= 500 && n < 5; n++) {
      retries++;
      await new Promise((res) => setTimeout(res, 1000));
      r = await send();
    }
    return r;
  });
  if (report.status >= 300)
    throw new PhaseError('report', `report-in: ${report.status} ${report.text.slice(0, 200)}`);
  mark();
  return { ms: performance.now() - t0, doneAt: now(), steps: marks.slice(1).map((t, k) => t - marks[k]!) };
}

if (import.meta.main) {
  const machines = Number(process.argv[2]);
  const macOffset = Number(process.argv[3] ?? 0);
  await openDhcp();
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  const lateMs = Math.max(0, now() - startAt);
  const failed: Partial<Record<Phase, number>> = {};
  const examples: Partial<Record<Phase, string>> = {};
  const results = await Promise.all(
    Array.from({ length: machines }, (_, i) =>
      machine(macOffset + i).catch((e: unknown) => {
        const p: Phase = e instanceof PhaseError ? e.phase : 'report';
        failed[p] = (failed[p] ?? 0) + 1;
        examples[p] ??= (e instanceof Error ? e.message : String(e)).slice(0, 160);
        return undefined;
      }),
    ),
  );
  const ok = results.filter((x) => x !== undefined);
  const out: Storm = {
    startAt,
    lateMs,
    ms: ok.map((r) => r.ms),
    doneAt: ok.map((r) => r.doneAt),
    failed,
    examples,
    retries: retries + dhcpRetries,
    naks,
    stepMs: Object.fromEntries(STEPS.map((st, k) => [st, ok.map((r) => r.steps[k]!)])) as Record<
      Step,
      number[]
    >,
    tftpTimeouts,
    tftpOutOfOrder,
    stallMs: loop.max / 1e6,
  };
  // Exit only once the line is out: stdout to a pipe is asynchronous, and a storm of thousands prints
  // more than the pipe holds (an exit right after the write cut the JSON at 5,000 machines).
  process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
}
