/**
 * Read-only TFTP server for network boot: serves iPXE binaries and boot artifacts to firmware.
 *
 * Shape, and why:
 * - One listening socket (default port 69) only accepts requests. Every read transfer gets its own
 *   ephemeral UDP socket (its TID, RFC 1350), connected to the client's address and port so the kernel
 *   drops datagrams from any other source without disturbing the transfer, and a vanished client shows up
 *   as ECONNREFUSED instead of a slow timeout. (RFC 1350 suggests answering a stranger with error 5; the
 *   connected socket means strangers get an ICMP port-unreachable instead, which never disturbs us either.)
 * - Transfers are lock-step windows (RFC 7440; windowsize 1 is plain RFC 1350): send blocks acked+1 ..
 *   acked+windowsize, wait for the ACK of the last one. An ACK of an earlier block of the window means the
 *   client lost the next one: resend the window from there. A duplicate or stale ACK is ignored and NEVER
 *   triggers a send — retransmission happens only when our own timer fires, which is what prevents the
 *   Sorcerer's Apprentice storm. Retries are bounded; progress resets the count.
 * - The retransmission timeout adapts to the round trip measured per transfer, as TCP's does (RFC 6298:
 *   SRTT + 4·RTTVAR, Karn's rule: no sample from a window that was resent), between `minTimeoutMs` and
 *   `timeoutMs`, and doubles on each timeout up to `timeoutMs`. A fixed 1 s made every lost packet on a
 *   10 ms path cost 100 round trips; a client that negotiated `timeout` (RFC 2349) gets exactly that. Only
 *   timeouts at the full `timeoutMs` count toward `retries`, so a silent client is given up no sooner than
 *   before.
 * - Bytes come from an injected `FileSource` (see `source.ts`). A file it holds in memory is sent as
 *   ready-made DATA packets shared by every transfer of it (`packets.ts`); others through positional reads,
 *   one read per window, into a buffer the transfer owns and reuses, each DATA packet sent as [4-byte
 *   header, data slice] (scatter/gather, no copy). A buffer that sends still queued in libuv point into is
 *   never refilled.
 * - Write requests are refused with error 2 (access violation): the server is read-only by design.
 * - netascii is accepted but served as octet (no CR/LF translation): boot clients only fetch binaries, and
 *   translation would make `tsize` and positional reads lie. `mail` mode is refused with error 4.
 * - Malformed datagrams are dropped and counted (`strata_tftp_malformed_packets_total{reason}`), never fatal.
 * - An injected observer gets one summary per finished transfer, to put on the node's timeline.
 * - Bind the listener to a specific address on multi-homed hosts: Node cannot read IP_PKTINFO, so with
 *   0.0.0.0 the transfer sockets' source address is chosen by routing, not by where the request arrived.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { isIPv6 } from 'node:net';
import { type Logger, silentLogger } from '../core/log.ts';
import { counter, gauge } from '../core/metrics.ts';
import {
  ackBlock,
  blockCount,
  DEFAULT_BLKSIZE,
  decode,
  ERROR_CODE,
  encodeError,
  encodeOack,
  MAX_BLKSIZE,
  type Negotiated,
  negotiate,
  OPCODE,
  type Packet,
  TftpDecodeError,
  writeDataHeader,
} from './codec.ts';
import { type PacketSet, type PacketSets, sharedPacketSets } from './packets.ts';
import { type FileSource, type OpenFile, type TftpClient, TftpError } from './source.ts';

export interface TransferSummary {
  client: TftpClient;
  path: string;
  mode: string;
  /** File bytes the client acknowledged (the whole size when ok). */
  bytes: number;
  /** File size, when the file was opened. */
  size: number | undefined;
  blksize: number;
  windowsize: number;
  durationMs: number;
  ok: boolean;
  error?: string;
  /** Packets (DATA or OACK) sent again after a timeout. */
  retransmits: number;
  /** Smoothed round trip (send of a window to its ACK), when one was measured. */
  srttMs?: number;
}

export interface TransferObserver {
  onTransfer(summary: TransferSummary): void;
}

export interface TftpServerOptions {
  source: FileSource;
  /** Listen address. Default '0.0.0.0'. */
  address?: string;
  /** Listen port. Default 69; 0 picks a free port (see `address()` after `start()`). */
  port?: number;
  observer?: TransferObserver;
  logger?: Logger;
  /**
   * Retransmission timeout when the client does not negotiate one (RFC 2349), and the most the adaptive
   * timeout grows to. Default 1000 ms.
   */
  timeoutMs?: number;
  /**
   * Floor of the adaptive retransmission timeout. Default 200 ms (Linux TCP's): a lost packet costs about
   * this instead of a whole `timeoutMs`, while an event loop that stalls for less never resends.
   */
  minTimeoutMs?: number;
  /** Timeouts in a row without progress before a transfer is abandoned. Default 5. */
  retries?: number;
  /** Largest blksize agreed to. Default 65464. */
  maxBlksize?: number;
  /** Largest windowsize agreed to. Default 64. */
  maxWindowsize?: number;
  /**
   * Cap on blksize × windowsize per transfer; the agreed windowsize is lowered to fit. Default 128 KiB: a
   * window must fit the client's socket receive buffer (208 KiB by default on Linux, and a 64 KiB datagram
   * costs about twice its size there), or every window loses its tail and waits for a timeout. Measured with
   * atftp, blksize 65464: windowsize 4 took 6 s for 10 MB (24 timeouts), windowsize 2 took 0.07 s.
   */
  maxWindowBytes?: number;
  /**
   * Concurrent transfers. A request beyond them is dropped unanswered (counted as
   * `strata_tftp_requests_total{result="busy"}`): the client sends it again after its timeout, as PXE
   * ROMs do, and gets a transfer once others end. An error would end its boot attempt instead (a
   * 5,000-machine storm lost a third of its machines to "server busy"). Default 4096.
   */
  maxTransfers?: number;
  /**
   * Where accepted read requests run: absent, in this process; else handed to `host` (cores.ts: one process
   * per core), which may still give one back when it cannot take it yet.
   */
  host?: TransferHost;
  /** Where DATA packets of in-memory files are built and shared (packets.ts). Default: the process's. */
  packets?: PacketSets;
}

/** An accepted read request, as the listener parsed it: what a transfer needs to start anywhere. */
export interface TransferRequest {
  client: TftpClient;
  path: string;
  mode: string;
  /** Options as requested (RFC 2347), negotiated by whoever runs the transfer. */
  options: [string, string][];
}

/** A transfer in progress, wherever it runs. */
export interface RunningTransfer {
  /** Ends it from outside (server stop); resolves once it has reported. */
  abort(reason: string): Promise<void>;
}

/** Runs accepted requests somewhere else; `false` hands the request back to run in this process. */
export interface TransferHost {
  run(req: TransferRequest, done: (s: TransferSummary) => void): RunningTransfer | false;
}

const malformed = counter('strata_tftp_malformed_packets_total', 'TFTP datagrams dropped as malformed', [
  'reason',
]);
const unexpected = counter(
  'strata_tftp_unexpected_packets_total',
  'Well-formed TFTP datagrams that make no sense where they arrived (dropped)',
  ['type'],
);
const requests = counter('strata_tftp_requests_total', 'TFTP requests by outcome', ['op', 'result']);
const transfersDone = counter('strata_tftp_transfers_total', 'Finished TFTP read transfers', ['result']);
const bytesSent = counter('strata_tftp_bytes_total', 'File bytes delivered (acknowledged) by TFTP');
const retransmitted = counter('strata_tftp_retransmits_total', 'TFTP packets resent after a timeout');
const duplicateAcks = counter('strata_tftp_duplicate_acks_total', 'Duplicate or stale ACKs ignored');
const active = gauge('strata_tftp_active_transfers', 'TFTP transfers in progress');

function packetLabel(p: Packet): string {
  return p.type;
}

/**
 * The counters a transfer moves. A transfer may run in another process (cores.ts), whose registry nobody
 * scrapes: there a tally stands in, shipped to the listener's process and applied with `applyTally`.
 */
export interface TransferMeter {
  request(result: 'accepted' | 'refused' | 'error' | 'not-found'): void;
  retransmitted(n: number): void;
  duplicateAck(): void;
  malformed(reason: string): void;
  unexpected(type: string): void;
}

/** Counts in this process's registry. */
export const localMeter: TransferMeter = {
  request: (result) => requests.inc({ op: 'rrq', result }),
  retransmitted: (n) => retransmitted.inc(n),
  duplicateAck: () => duplicateAcks.inc(),
  malformed: (reason) => malformed.inc({ reason }),
  unexpected: (type) => unexpected.inc({ type }),
};

/** Counter increments made elsewhere, keyed `meter method` or `method:label`. */
export type Tally = Record<string, number>;

/** A meter that only counts, for a process whose registry is not scraped; `take` empties it. */
export function tallyMeter(): TransferMeter & { take(): Tally | undefined } {
  let t: Tally = {};
  let any = false;
  const add = (key: string, n = 1) => {
    t[key] = (t[key] ?? 0) + n;
    any = true;
  };
  return {
    request: (result) => add(`request:${result}`),
    retransmitted: (n) => add('retransmitted', n),
    duplicateAck: () => add('duplicateAck'),
    malformed: (reason) => add(`malformed:${reason}`),
    unexpected: (type) => add(`unexpected:${type}`),
    take() {
      if (!any) return undefined;
      const out = t;
      t = {};
      any = false;
      return out;
    },
  };
}

/** Applies a tally from another process to this process's counters; unknown keys are ignored. */
export function applyTally(t: Tally): void {
  for (const [key, n] of Object.entries(t)) {
    if (!(Number.isInteger(n) && n > 0)) continue;
    const [kind, label = ''] = key.split(':', 2) as [string, string?];
    if (kind === 'request' && ['accepted', 'refused', 'error', 'not-found'].includes(label))
      requests.inc({ op: 'rrq', result: label }, n);
    else if (kind === 'retransmitted') retransmitted.inc(n);
    else if (kind === 'duplicateAck') duplicateAcks.inc(n);
    else if (kind === 'malformed' && label) malformed.inc({ reason: label }, n);
    else if (kind === 'unexpected' && label) unexpected.inc({ type: label }, n);
  }
}

/** What a transfer needs of the server's options, wherever it runs. */
export type TransferConfig = TransferSettings & {
  source: FileSource;
  logger: Logger;
  meter: TransferMeter;
  packets?: PacketSets;
};

/** The plain settings of a transfer (what another process is sent to run transfers the same way). */
export interface TransferSettings {
  address: string;
  timeoutMs: number;
  minTimeoutMs: number;
  retries: number;
  maxBlksize: number;
  maxWindowsize: number;
  maxWindowBytes: number;
}

/** The transfer settings in `options`, with their defaults. */
export function transferSettings(options: Omit<TftpServerOptions, 'source'>): TransferSettings {
  return {
    address: options.address ?? '0.0.0.0',
    timeoutMs: options.timeoutMs ?? 1000,
    minTimeoutMs: Math.min(options.minTimeoutMs ?? 200, options.timeoutMs ?? 1000),
    retries: options.retries ?? 5,
    maxBlksize: Math.min(options.maxBlksize ?? MAX_BLKSIZE, MAX_BLKSIZE),
    maxWindowsize: options.maxWindowsize ?? 64,
    maxWindowBytes: options.maxWindowBytes ?? 128 * 1024,
  };
}

export class TftpServer {
  readonly #opts: TransferConfig & {
    port: number;
    maxTransfers: number;
    observer: TransferObserver | undefined;
    host: TransferHost | undefined;
  };
  #socket: Socket | undefined;
  readonly #transfers = new Map<string, RunningTransfer>();

  constructor(options: TftpServerOptions) {
    this.#opts = {
      ...transferSettings(options),
      source: options.source,
      logger: options.logger ?? silentLogger,
      meter: localMeter,
      ...(options.packets ? { packets: options.packets } : {}),
      port: options.port ?? 69,
      maxTransfers: options.maxTransfers ?? 4096,
      observer: options.observer,
      host: options.host,
    };
  }

  /** Binds the listening socket. Resolves with the bound address (useful with port 0). */
  async start(): Promise<{ address: string; port: number }> {
    if (this.#socket) throw new Error('TFTP server already started');
    const socket = createSocket({ type: isIPv6(this.#opts.address) ? 'udp6' : 'udp4' });
    socket.on('message', (msg, rinfo) => this.#onRequest(msg, { address: rinfo.address, port: rinfo.port }));
    const bound = once(socket, 'listening');
    socket.bind({ address: this.#opts.address, port: this.#opts.port, exclusive: true });
    await bound; // rejects with the bind error ('error' event), e.g. EADDRINUSE or EACCES for port 69
    socket.on('error', (err) => this.#opts.logger.error('tftp socket error', { err }));
    this.#socket = socket;
    const a = this.address();
    this.#opts.logger.info('tftp listening', a);
    return a;
  }

  /** Stops listening and aborts running transfers (their clients get error 0); resolves when all closed. */
  async stop(): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    await Promise.all([...this.#transfers.values()].map((t) => t.abort('server shutting down')));
  }

  address(): { address: string; port: number } {
    if (!this.#socket) throw new Error('TFTP server not started');
    const a = this.#socket.address();
    return { address: a.address, port: a.port };
  }

  get activeTransfers(): number {
    return this.#transfers.size;
  }

  #reply(client: TftpClient, code: number, message: string): void {
    this.#socket?.send(encodeError(code, message), client.port, client.address);
  }

  #onRequest(msg: Buffer, client: TftpClient): void {
    if (client.port === 0) {
      // Port 0 is never a real client (and sending to it throws): a spoofed or broken datagram.
      malformed.inc({ reason: 'source-port' });
      return;
    }
    let p: Packet;
    try {
      p = decode(msg);
    } catch (err) {
      malformed.inc({ reason: err instanceof TftpDecodeError ? err.reason : 'internal' });
      this.#opts.logger.debug('tftp malformed request', { client, err });
      // A request we cannot read still gets an ERROR (RFC 1350), so its client stops waiting at once.
      // Anything else that is not a request is dropped silently: no reflection of junk.
      const op = msg.length >= 2 ? msg.readUInt16BE(0) : 0;
      if (op === OPCODE.RRQ || op === OPCODE.WRQ) {
        requests.inc({ op: op === OPCODE.RRQ ? 'rrq' : 'wrq', result: 'malformed' });
        const why = err instanceof TftpDecodeError ? err.message : 'malformed request';
        this.#reply(client, ERROR_CODE.ILLEGAL_OPERATION, `malformed request: ${why}`);
      }
      return;
    }
    if (p.type === 'wrq') {
      requests.inc({ op: 'wrq', result: 'refused' });
      this.#opts.logger.info('tftp write refused', { client, path: p.filename });
      this.#reply(client, ERROR_CODE.ACCESS_VIOLATION, 'read-only server: writes are refused');
      return;
    }
    if (p.type !== 'rrq') {
      // DATA/ACK/ERROR/OACK belong on a transfer's TID, not here. Dropped silently: no reflection.
      unexpected.inc({ type: packetLabel(p) });
      return;
    }
    if (p.mode === 'mail') {
      requests.inc({ op: 'rrq', result: 'refused' });
      this.#reply(client, ERROR_CODE.ILLEGAL_OPERATION, 'mail mode is not supported');
      return;
    }
    const key = `${client.address}|${client.port}`;
    if (this.#transfers.has(key)) {
      // The client retransmitted its RRQ before seeing our first packet: the running transfer answers it.
      unexpected.inc({ type: 'duplicate-rrq' });
      return;
    }
    if (this.#transfers.size >= this.#opts.maxTransfers) {
      requests.inc({ op: 'rrq', result: 'busy' });
      return;
    }
    const done = (summary: TransferSummary) => {
      this.#transfers.delete(key);
      active.set(this.#transfers.size);
      this.#finished(summary);
    };
    const req = { client, path: p.filename, mode: p.mode, options: [...p.options] };
    const elsewhere = this.#opts.host?.run(req, done);
    if (elsewhere) {
      this.#transfers.set(key, elsewhere);
      active.set(this.#transfers.size);
      return;
    }
    const t = new ReadTransfer(this.#opts, req, done);
    this.#transfers.set(key, t);
    active.set(this.#transfers.size);
    t.run();
  }

  #finished(s: TransferSummary): void {
    transfersDone.inc({ result: s.ok ? 'ok' : 'error' });
    if (s.bytes > 0) bytesSent.inc(s.bytes);
    const log = this.#opts.logger;
    if (s.ok) log.debug('tftp transfer done', { ...s });
    else log.debug('tftp transfer failed', { ...s });
    try {
      this.#opts.observer?.onTransfer(s);
    } catch (err) {
      log.error('tftp observer threw', { err });
    }
  }
}

const READ_AHEAD_BYTES = 64 * 1024;

/**
 * One RRQ from request to last ACK. Owns its socket, its open file and its buffers. Runs in the listener's
 * process or in another (cores.ts); `run` never rejects.
 */
export class ReadTransfer implements RunningTransfer {
  readonly #cfg: TransferConfig;
  readonly #client: TftpClient;
  readonly #path: string;
  readonly #mode: string;
  readonly #requested: Map<string, string>;
  readonly #onDone: (s: TransferSummary) => void;
  readonly #started = performance.now();

  #socket: Socket | undefined;
  #file: OpenFile | undefined;
  #neg: Negotiated = { blksize: DEFAULT_BLKSIZE, windowsize: 1, timeoutMs: undefined, oack: new Map() };
  #oack: Buffer | undefined;
  #state: 'opening' | 'oack' | 'data' | 'done' = 'opening';
  #total = 0;
  /** Highest block (absolute, 1-based) the client acknowledged. */
  #acked = 0;
  /** Highest block sent in the current window. */
  #sentTo = 0;
  #retries = 0;
  #retransmits = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Current retransmission timeout (adaptive unless the client negotiated one). */
  #rto = 0;
  #srtt: number | undefined;
  #rttvar = 0;
  /** When the window now outstanding was first sent; undefined once any of it was resent (Karn). */
  #sentAt: number | undefined;
  /** The duration `#timer` was created with. */
  #timerMs = 0;
  /** When the timer was last (re)started: the timeout is due `#rto` after it (see #arm). */
  #armedAt = 0;
  #pumping: Promise<void> | undefined;
  /** The file's ready-made DATA packets, when the source holds it in memory and the budget had room. */
  #packets: PacketSet | undefined;
  readonly #packetSets: PacketSets;
  /** Headers for `span` blocks, then their data: [0, 4*span) then span*blksize. Reused for every window. */
  #win: Buffer | undefined;
  /** Absolute block number held in the first slot of `#win`. */
  #winStart = 0;
  #winBlocks = 0;
  #doneResolve: (() => void) | undefined;
  readonly #donePromise = new Promise<void>((r) => {
    this.#doneResolve = r;
  });

  constructor(cfg: TransferConfig, req: TransferRequest, onDone: (s: TransferSummary) => void) {
    this.#cfg = cfg;
    this.#client = req.client;
    this.#path = req.path;
    this.#mode = req.mode;
    this.#requested = new Map(req.options);
    this.#onDone = onDone;
    this.#packetSets = cfg.packets ?? sharedPacketSets;
  }

  /** Runs the transfer to its end; a crash is logged and reported as a failed transfer. */
  run(): void {
    this.#run().catch((err: unknown) => {
      this.#cfg.logger.error('tftp transfer crashed', { client: this.#client, err });
      this.#fail(`internal error: ${(err as Error)?.message ?? err}`, true);
    });
  }

  async #run(): Promise<void> {
    const log = this.#cfg.logger;
    try {
      this.#file = (await this.#cfg.source.open(this.#path, this.#client)) ?? undefined;
    } catch (err) {
      if (err instanceof TftpError) {
        this.#cfg.meter.request('refused');
        return this.#finishEarly(err.code, err.message);
      }
      log.error('tftp source failed', { path: this.#path, err });
      this.#cfg.meter.request('error');
      return this.#finishEarly(ERROR_CODE.NOT_DEFINED, 'internal error');
    }
    if (this.#state === 'done') {
      await this.#file?.close();
      return;
    }
    if (!this.#file) {
      this.#cfg.meter.request('not-found');
      return this.#finishEarly(ERROR_CODE.FILE_NOT_FOUND, 'file not found');
    }
    this.#cfg.meter.request('accepted');
    const size = this.#file.size;
    this.#neg = negotiate(this.#requested, size, {
      maxBlksize: this.#cfg.maxBlksize,
      maxWindowsize: this.#cfg.maxWindowsize,
      maxWindowBytes: this.#cfg.maxWindowBytes,
    });
    this.#total = blockCount(size, this.#neg.blksize);
    const bytes = this.#file.bytes;
    if (bytes) this.#packets = this.#packetSets.acquire(bytes, this.#neg.blksize);
    this.#rto = this.#timeoutMs;
    if (this.#mode === 'netascii') log.debug('tftp netascii served as octet', { path: this.#path });

    try {
      const socket = createSocket({ type: isIPv6(this.#client.address) ? 'udp6' : 'udp4' });
      this.#socket = socket;
      socket.on('error', (err) => {
        // ECONNREFUSED: the client's port is closed (it gave up or finished); anything else is fatal too.
        this.#fail(`socket: ${(err as NodeJS.ErrnoException).code ?? err.message}`, false);
      });
      socket.on('message', (msg) => this.#onPacket(msg));
      const bound = once(socket, 'listening');
      socket.bind({ address: this.#cfg.address, port: 0 });
      await bound;
      const connected = once(socket, 'connect');
      socket.connect(this.#client.port, this.#client.address);
      await connected;
    } catch (err) {
      this.#fail(`socket setup: ${(err as Error).message}`, false);
      return;
    }
    if (this.#state !== 'opening') return; // aborted meanwhile

    if (this.#neg.oack.size > 0) {
      this.#state = 'oack';
      this.#oack = encodeOack(this.#neg.oack);
      this.#send(this.#oack);
      this.#sentAt = performance.now();
      this.#arm();
    } else {
      this.#state = 'data';
      this.#pump();
    }
  }

  /** Ends the transfer from outside (server stop). */
  abort(reason: string): Promise<void> {
    this.#fail(reason, true);
    return this.#donePromise;
  }

  get #timeoutMs(): number {
    return this.#neg.timeoutMs ?? this.#cfg.timeoutMs;
  }

  /** No per-packet callback (it costs a tick per DATA): send errors arrive as the socket's 'error' event. */
  #send(buf: Uint8Array | Uint8Array[]): void {
    this.#socket?.send(buf);
  }

  /**
   * (Re)starts the retransmission timeout. Only a time is stored per packet: the one timer of a transfer
   * runs on, and when it fires before the timeout is due (an ACK moved it since), it is set for the rest
   * (#onTimer). Refreshing a timer on every ACK (libuv's clock read, list moves) was a tenth of the JS a
   * lock-step block cost.
   */
  #arm(now = performance.now()): void {
    this.#armedAt = now;
    if (this.#timer && this.#timerMs <= this.#rto) return;
    clearTimeout(this.#timer); // none yet, or the timeout shrank: one set for the new one
    this.#timerMs = this.#rto;
    this.#timer = setTimeout(() => this.#onTimer(), this.#rto);
  }

  #onTimer(): void {
    this.#timer = undefined;
    const left = this.#armedAt + this.#rto - performance.now();
    if (left >= 1) {
      this.#timerMs = left;
      this.#timer = setTimeout(() => this.#onTimer(), left);
      return;
    }
    this.#onTimeout();
  }

  /** A round trip measured on a window (or the OACK) sent once: updates the timeout (RFC 6298, 2.2–2.3). */
  #sample(rtt: number): void {
    this.#sentAt = undefined;
    if (this.#neg.timeoutMs !== undefined) return; // the client chose the timeout
    if (this.#srtt === undefined) {
      this.#srtt = rtt;
      this.#rttvar = rtt / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - rtt);
      this.#srtt = 0.875 * this.#srtt + 0.125 * rtt;
    }
    const rto = Math.round(this.#srtt + 4 * this.#rttvar);
    this.#rto = Math.min(Math.max(rto, this.#cfg.minTimeoutMs), this.#cfg.timeoutMs);
  }

  #onTimeout(): void {
    if (this.#state === 'done') return;
    // Backing off from a short adaptive timeout is free; only timeouts at the full one count as retries.
    if (this.#rto >= this.#timeoutMs && ++this.#retries > this.#cfg.retries) {
      this.#fail(`timeout after ${this.#cfg.retries} retries`, true);
      return;
    }
    this.#rto = Math.min(this.#rto * 2, this.#timeoutMs);
    this.#sentAt = undefined; // Karn: the ACK of a resent window says nothing about the round trip
    if (this.#state === 'oack' && this.#oack) {
      this.#retransmits++;
      this.#cfg.meter.retransmitted(1);
      this.#send(this.#oack);
      this.#arm();
    } else if (this.#state === 'data') {
      if (this.#pumping) {
        this.#arm(); // the next window is being read; it is sent (and the timer re-armed) when ready
        return;
      }
      const n = this.#sendRange(this.#acked + 1, this.#sentTo);
      this.#retransmits += n;
      this.#cfg.meter.retransmitted(n);
      this.#arm();
    }
  }

  #onPacket(msg: Buffer): void {
    if (this.#state === 'done') return;
    const block = ackBlock(msg);
    if (block < 0) {
      this.#onOther(msg);
      return;
    }
    if (this.#state === 'oack') {
      if (block !== 0) {
        this.#cfg.meter.unexpected('ack');
        return;
      }
      if (this.#sentAt !== undefined) this.#sample(performance.now() - this.#sentAt);
      this.#state = 'data';
      this.#retries = 0;
      this.#pump();
      return;
    }
    if (this.#state !== 'data') return;
    // Map the 16-bit block number onto the absolute counter: only acked .. sentTo are meaningful.
    const abs = this.#acked + ((block - (this.#acked & 0xffff)) & 0xffff);
    if (abs <= this.#acked || abs > this.#sentTo) {
      this.#cfg.meter.duplicateAck(); // never answered: a duplicate ACK must not cause a send (Sorcerer's Apprentice)
      return;
    }
    // One clock read per ACK: the round trip ends, and the next window's starts, now.
    const now = performance.now();
    if (abs === this.#sentTo && this.#sentAt !== undefined) this.#sample(now - this.#sentAt);
    this.#acked = abs;
    this.#retries = 0;
    if (abs === this.#total) {
      this.#finish();
      return;
    }
    // Either the whole window arrived (abs === sentTo) or the client lost abs+1: send a window from abs+1.
    this.#pump(now);
  }

  /** Anything on the transfer's socket but an ACK: malformed (counted), the client's ERROR, or unexpected. */
  #onOther(msg: Buffer): void {
    let p: Packet;
    try {
      p = decode(msg);
    } catch (err) {
      this.#cfg.meter.malformed(err instanceof TftpDecodeError ? err.reason : 'internal');
      return;
    }
    if (p.type === 'error') this.#fail(`client error ${p.code}: ${p.message}`, false);
    else this.#cfg.meter.unexpected(packetLabel(p));
  }

  /** Sends the window starting at acked+1, reading it first unless the read-ahead buffer holds it. */
  #pump(now = performance.now()): void {
    if (this.#pumping || this.#state !== 'data') return;
    const from = this.#acked + 1;
    if (this.#holds(from, this.#windowEnd(from))) {
      this.#sendRange(from, this.#windowEnd(from)); // hot path: no I/O, no promise
      this.#sentAt = now;
      this.#arm(now);
      return;
    }
    this.#arm(); // also bounds a source whose read hangs: each timeout while reading counts as a retry
    this.#pumping = (async () => {
      try {
        for (;;) {
          const start = this.#acked + 1;
          await this.#fill(start);
          if (this.#state !== 'data') return;
          if (this.#acked + 1 === start) break; // else an ACK moved the window while we read: read again
        }
        this.#sendRange(this.#acked + 1, this.#windowEnd(this.#acked + 1));
        this.#sentAt = performance.now();
        this.#arm();
      } catch (err) {
        this.#cfg.logger.error('tftp read failed', { path: this.#path, err });
        this.#fail(`read: ${(err as Error).message}`, true, 'read error');
      } finally {
        this.#pumping = undefined;
      }
    })();
  }

  #windowEnd(from: number): number {
    return Math.min(from + this.#neg.windowsize - 1, this.#total);
  }

  #holds(from: number, to: number): boolean {
    if (this.#packets) return true;
    return this.#win !== undefined && from >= this.#winStart && to < this.#winStart + this.#winBlocks;
  }

  /**
   * Fills a buffer with blocks from .. from+span-1 (as far as the file goes) in one positional read. The
   * span is the window, or 64 KiB worth of blocks if that is more (read-ahead: windowsize 1 at blksize 512
   * would otherwise cost one read per packet).
   */
  async #fill(from: number): Promise<void> {
    const { blksize } = this.#neg;
    const span = this.#span;
    const count = Math.min(span, this.#total - from + 1);
    // Never refill a buffer that sends still queued in libuv point into (only when the kernel's send buffer
    // was full): then take a fresh one and let the old one go with its sends.
    const queued = (this.#socket?.getSendQueueCount() ?? 0) > 0;
    const bytes = span * (4 + blksize);
    const buf = this.#win && !queued && this.#win.length === bytes ? this.#win : Buffer.allocUnsafe(bytes);
    this.#win = undefined;
    const size = this.#file!.size;
    const pos = (from - 1) * blksize;
    const len = Math.max(0, Math.min(count * blksize, size - pos));
    const dataStart = 4 * span;
    const got = len === 0 ? 0 : await this.#file!.read(buf.subarray(dataStart, dataStart + len), pos);
    if (got !== len) throw new Error(`short read at ${pos}: ${got} of ${len} bytes (file changed?)`);
    for (let i = 0; i < count; i++) writeDataHeader(buf.subarray(4 * i, 4 * i + 4), from + i);
    this.#win = buf;
    this.#winStart = from;
    this.#winBlocks = count;
  }

  get #span(): number {
    const { blksize, windowsize } = this.#neg;
    return Math.max(windowsize, Math.floor(READ_AHEAD_BYTES / blksize));
  }

  /** Sends blocks from .. to (ready-made, or held in `#win`); returns how many were sent. */
  #sendRange(from: number, to: number): number {
    const packets = this.#packets?.packets;
    if (packets) {
      for (let k = from; k <= to; k++) this.#send(packets[k - 1]!);
      this.#sentTo = to;
      return to - from + 1;
    }
    const buf = this.#win;
    if (!buf || !this.#holds(from, to)) return 0;
    const { blksize } = this.#neg;
    const { size } = this.#file!;
    const dataStart = 4 * this.#span;
    for (let k = from; k <= to; k++) {
      const i = k - this.#winStart;
      const len = Math.max(0, Math.min(blksize, size - (k - 1) * blksize));
      const at = dataStart + i * blksize;
      this.#send([buf.subarray(4 * i, 4 * i + 4), buf.subarray(at, at + len)]);
    }
    this.#sentTo = to;
    return to - from + 1;
  }

  #finishEarly(code: number, message: string): void {
    this.#state = 'done';
    // Request-level errors come from a fresh socket like a normal first packet would (clients take the TID
    // of whatever answers first); a throwaway socket keeps the listener free of per-request state.
    const s = createSocket({ type: isIPv6(this.#client.address) ? 'udp6' : 'udp4' });
    s.on('error', () => s.close());
    s.bind({ address: this.#cfg.address, port: 0 }, () => {
      s.send(encodeError(code, message), this.#client.port, this.#client.address, () => s.close());
    });
    this.#report(false, `error ${code}: ${message}`);
  }

  #finish(): void {
    this.#state = 'done';
    void this.#cleanup().then(() => this.#report(true));
  }

  #fail(reason: string, tellClient: boolean, clientMessage?: string): void {
    if (this.#state === 'done') return;
    const wasOpening = this.#state === 'opening';
    if (tellClient && this.#socket && !wasOpening) {
      this.#socket.send(encodeError(ERROR_CODE.NOT_DEFINED, clientMessage ?? reason));
    }
    this.#state = 'done';
    void this.#cleanup().then(() => this.#report(false, reason));
  }

  async #cleanup(): Promise<void> {
    clearTimeout(this.#timer);
    const s = this.#socket;
    this.#socket = undefined;
    if (s) {
      // close() after pending sends (the error packet) are handed to the kernel
      await new Promise<void>((r) => setImmediate(r));
      try {
        s.close();
      } catch {
        // already closed
      }
    }
    if (this.#pumping) await this.#pumping.catch(() => {});
    if (this.#packets) this.#packetSets.release(this.#packets);
    this.#packets = undefined;
    try {
      await this.#file?.close();
    } catch (err) {
      this.#cfg.logger.warn('tftp close failed', { path: this.#path, err });
    }
  }

  #report(ok: boolean, error?: string): void {
    const size = this.#file?.size;
    const bytes = ok ? (size ?? 0) : Math.min(this.#acked * this.#neg.blksize, size ?? 0);
    const s: TransferSummary = {
      client: this.#client,
      path: this.#path,
      mode: this.#mode,
      bytes,
      size,
      blksize: this.#neg.blksize,
      windowsize: this.#neg.windowsize,
      durationMs: Math.round((performance.now() - this.#started) * 1000) / 1000,
      ok,
      retransmits: this.#retransmits,
    };
    if (this.#srtt !== undefined) s.srttMs = Math.round(this.#srtt * 1000) / 1000;
    if (error !== undefined) s.error = error;
    this.#onDone(s);
    this.#doneResolve?.();
  }
}
