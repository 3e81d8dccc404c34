/**
 * The DHCPv4 worker of one network segment: full mode (pools, reservations, leases, renew/rebind,
 * release, decline, INIT-REBOOT, relays) or proxy mode (answers only the PXE part next to another DHCP
 * server, on port 67 and on the PXE boot server port 4011, like pixiecore). What a machine boots is
 * decided behind one seam, the injected {@link BootPolicy}; leases go through {@link LeaseBackend};
 * every exchange is summarised to a {@link DhcpObserver}.
 *
 * Sockets. Node's dgram can neither bind to one interface (no SO_BINDTODEVICE) nor tell on which
 * interface a datagram arrived (no IP_PKTINFO). So a worker serves exactly one segment by running inside
 * that segment's own network namespace, binding 0.0.0.0:67 (broadcasts only reach a wildcard bind) with
 * SO_BROADCAST; the namespace is what confines it. The namespace needs a route for 255.255.255.255 (a
 * default route, or `ip route add 255.255.255.255 dev IFACE`). Replies (RFC 2131 4.1): relayed → giaddr
 * port 67; client with an address (ciaddr) → unicast to it; otherwise broadcast to 255.255.255.255:68
 * (we cannot write the ARP entry that a unicast to a yet-unconfigured client needs); PXE port requests →
 * back to the source address and port. Starting a real socket asserts we are not in the machine's own
 * namespace (see guard.ts): an offer escaping onto a shared LAN is an incident.
 *
 * Hot path: decode makes views, not copies; reply options that depend only on the network are encoded
 * once; the only per-reply buffer is the reply itself; persistence is batched off the packet path (an
 * ACK waits for its batch, the loop does not). Malformed packets are dropped and counted, never thrown.
 */

import type { Logger } from '../core/log.ts';
import { silentLogger } from '../core/log.ts';
import { counter } from '../core/metrics.ts';
import {
  BOOTREPLY,
  BOOTREQUEST,
  DhcpDecodeError,
  type DhcpPacket,
  decode,
  encode,
  FLAG_BROADCAST,
  getIpOption,
  getMessageType,
  intToIp,
  ipBytes,
  ipListBytes,
  ipToInt,
  MessageType,
  type MessageTypeName,
  macToString,
  messageTypeName,
  Opt,
  type OptionList,
  strBytes,
  u32Bytes,
} from './codec.ts';
import { LeaseStore, Pool } from './leases.ts';
import { clientInfo } from './pxe.ts';
import type {
  BootDecision,
  BootPolicy,
  ClientInfo,
  DhcpNetworkConfig,
  DhcpObserver,
  DhcpServerConfig,
  ExchangeEvent,
  LeaseBackend,
} from './types.ts';

export interface RemoteInfo {
  address: string;
  port: number;
}

/** How the server reaches the wire; the UDP one is in transport.ts, tests use a fake. */
export interface DhcpTransport {
  /** Binds the given ports and delivers datagrams with the local port they arrived on. */
  start(
    ports: number[],
    onMessage: (msg: Buffer, from: RemoteInfo, localPort: number) => void,
  ): Promise<void>;
  send(buf: Buffer, address: string, port: number, fromPort: number): void;
  close(): Promise<void>;
}

export interface DhcpServerDeps {
  leases: LeaseBackend;
  policy: BootPolicy;
  transport: DhcpTransport;
  observer?: DhcpObserver;
  logger?: Logger;
  now?: () => number;
}

/** Plain counters of this instance (the Prometheus ones are process-wide). */
export interface DhcpStats {
  received: number;
  malformed: number;
  dropped: number;
  replies: number;
  offers: number;
  acks: number;
  naks: number;
  persistBatches: number;
  persistErrors: number;
}

const mPackets = counter('strata_dhcp_packets_total', 'DHCP requests received, by message type', ['type']);
const mMalformed = counter('strata_dhcp_malformed_total', 'Malformed DHCP packets dropped', ['reason']);
const mDropped = counter('strata_dhcp_dropped_total', 'DHCP requests not answered, by reason', ['reason']);
const mReplies = counter('strata_dhcp_replies_total', 'DHCP replies sent, by type', ['type']);
const mExhausted = counter(
  'strata_dhcp_pool_exhausted_total',
  'DISCOVERs left unanswered because no address was free, not even a held offer to reclaim',
  ['network'],
);
const mReclaimed = counter(
  'strata_dhcp_offers_reclaimed_total',
  'Held offers given to another client because the pool ran short',
  ['network'],
);
const mBatches = counter('strata_dhcp_lease_batches_total', 'Lease persistence batches written');
const mBatchLeases = counter('strata_dhcp_lease_batch_leases_total', 'Leases written in batches');
const mPersistErr = counter('strata_dhcp_lease_persist_errors_total', 'Lease batch writes that failed');

const TYPE_OPT: Uint8Array[] = [];
for (let t = 0; t <= 8; t++) TYPE_OPT.push(Uint8Array.of(t));
const PXE_CLIENT = strBytes('PXEClient');
const HTTP_CLIENT = strBytes('HTTPClient');
/** Option 43 for PXEClient: PXE_DISCOVERY_CONTROL (6) = 8: skip discovery, boot the file given. */
const PXE_VENDOR = Uint8Array.of(6, 1, 8, 255);

interface NetOptions {
  pool: Pool;
  /** 1, 3, 6, 15 (network-wide), 51, 58, 59. */
  common: OptionList;
}

type Reply = 'OFFER' | 'ACK' | 'NAK';

export class DhcpServer {
  readonly config: DhcpServerConfig;
  readonly store: LeaseStore;
  readonly stats: DhcpStats = {
    received: 0,
    malformed: 0,
    dropped: 0,
    replies: 0,
    offers: 0,
    acks: 0,
    naks: 0,
    persistBatches: 0,
    persistErrors: 0,
  };
  private readonly deps: DhcpServerDeps;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly serverIp: number;
  private readonly serverIdOpt: Uint8Array;
  private readonly dhcpPort: number;
  private readonly pxePort: number;
  private readonly clientPort: number;
  private readonly local: NetOptions | undefined;
  private readonly nets: NetOptions[] = [];
  private readonly hold: number;
  private readonly quarantine: number;
  private readonly authoritative: boolean;
  private readonly mPacketsByType = new Map<number, ReturnType<typeof mPackets.labels>>();
  private started = false;
  private stopping = false;

  constructor(config: DhcpServerConfig, deps: DhcpServerDeps) {
    this.config = config;
    this.deps = deps;
    this.log = deps.logger ?? silentLogger;
    this.now = deps.now ?? Date.now;
    this.serverIp = ipToInt(config.serverIp);
    this.serverIdOpt = ipBytes(this.serverIp);
    this.dhcpPort = config.ports?.dhcp ?? 67;
    this.pxePort = config.ports?.pxe ?? 4011;
    this.clientPort = config.ports?.client ?? 68;
    this.hold = config.offerHoldTime ?? 30;
    this.quarantine = config.declineQuarantine ?? 600;
    this.authoritative = config.authoritative ?? true;
    const netConfigs: DhcpNetworkConfig[] = [];
    if (config.mode === 'full') {
      if (!config.subnet || !config.ranges) throw new Error('full mode needs subnet and ranges');
      const local: DhcpNetworkConfig = {
        name: config.name ?? 'default',
        subnet: config.subnet,
        ranges: config.ranges,
      };
      if (config.gateway) local.gateway = config.gateway;
      if (config.dnsServers) local.dnsServers = config.dnsServers;
      if (config.domain) local.domain = config.domain;
      if (config.leaseTime) local.leaseTime = config.leaseTime;
      if (config.reservations) local.reservations = config.reservations;
      netConfigs.push(local, ...(config.relayNetworks ?? []));
    }
    const pools = netConfigs.map((c) => new Pool(c, this.serverIp));
    for (const pool of pools) this.nets.push({ pool, common: commonOptions(pool) });
    this.local = this.nets[0];
    this.store = new LeaseStore(pools, deps.leases, {
      now: this.now,
      onBatch: (n) => {
        this.stats.persistBatches++;
        mBatches.inc();
        mBatchLeases.inc(n);
      },
      onPersistError: (err, n) => {
        this.stats.persistErrors++;
        mPersistErr.inc();
        this.log.error('lease batch write failed; will retry', { err, leases: n });
      },
    });
  }

  /** Loads leases, then binds the sockets. */
  async start(): Promise<void> {
    const loaded = await this.store.load();
    const ports = [this.dhcpPort];
    if (this.config.mode === 'proxy' && this.pxePort) ports.push(this.pxePort);
    await this.deps.transport.start(ports, (msg, from, port) => this.handle(msg, from, port));
    this.started = true;
    this.log.info('dhcp worker started', { mode: this.config.mode, ports, leases: loaded });
  }

  /**
   * Stops answering, gives the lease batch in flight up to `drainMs` to land (so the ACKs waiting on it
   * still go out), then closes the sockets. Bounded: a manager that cannot take the batch does not keep
   * the segment's port.
   */
  async stop(drainMs = 2000): Promise<void> {
    this.stopping = true;
    await this.store.close(drainMs);
    if (this.started) await this.deps.transport.close();
    this.started = false;
  }

  /** Entry point for one datagram. Never throws. */
  handle(msg: Buffer, from: RemoteInfo, localPort: number): void {
    if (this.stopping) return;
    this.stats.received++;
    let p: DhcpPacket;
    try {
      p = decode(msg);
    } catch (e) {
      this.stats.malformed++;
      mMalformed.inc({ reason: e instanceof DhcpDecodeError ? e.reason : 'other' });
      return;
    }
    try {
      const r = this.dispatch(p, from, localPort);
      if (r) r.catch((e: unknown) => this.internalError(e));
    } catch (e) {
      this.internalError(e);
    }
  }

  private internalError(e: unknown): void {
    this.drop('internal-error');
    this.log.error('dhcp request failed', { err: e });
  }

  private drop(reason: string): void {
    this.stats.dropped++;
    mDropped.inc({ reason });
  }

  private countType(t: number): void {
    let c = this.mPacketsByType.get(t);
    if (!c) {
      c = mPackets.labels(messageTypeName(t) ?? 'UNKNOWN');
      this.mPacketsByType.set(t, c);
    }
    c.inc();
  }

  private dispatch(p: DhcpPacket, from: RemoteInfo, port: number): Promise<void> | undefined {
    if (p.op !== BOOTREQUEST) return void this.drop('not-request');
    if (p.hlen === 0) return void this.drop('no-chaddr');
    const type = getMessageType(p);
    this.countType(type);
    const typeName = messageTypeName(type);
    if (!typeName || typeName === 'OFFER' || typeName === 'ACK' || typeName === 'NAK') {
      return void this.drop('bad-message-type');
    }
    const mac = macToString(p.chaddr, p.hlen);
    if (port === this.pxePort && port !== this.dhcpPort)
      return void this.pxePortRequest(p, mac, typeName, from);
    if (this.config.mode === 'proxy') return void this.proxyRequest(p, mac, typeName);
    let net: NetOptions | undefined;
    if (p.giaddr !== 0) {
      net = this.nets.find((n) => n.pool.contains(p.giaddr));
      if (!net) return void this.drop('unknown-relay-network');
    } else if (type === MessageType.INFORM && p.ciaddr !== 0) {
      net = this.nets.find((n) => n.pool.contains(p.ciaddr)) ?? this.local;
    } else net = this.local;
    if (!net) return void this.drop('no-network');
    switch (type) {
      case MessageType.DISCOVER:
        return void this.discover(p, mac, net);
      case MessageType.REQUEST:
        return this.request(p, mac, net);
      case MessageType.DECLINE:
        return void this.decline(p, mac, net);
      case MessageType.RELEASE:
        return void this.release(p, mac, net);
      case MessageType.INFORM:
        return void this.inform(p, mac, net);
    }
    return undefined;
  }

  // ------------------------------------------------------------ full mode

  private discover(p: DhcpPacket, mac: string, net: NetOptions): void {
    const { pool } = net;
    const client = clientInfo(p, mac, pool.name);
    const now = this.now();
    let ip = pool.pick(mac, getIpOption(p, Opt.REQUESTED_IP), now);
    let note: string | undefined;
    if (!ip) {
      ip = pool.oldestOffer(mac, now);
      if (ip) {
        note = 'reclaimed-offer';
        mReclaimed.inc({ network: pool.name });
      }
    }
    if (!ip) {
      this.drop('pool-exhausted');
      mExhausted.inc({ network: pool.name });
      this.emit(p, client, 'DISCOVER', null, undefined, undefined, this.dhcpPort, 'pool-exhausted');
      return;
    }
    this.store.offer(pool, mac, ip, this.hold, client.hostname);
    const boot = this.decide(client);
    this.send(p, 'OFFER', ip, net, client, boot);
    this.emit(p, client, 'DISCOVER', 'OFFER', ip, boot, this.dhcpPort, note);
  }

  private acceptable(pool: Pool, mac: string, ip: number): boolean {
    const res = pool.reservations.get(mac);
    if (res && res.ip !== ip) return false;
    return pool.available(ip, mac, this.now());
  }

  private async request(p: DhcpPacket, mac: string, net: NetOptions): Promise<void> {
    const { pool } = net;
    const client = clientInfo(p, mac, pool.name);
    const serverId = getIpOption(p, Opt.SERVER_ID);
    const requested = getIpOption(p, Opt.REQUESTED_IP);
    let ip: number;
    let state: ExchangeEvent['requestState'];
    if (serverId) {
      state = 'selecting';
      // SELECTING: the client answers an offer.
      if (serverId !== this.serverIp) {
        this.store.dropOffer(pool, mac);
        this.emit(p, client, 'REQUEST', null, requested, undefined, this.dhcpPort, 'other-server', state);
        return;
      }
      ip = requested || p.ciaddr;
    } else if (requested && !p.ciaddr) {
      // INIT-REBOOT: the client asks to keep an address it remembers.
      state = 'init-reboot';
      ip = requested;
      if (!pool.contains(ip)) return this.nak(p, client, ip, 'wrong-network', state);
      const known = pool.byMac.get(mac)?.ip === ip || pool.reservations.has(mac);
      if (!known && !this.authoritative) {
        this.emit(p, client, 'REQUEST', null, ip, undefined, this.dhcpPort, 'unknown-client', state);
        return;
      }
    } else if (p.ciaddr) {
      // RENEWING (unicast) or REBINDING (broadcast).
      state = 'renewing';
      ip = p.ciaddr;
      if (!pool.contains(ip)) return this.nak(p, client, ip, 'wrong-network', state);
    } else {
      this.drop('request-without-address');
      return;
    }
    if (!ip || !this.acceptable(pool, mac, ip)) return this.nak(p, client, ip, 'not-available', state);
    const hostname = client.hostname ?? pool.hostnameFor(mac);
    const clientId = p.options.get(Opt.CLIENT_ID);
    try {
      await this.store.bind(pool, mac, ip, pool.leaseTime, hostname, clientId ? hex(clientId) : undefined);
    } catch {
      this.drop('persist-failed');
      this.emit(p, client, 'REQUEST', null, ip, undefined, this.dhcpPort, 'persist-failed', state);
      return;
    }
    const boot = this.decide(client);
    this.send(p, 'ACK', ip, net, client, boot);
    this.emit(p, client, 'REQUEST', 'ACK', ip, boot, this.dhcpPort, undefined, state);
  }

  private nak(
    p: DhcpPacket,
    client: ClientInfo,
    ip: number,
    note: string,
    state: ExchangeEvent['requestState'],
  ): void {
    this.send(p, 'NAK', 0, undefined, client, null);
    this.emit(p, client, 'REQUEST', 'NAK', ip, undefined, this.dhcpPort, note, state);
  }

  private decline(p: DhcpPacket, mac: string, net: NetOptions): void {
    const client = clientInfo(p, mac, net.pool.name);
    const sid = getIpOption(p, Opt.SERVER_ID);
    const ip = getIpOption(p, Opt.REQUESTED_IP);
    if ((sid && sid !== this.serverIp) || !ip) return void this.drop('decline-not-ours');
    const ok = this.store.decline(net.pool, mac, ip, this.quarantine);
    this.emit(p, client, 'DECLINE', null, ip, undefined, this.dhcpPort, ok ? 'quarantined' : 'ignored');
  }

  private release(p: DhcpPacket, mac: string, net: NetOptions): void {
    const client = clientInfo(p, mac, net.pool.name);
    const sid = getIpOption(p, Opt.SERVER_ID);
    if (sid && sid !== this.serverIp) return void this.drop('release-not-ours');
    const ok = this.store.release(net.pool, mac, p.ciaddr);
    this.emit(
      p,
      client,
      'RELEASE',
      null,
      p.ciaddr,
      undefined,
      this.dhcpPort,
      ok ? 'released' : 'unknown-lease',
    );
  }

  private inform(p: DhcpPacket, mac: string, net: NetOptions): void {
    const client = clientInfo(p, mac, net.pool.name);
    const boot = this.decide(client);
    this.send(p, 'ACK', 0, net, client, boot, true);
    this.emit(p, client, 'INFORM', 'ACK', p.ciaddr, boot, this.dhcpPort);
  }

  // ------------------------------------------------------------ proxy mode / PXE port

  private proxyRequest(p: DhcpPacket, mac: string, typeName: MessageTypeName): void {
    const client = clientInfo(p, mac, this.config.name ?? 'default');
    if (!client.isPXE) return void this.drop('proxy-not-pxe');
    if (typeName !== 'DISCOVER') {
      this.emit(p, client, typeName, null, undefined, undefined, this.dhcpPort, 'proxy-ignores');
      return;
    }
    const boot = this.decide(client);
    if (!boot) {
      this.emit(p, client, typeName, null, undefined, undefined, this.dhcpPort, 'not-booting');
      return;
    }
    this.send(p, 'OFFER', 0, undefined, client, boot);
    this.emit(p, client, typeName, 'OFFER', undefined, boot, this.dhcpPort);
  }

  /** PXE boot server (port 4011): a PXE client with an address asks for its boot file. */
  private pxePortRequest(p: DhcpPacket, mac: string, typeName: MessageTypeName, from: RemoteInfo): void {
    const client = clientInfo(p, mac, this.config.name ?? 'default');
    if (typeName !== 'REQUEST' && typeName !== 'INFORM') return void this.drop('pxe-port-bad-type');
    if (!client.isPXE) return void this.drop('proxy-not-pxe');
    const boot = this.decide(client);
    if (!boot) {
      this.emit(p, client, typeName, null, p.ciaddr, undefined, this.pxePort, 'not-booting');
      return;
    }
    this.send(p, 'ACK', 0, undefined, client, boot, true, from);
    this.emit(p, client, typeName, 'ACK', p.ciaddr, boot, this.pxePort);
  }

  // ------------------------------------------------------------ replies

  private decide(client: ClientInfo): BootDecision | null {
    try {
      return this.deps.policy.decide(client);
    } catch (e) {
      this.log.error('boot policy failed', { err: e, mac: client.mac });
      return null;
    }
  }

  private send(
    p: DhcpPacket,
    type: Reply,
    yiaddr: number,
    net: NetOptions | undefined,
    client: ClientInfo,
    boot: BootDecision | null,
    informLike = false,
    to?: RemoteInfo,
  ): void {
    const options: OptionList = [
      [Opt.MESSAGE_TYPE, TYPE_OPT[MessageType[type]]!],
      [Opt.SERVER_ID, this.serverIdOpt],
    ];
    if (net && type !== 'NAK') {
      for (const o of net.common) {
        // INFORM replies carry no lease times (RFC 2131 3.4).
        if (
          informLike &&
          (o[0] === Opt.LEASE_TIME || o[0] === Opt.RENEWAL_TIME || o[0] === Opt.REBINDING_TIME)
        )
          continue;
        options.push(o);
      }
      const hn = net.pool.hostnameFor(client.mac);
      if (hn) options.push([Opt.HOSTNAME, strBytes(hn)]);
    }
    let file: string | undefined;
    let siaddr = 0;
    let sname: string | undefined;
    if (boot && type !== 'NAK') {
      siaddr = boot.nextServer ? ipToInt(boot.nextServer) : this.serverIp;
      sname = boot.serverName;
      const prl = p.options.get(Opt.PARAM_REQUEST_LIST);
      const fits = boot.file.length < 128;
      if (fits) file = boot.file;
      if (!fits || prl?.includes(Opt.BOOTFILE_NAME)) options.push([Opt.BOOTFILE_NAME, strBytes(boot.file)]);
      if (sname && prl?.includes(Opt.TFTP_SERVER_NAME)) options.push([Opt.TFTP_SERVER_NAME, strBytes(sname)]);
      if (client.isHttpClient) options.push([Opt.VENDOR_CLASS, HTTP_CLIENT]);
      else if (client.isPXE) {
        options.push([Opt.VENDOR_CLASS, PXE_CLIENT]);
        if (!client.isIPXE) options.push([Opt.VENDOR_SPECIFIC, PXE_VENDOR]);
      }
      const guid = p.options.get(Opt.CLIENT_UUID);
      if (guid && client.isPXE) options.push([Opt.CLIENT_UUID, guid]);
    }
    const reply = encode(
      {
        op: BOOTREPLY,
        htype: p.htype,
        hlen: p.hlen,
        xid: p.xid,
        flags: p.giaddr && type === 'NAK' ? p.flags | FLAG_BROADCAST : p.flags,
        ciaddr: type === 'NAK' ? 0 : p.ciaddr,
        yiaddr,
        siaddr,
        giaddr: p.giaddr,
        chaddr: p.chaddr,
        ...(sname ? { sname } : {}),
        ...(file ? { file } : {}),
      },
      options,
    );
    let address: string;
    let port = this.clientPort;
    if (to) {
      address = to.address;
      port = to.port;
    } else if (p.giaddr) {
      address = intToIp(p.giaddr);
      port = this.dhcpPort;
    } else if (type !== 'NAK' && p.ciaddr) address = intToIp(p.ciaddr);
    else address = '255.255.255.255';
    this.deps.transport.send(reply, address, port, to ? this.pxePort : this.dhcpPort);
    this.stats.replies++;
    if (type === 'OFFER') this.stats.offers++;
    else if (type === 'ACK') this.stats.acks++;
    else this.stats.naks++;
    mReplies.inc({ type });
  }

  private emit(
    p: DhcpPacket,
    c: ClientInfo,
    type: MessageTypeName,
    reply: Reply | null,
    ip: number | undefined,
    boot: BootDecision | null | undefined,
    port: number,
    note?: string,
    requestState?: ExchangeEvent['requestState'],
  ): void {
    const obs = this.deps.observer;
    if (!obs) return;
    const e: ExchangeEvent = {
      time: this.now(),
      mac: c.mac,
      type,
      reply,
      ip: ip ? intToIp(ip) : undefined,
      arch: c.arch,
      archKind: c.archKind,
      isPXE: c.isPXE,
      isIPXE: c.isIPXE,
      isHttpClient: c.isHttpClient,
      vendorClass: c.vendorClass,
      hostname: c.hostname,
      uuid: c.uuid,
      relayed: p.giaddr !== 0,
      networkName: c.networkName,
      bootFile: boot?.file,
      port,
    };
    if (note) e.note = note;
    if (requestState) e.requestState = requestState;
    try {
      obs.onExchange(e);
    } catch (err) {
      this.log.warn('dhcp observer threw', { err });
    }
  }
}

function commonOptions(pool: Pool): OptionList {
  const o: OptionList = [[Opt.SUBNET_MASK, ipBytes(pool.mask)]];
  if (pool.gateway) o.push([Opt.ROUTER, ipBytes(pool.gateway)]);
  if (pool.dns.length) o.push([Opt.DNS, ipListBytes(pool.dns)]);
  if (pool.domain) o.push([Opt.DOMAIN_NAME, strBytes(pool.domain)]);
  o.push([Opt.BROADCAST, ipBytes(pool.broadcast)]);
  o.push([Opt.LEASE_TIME, u32Bytes(pool.leaseTime)]);
  o.push([Opt.RENEWAL_TIME, u32Bytes(Math.floor(pool.leaseTime / 2))]);
  o.push([Opt.REBINDING_TIME, u32Bytes(Math.floor((pool.leaseTime * 7) / 8))]);
  return o;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
