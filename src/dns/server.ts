/**
 * The DNS worker: an authoritative server for Strata's zones on UDP and TCP (same address and port),
 * forwarding other names upstream when configured and refusing them otherwise.
 *
 * Per packet: decode (dns-packet), answer from the `DnsRecordSource` (Map lookups on a pre-built
 * snapshot), encode. Malformed datagrams and frames are dropped and counted, never fatal; UDP answers
 * that exceed 512 bytes (or the client's EDNS size) go out truncated with TC so the client retries on TCP.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6, createServer as netServer, type Server, type Socket as TcpSocket } from 'node:net';
import { type Logger, silentLogger } from '../core/log.ts';
import { counter } from '../core/metrics.ts';
import { answerQuery } from './authority.ts';
import {
  DEFAULT_EDNS_UDP_SIZE,
  decodeQuery,
  ednsOf,
  encodeResponse,
  FLAG_RA,
  frameTcp,
  optRecord,
  RCODE,
  responseFor,
  TcpDeframer,
  udpLimitFor,
} from './codec.ts';
import { Forwarder, type Upstream } from './forwarder.ts';
import type { DnsRecordSource } from './zone.ts';

export interface DnsServerOptions {
  source: DnsRecordSource;
  /** Listen address, default `0.0.0.0`. */
  address?: string;
  /** UDP and TCP port, default 53; 0 picks one free port for both. */
  port?: number;
  /** Forward names outside our zones; when absent they are REFUSED. */
  forward?: { upstreams: Upstream[]; timeoutMs?: number; maxPending?: number };
  /** EDNS UDP payload size we advertise and honour at most, default 1232. */
  maxUdpSize?: number;
  /** Idle TCP connections are closed after this, default 10 s. */
  tcpIdleMs?: number;
  /** Concurrent TCP connections, default 256. */
  maxTcpConnections?: number;
  logger?: Logger;
}

export type Transport = 'udp' | 'tcp';

const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
const queries = counter('strata_dns_queries_total', 'DNS queries answered, by transport and rcode', [
  'transport',
  'rcode',
]);
const malformed = counter('strata_dns_malformed_total', 'DNS messages dropped as malformed', [
  'transport',
  'reason',
]);
const truncatedTotal = counter('strata_dns_truncated_total', 'UDP answers sent truncated (TC bit)');

export class DnsServer {
  private readonly opts: DnsServerOptions;
  private readonly log: Logger;
  private readonly maxUdp: number;
  private readonly forwarder: Forwarder | undefined;
  private udp: Socket | undefined;
  private tcp: Server | undefined;
  private readonly tcpConns = new Set<TcpSocket>();
  private boundPort = 0;

  constructor(opts: DnsServerOptions) {
    this.opts = opts;
    this.log = opts.logger ?? silentLogger;
    this.maxUdp = opts.maxUdpSize ?? DEFAULT_EDNS_UDP_SIZE;
    this.forwarder = opts.forward ? new Forwarder({ ...opts.forward, logger: this.log }) : undefined;
  }

  /** The bound port (after start). */
  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<{ address: string; port: number }> {
    const address = this.opts.address ?? '0.0.0.0';
    const wanted = this.opts.port ?? 53;
    await this.forwarder?.start();
    for (let attempt = 0; ; attempt++) {
      const udp = await this.bindUdp(address, wanted);
      const port = udp.address().port;
      try {
        this.tcp = await this.listenTcp(address, port);
        this.udp = udp;
        this.boundPort = port;
        break;
      } catch (err) {
        udp.close();
        // With port 0 the free UDP port may be taken for TCP: pick another.
        if (wanted !== 0 || attempt >= 20) throw err;
      }
    }
    this.log.info('dns listening', { address, port: this.boundPort, forwarding: !!this.forwarder });
    return { address, port: this.boundPort };
  }

  async stop(): Promise<void> {
    this.forwarder?.stop();
    for (const c of this.tcpConns) c.destroy();
    this.tcpConns.clear();
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    await Promise.all([
      udp ? new Promise<void>((r) => udp.close(() => r())) : undefined,
      tcp ? new Promise<void>((r) => tcp.close(() => r())) : undefined,
    ]);
  }

  /**
   * Answers one message. Returns the encoded answer, or undefined when the message is dropped.
   * Exposed for tests and for other transports; never throws.
   */
  async handle(msg: Buffer, transport: Transport): Promise<Buffer | undefined> {
    const decoded = decodeQuery(msg);
    if (!decoded.ok) {
      malformed.inc({ transport, reason: decoded.reason });
      return undefined;
    }
    const query = decoded.query;
    const ra = this.forwarder ? FLAG_RA : 0;
    const udpLimit = transport === 'udp' ? udpLimitFor(query, this.maxUdp) : undefined;
    const limits = udpLimit === undefined ? {} : { udpLimit };
    try {
      const opt = ednsOf(query);
      if (opt && opt.ednsVersion !== 0) {
        // BADVERS (extended rcode 16 = 1 << 4 | 0).
        const packet = responseFor(query, 0, ra);
        packet.additionals = [optRecord(this.maxUdp, 1)];
        queries.inc({ transport, rcode: 'BADVERS' });
        return encodeResponse(packet, limits).buf;
      }
      const res = answerQuery(this.opts.source, query, { recursionAvailable: !!this.forwarder });
      if (res.kind === 'outside') {
        const q = query.questions![0]!;
        if (this.forwarder) {
          const answer = await this.forwarder.forward(msg, q.name, q.type);
          if (answer) {
            queries.inc({ transport, rcode: 'FORWARDED' });
            return answer;
          }
          return this.errorAnswer(query, RCODE.SERVFAIL, ra, transport, opt !== undefined, limits);
        }
        return this.errorAnswer(query, RCODE.REFUSED, ra, transport, opt !== undefined, limits);
      }
      if (opt) res.packet.additionals = [...(res.packet.additionals ?? []), optRecord(this.maxUdp)];
      const { buf, truncated } = encodeResponse(res.packet, limits);
      if (truncated) truncatedTotal.inc();
      queries.inc({ transport, rcode: RCODE_NAMES[res.rcode] ?? String(res.rcode) });
      return buf;
    } catch (err) {
      this.log.error('dns answer failed', { err });
      try {
        return this.errorAnswer(query, RCODE.SERVFAIL, ra, transport, false, limits);
      } catch {
        return undefined;
      }
    }
  }

  private errorAnswer(
    query: Parameters<typeof responseFor>[0],
    rcode: number,
    ra: number,
    transport: Transport,
    edns: boolean,
    limits: { udpLimit?: number },
  ): Buffer {
    const packet = responseFor(query, rcode, ra);
    if (edns) packet.additionals = [optRecord(this.maxUdp)];
    queries.inc({ transport, rcode: RCODE_NAMES[rcode] ?? String(rcode) });
    return encodeResponse(packet, limits).buf;
  }

  private bindUdp(address: string, port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4' });
      s.once('error', reject);
      s.bind(port, address, () => {
        s.off('error', reject);
        s.on('error', (err) => this.log.warn('dns udp socket error', { err }));
        s.on('message', (msg, rinfo) => this.onUdp(s, msg, rinfo));
        resolve(s);
      });
    });
  }

  private onUdp(s: Socket, msg: Buffer, rinfo: RemoteInfo): void {
    this.handle(msg, 'udp').then((answer) => {
      if (answer && this.udp === s) s.send(answer, rinfo.port, rinfo.address);
    });
  }

  private listenTcp(address: string, port: number): Promise<Server> {
    return new Promise((resolve, reject) => {
      const srv = netServer((sock) => this.onTcp(sock));
      srv.once('error', reject);
      srv.listen(port, address, () => {
        srv.off('error', reject);
        srv.on('error', (err) => this.log.warn('dns tcp server error', { err }));
        resolve(srv);
      });
    });
  }

  private onTcp(sock: TcpSocket): void {
    if (this.tcpConns.size >= (this.opts.maxTcpConnections ?? 256)) {
      sock.destroy();
      return;
    }
    this.tcpConns.add(sock);
    sock.setNoDelay(true);
    sock.setTimeout(this.opts.tcpIdleMs ?? 10_000, () => sock.destroy());
    sock.on('close', () => this.tcpConns.delete(sock));
    sock.on('error', () => sock.destroy());
    const deframer = new TcpDeframer();
    sock.on('data', (chunk: Buffer) => {
      for (const msg of deframer.push(chunk)) {
        this.handle(msg, 'tcp').then((answer) => {
          if (answer && !sock.destroyed && sock.writable) sock.write(frameTcp(answer));
        });
      }
    });
  }
}

/** Creates a server; call `start()` to bind. */
export function createDnsServer(opts: DnsServerOptions): DnsServer {
  return new DnsServer(opts);
}
