/**
 * Forwards queries for names outside our zones to upstream resolvers over UDP.
 *
 * The client's query bytes go upstream unchanged except for the message id, which is replaced by a
 * fresh random id (so concurrent clients that chose the same id cannot collide and answers cannot be
 * guessed); the upstream's answer goes back with the client's id restored. An answer is accepted only
 * from the upstream it was sent to, for a pending id, with the same question. Upstreams are tried in
 * order, each for `timeoutMs`; when all fail the caller answers SERVFAIL.
 */
import { randomInt } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import dnsPacket from 'dns-packet';
import { type Logger, silentLogger } from '../core/log.ts';
import { counter } from '../core/metrics.ts';
import { normalizeName } from './zone.ts';

export interface Upstream {
  address: string;
  /** Default 53. */
  port?: number;
}

export interface ForwarderOptions {
  upstreams: Upstream[];
  /** Per-upstream wait, default 2000 ms. */
  timeoutMs?: number;
  /** Cap on queries in flight; beyond it queries fail at once. Default 4096. */
  maxPending?: number;
  logger?: Logger;
}

interface Pending {
  clientId: number;
  query: Buffer;
  qname: string;
  qtype: string;
  upstreamIndex: number;
  upstream: Required<Upstream>;
  timer: NodeJS.Timeout;
  done: (answer: Buffer | undefined) => void;
}

const forwarded = counter('strata_dns_forward_total', 'DNS queries forwarded upstream, by outcome', [
  'outcome',
]);
const badUpstream = counter(
  'strata_dns_forward_rejected_answers_total',
  'Upstream datagrams dropped: unknown id, wrong source, mismatched question or undecodable',
);

export class Forwarder {
  private readonly upstreams: Required<Upstream>[];
  private readonly timeoutMs: number;
  private readonly maxPending: number;
  private readonly log: Logger;
  private readonly pending = new Map<number, Pending>();
  private sock4: Socket | undefined;
  private sock6: Socket | undefined;

  constructor(opts: ForwarderOptions) {
    if (opts.upstreams.length === 0) throw new Error('forwarder needs at least one upstream');
    this.upstreams = opts.upstreams.map((u) => ({ address: u.address, port: u.port ?? 53 }));
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.maxPending = opts.maxPending ?? 4096;
    this.log = opts.logger ?? silentLogger;
  }

  async start(): Promise<void> {
    const needs6 = this.upstreams.some((u) => isIPv6(u.address));
    const needs4 = this.upstreams.some((u) => !isIPv6(u.address));
    if (needs4) this.sock4 = await this.open('udp4');
    if (needs6) this.sock6 = await this.open('udp6');
  }

  stop(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.done(undefined);
    }
    this.pending.clear();
    this.sock4?.close();
    this.sock6?.close();
    this.sock4 = undefined;
    this.sock6 = undefined;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends `query` (raw bytes of a decoded, valid query) upstream. Resolves with the answer bytes
   * carrying the client's id, or undefined when every upstream failed or timed out.
   */
  forward(query: Buffer, qname: string, qtype: string): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      if (this.pending.size >= this.maxPending || (!this.sock4 && !this.sock6)) {
        forwarded.inc({ outcome: 'overload' });
        resolve(undefined);
        return;
      }
      const p: Pending = {
        clientId: query.readUInt16BE(0),
        query: Buffer.from(query),
        qname: normalizeName(qname),
        qtype,
        upstreamIndex: 0,
        upstream: this.upstreams[0]!,
        timer: undefined as unknown as NodeJS.Timeout,
        done: resolve,
      };
      this.send(p);
    });
  }

  private freshId(): number {
    for (;;) {
      const id = randomInt(65536);
      if (!this.pending.has(id)) return id;
    }
  }

  private send(p: Pending): void {
    const id = this.freshId();
    p.query.writeUInt16BE(id, 0);
    p.upstream = this.upstreams[p.upstreamIndex]!;
    this.pending.set(id, p);
    p.timer = setTimeout(() => this.retry(id, 'timeout'), this.timeoutMs);
    const sock = isIPv6(p.upstream.address) ? this.sock6 : this.sock4;
    sock!.send(p.query, p.upstream.port, p.upstream.address, (err) => {
      if (err) this.retry(id, 'send-error');
    });
  }

  private retry(id: number, why: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(id);
    this.log.debug('upstream failed', { upstream: `${p.upstream.address}:${p.upstream.port}`, why });
    p.upstreamIndex++;
    if (p.upstreamIndex < this.upstreams.length) {
      this.send(p);
      return;
    }
    forwarded.inc({ outcome: why });
    p.done(undefined);
  }

  private onMessage(msg: Buffer, rinfo: { address: string; port: number }): void {
    if (msg.length < 12) return void badUpstream.inc();
    const p = this.pending.get(msg.readUInt16BE(0));
    if (!p || rinfo.port !== p.upstream.port || !sameAddress(rinfo.address, p.upstream.address)) {
      return void badUpstream.inc();
    }
    try {
      const decoded = dnsPacket.decode(msg);
      const q = decoded.questions?.[0];
      if (decoded.type !== 'response' || !q || normalizeName(q.name) !== p.qname || q.type !== p.qtype) {
        return void badUpstream.inc();
      }
    } catch {
      return void badUpstream.inc();
    }
    clearTimeout(p.timer);
    this.pending.delete(msg.readUInt16BE(0));
    msg.writeUInt16BE(p.clientId, 0);
    forwarded.inc({ outcome: 'answered' });
    p.done(msg);
  }

  private open(type: 'udp4' | 'udp6'): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = createSocket(type);
      s.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
      s.once('error', reject);
      s.bind(0, () => {
        s.off('error', reject);
        s.on('error', (err) => this.log.warn('forwarder socket error', { err }));
        resolve(s);
      });
    });
  }
}

function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  // An IPv4 upstream seen through a dual-stack socket.
  return a === `::ffff:${b}` || b === `::ffff:${a}`;
}
