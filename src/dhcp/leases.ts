/**
 * Address pools and leases of a DHCP worker: allocation (reservations first, then the client's previous
 * address, then the requested one, then never-used addresses, then the longest-expired), offers held for
 * a short time (and reclaimed oldest first when the pool runs short), declined addresses quarantined (probe-free conflict avoidance: we cannot ARP-probe from
 * Node, so an address a client declined is not handed out again until the quarantine ends), and
 * persistence through an injected {@link LeaseBackend} with group commit: changes are collected and
 * written as one batch per write, the next batch filling while the previous write runs. A bind resolves
 * only once its batch is durable, so the server ACKs only persisted leases and a restart (which reloads
 * everything through `load()`) never hands a bound address to a second machine.
 *
 * Addresses are uint32 numbers internally; clients are keyed by MAC (not option 61), so firmware, iPXE
 * and the installed OS of one machine keep one address.
 */

import { intToIp, ipToInt } from './codec.ts';
import type { DhcpNetworkConfig, Lease, LeaseBackend, LeaseState } from './types.ts';

type RecState = LeaseState | 'offered';

interface Rec {
  ip: number;
  mac: string;
  state: RecState;
  expiresAt: number;
  updatedAt: number;
  hostname: string | undefined;
  clientId: string | undefined;
}

export function parseCidr(cidr: string): { base: number; mask: number; prefix: number } {
  const [addr, len] = cidr.split('/');
  const prefix = Number(len);
  if (!addr || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new Error(`bad CIDR: ${cidr}`);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (ipToInt(addr) & mask) >>> 0, mask, prefix };
}

/** One network's pool and lease records. */
export class Pool {
  readonly name: string;
  readonly base: number;
  readonly mask: number;
  readonly broadcast: number;
  readonly leaseTime: number;
  readonly gateway: number;
  readonly dns: number[];
  readonly domain: string | undefined;
  readonly ranges: [number, number][];
  readonly reservations = new Map<string, { ip: number; hostname: string | undefined }>();
  readonly reservedIps = new Map<number, string>();
  readonly excluded = new Set<number>();
  readonly byIp = new Map<number, Rec>();
  readonly byMac = new Map<string, Rec>();
  private cursor = 0;

  constructor(c: DhcpNetworkConfig, serverIp: number) {
    const { base, mask } = parseCidr(c.subnet);
    this.name = c.name;
    this.base = base;
    this.mask = mask;
    this.broadcast = (base | ~mask) >>> 0;
    this.leaseTime = c.leaseTime ?? 3600;
    this.gateway = c.gateway ? ipToInt(c.gateway) : 0;
    this.dns = (c.dnsServers ?? []).map(ipToInt);
    this.domain = c.domain;
    this.ranges = c.ranges.map((r) => {
      const s = ipToInt(r.start);
      const e = ipToInt(r.end);
      if (e < s || !this.contains(s) || !this.contains(e)) throw new Error(`bad range ${r.start}-${r.end}`);
      return [s, e];
    });
    for (const r of c.reservations ?? []) {
      const ip = ipToInt(r.ip);
      const mac = r.mac.toLowerCase().replaceAll('-', ':');
      if (!this.contains(ip)) throw new Error(`reservation ${r.ip} is outside ${c.subnet}`);
      this.reservations.set(mac, { ip, hostname: r.hostname });
      this.reservedIps.set(ip, mac);
    }
    for (const ip of [base, this.broadcast, serverIp, this.gateway]) this.excluded.add(ip);
  }

  contains(ip: number): boolean {
    return (ip & this.mask) >>> 0 === this.base;
  }

  inRange(ip: number): boolean {
    for (const [s, e] of this.ranges) if (ip >= s && ip <= e) return true;
    return false;
  }

  /** A record that still holds its address at `now`. */
  static active(r: Rec, now: number): boolean {
    return r.state !== 'released' && r.expiresAt > now;
  }

  /** May `mac` use `ip` now? */
  available(ip: number, mac: string, now: number): boolean {
    if (this.excluded.has(ip) || !this.contains(ip)) return false;
    const owner = this.reservedIps.get(ip);
    if (owner !== undefined) {
      if (owner !== mac) return false;
    } else if (!this.inRange(ip)) return false;
    const r = this.byIp.get(ip);
    if (!r || !Pool.active(r, now)) return true;
    return r.state !== 'declined' && r.mac === mac;
  }

  /** Picks an address for `mac`, or 0 if none is free. Does not change state. */
  pick(mac: string, requested: number, now: number): number {
    const res = this.reservations.get(mac);
    if (res) return this.available(res.ip, mac, now) ? res.ip : 0;
    const prev = this.byMac.get(mac);
    if (prev && prev.state !== 'declined' && this.available(prev.ip, mac, now)) return prev.ip;
    if (requested && this.available(requested, mac, now)) return requested;
    return this.scan(mac, now);
  }

  private scan(mac: string, now: number): number {
    let best = 0;
    let bestAge = Number.POSITIVE_INFINITY;
    let total = 0;
    for (const [s, e] of this.ranges) total += e - s + 1;
    // Walk all addresses once, starting after the last one handed out.
    let idx = this.cursor % Math.max(total, 1);
    for (let n = 0; n < total; n++, idx = (idx + 1) % total) {
      const ip = this.at(idx);
      if (this.excluded.has(ip) || this.reservedIps.has(ip)) continue;
      const r = this.byIp.get(ip);
      if (!r) {
        this.cursor = idx + 1;
        return ip;
      }
      if (!Pool.active(r, now) && r.state !== 'offered' && r.updatedAt < bestAge) {
        best = ip;
        bestAge = r.updatedAt;
      } else if (!Pool.active(r, now) && r.state === 'offered' && best === 0) {
        best = ip;
      } else if (r.mac === mac && this.available(ip, mac, now)) return ip;
    }
    return best;
  }

  /**
   * The address of the oldest offer still held for another client, or 0. When the pool is short, held
   * offers are reclaimed oldest first, so a burst of more MACs than addresses cannot lock new clients out
   * for a whole hold time; a client whose offer was taken is NAKed if it asks, and starts over.
   */
  oldestOffer(mac: string, now: number): number {
    let ip = 0;
    let oldest = Number.POSITIVE_INFINITY;
    for (const r of this.byIp.values()) {
      if (r.state !== 'offered' || r.mac === mac || !Pool.active(r, now) || r.updatedAt >= oldest) continue;
      if (this.reservedIps.has(r.ip) || !this.inRange(r.ip)) continue;
      ip = r.ip;
      oldest = r.updatedAt;
    }
    return ip;
  }

  private at(idx: number): number {
    for (const [s, e] of this.ranges) {
      const size = e - s + 1;
      if (idx < size) return s + idx;
      idx -= size;
    }
    return 0;
  }

  hostnameFor(mac: string): string | undefined {
    return this.reservations.get(mac)?.hostname;
  }

  set(rec: Rec): void {
    const old = this.byMac.get(rec.mac);
    if (old && old.ip !== rec.ip && old.state === 'offered' && this.byIp.get(old.ip) === old) {
      this.byIp.delete(old.ip);
    }
    this.byIp.set(rec.ip, rec);
    if (rec.state !== 'declined') this.byMac.set(rec.mac, rec);
    else if (old === rec || old?.ip === rec.ip) this.byMac.delete(rec.mac);
  }
}

export interface LeaseStoreOptions {
  now?: () => number;
  /** Called when a batch write fails (it is retried). */
  onPersistError?: (err: unknown, batchSize: number) => void;
  onBatch?: (batchSize: number) => void;
  retryDelayMs?: number;
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** All pools of a worker plus the group-commit persistence. */
export class LeaseStore {
  readonly pools: Pool[];
  private readonly backend: LeaseBackend;
  private readonly now: () => number;
  private readonly opts: LeaseStoreOptions;
  private dirty = new Map<string, Lease>();
  private waiters: Waiter[] = [];
  private scheduled = false;
  private inflight: Promise<void> | null = null;
  private closed = false;
  private failed = false;

  constructor(pools: Pool[], backend: LeaseBackend, opts: LeaseStoreOptions = {}) {
    this.pools = pools;
    this.backend = backend;
    this.now = opts.now ?? Date.now;
    this.opts = opts;
  }

  pool(name: string): Pool | undefined {
    return this.pools.find((p) => p.name === name);
  }

  /** Pool whose subnet holds `ip`. */
  poolFor(ip: number): Pool | undefined {
    for (const p of this.pools) if (p.contains(ip)) return p;
    return undefined;
  }

  /** Loads persisted leases (call once, before serving). */
  async load(): Promise<number> {
    const leases = await this.backend.load();
    // Oldest first, so each MAC ends up pointing at its newest record.
    leases.sort((a, b) => a.updatedAt - b.updatedAt);
    let n = 0;
    for (const l of leases) {
      let ip: number;
      try {
        ip = ipToInt(l.ip);
      } catch {
        continue;
      }
      const pool = this.pool(l.network) ?? this.poolFor(ip);
      if (!pool) continue;
      pool.set({
        ip,
        mac: l.mac,
        state: l.state,
        expiresAt: l.expiresAt,
        updatedAt: l.updatedAt,
        hostname: l.hostname,
        clientId: l.clientId,
      });
      n++;
    }
    return n;
  }

  /** Holds `ip` for `mac` for `holdSeconds` (not persisted: an offer binds nothing). */
  offer(pool: Pool, mac: string, ip: number, holdSeconds: number, hostname?: string): void {
    const now = this.now();
    const cur = pool.byIp.get(ip);
    if (cur && cur.mac === mac && cur.state === 'bound' && cur.expiresAt > now) return;
    pool.set({
      ip,
      mac,
      state: 'offered',
      expiresAt: now + holdSeconds * 1000,
      updatedAt: now,
      hostname: hostname ?? (cur?.mac === mac ? cur.hostname : undefined),
      clientId: undefined,
    });
  }

  /** Forgets an offer (the client chose another server). */
  dropOffer(pool: Pool, mac: string): void {
    const r = pool.byMac.get(mac);
    if (r && r.state === 'offered') {
      if (pool.byIp.get(r.ip) === r) pool.byIp.delete(r.ip);
      pool.byMac.delete(mac);
    }
  }

  /** Binds and persists; resolves once the lease is durable. */
  bind(
    pool: Pool,
    mac: string,
    ip: number,
    seconds: number,
    hostname?: string,
    clientId?: string,
  ): Promise<void> {
    const now = this.now();
    const prev = pool.byIp.get(ip);
    const rec: Rec = {
      ip,
      mac,
      state: 'bound',
      expiresAt: now + seconds * 1000,
      updatedAt: now,
      hostname: hostname ?? (prev?.mac === mac ? prev.hostname : undefined),
      clientId: clientId ?? (prev?.mac === mac ? prev.clientId : undefined),
    };
    pool.set(rec);
    return this.commit(pool, rec, true) as Promise<void>;
  }

  /** Client released `ip`: keep the record (so it gets the address back later), free the address. */
  release(pool: Pool, mac: string, ip: number): boolean {
    const r = pool.byIp.get(ip);
    if (!r || r.mac !== mac || r.state !== 'bound') return false;
    const now = this.now();
    const rec: Rec = { ...r, state: 'released', updatedAt: now };
    pool.set(rec);
    this.commit(pool, rec, false);
    return true;
  }

  /** Client found `ip` in use (DHCPDECLINE): quarantine it. */
  decline(pool: Pool, mac: string, ip: number, quarantineSeconds: number): boolean {
    if (!pool.contains(ip)) return false;
    const r = pool.byIp.get(ip);
    const now = this.now();
    // Only the client the address was given to may decline it.
    if (r && r.mac !== mac && Pool.active(r, now)) return false;
    const rec: Rec = {
      ip,
      mac,
      state: 'declined',
      expiresAt: now + quarantineSeconds * 1000,
      updatedAt: now,
      hostname: undefined,
      clientId: undefined,
    };
    pool.set(rec);
    this.commit(pool, rec, false);
    return true;
  }

  /** Current leases (bound, released, declined) of every pool: for status pages and tests. */
  snapshot(): Lease[] {
    const out: Lease[] = [];
    for (const p of this.pools)
      for (const r of p.byIp.values()) if (r.state !== 'offered') out.push(toLease(p, r));
    return out;
  }

  private commit(pool: Pool, rec: Rec, wait: boolean): Promise<void> | undefined {
    const lease = toLease(pool, rec);
    this.dirty.set(`${lease.network}/${lease.ip}`, lease);
    let p: Promise<void> | undefined;
    if (wait) p = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.schedule(0);
    return p;
  }

  private schedule(delay: number): void {
    if (this.scheduled || this.inflight || this.closed) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      this.flush();
    };
    if (delay) setTimeout(run, delay).unref();
    else setImmediate(run);
  }

  private flush(): void {
    if (this.closed || (this.dirty.size === 0 && this.waiters.length === 0)) return;
    const batch = [...this.dirty.values()];
    const waiters = this.waiters;
    this.dirty = new Map();
    this.waiters = [];
    this.opts.onBatch?.(batch.length);
    const write = this.backend.persist(batch);
    this.inflight = write.then(
      () => {
        this.failed = false;
        for (const w of waiters) w.resolve();
      },
      (err: unknown) => {
        this.failed = true;
        this.opts.onPersistError?.(err, batch.length);
        for (const w of waiters) w.reject(err);
        // Keep the failed changes unless newer ones replaced them; retry later.
        for (const l of batch) {
          const k = `${l.network}/${l.ip}`;
          if (!this.dirty.has(k)) this.dirty.set(k, l);
        }
      },
    );
    this.inflight.then(() => {
      this.inflight = null;
      if (this.dirty.size || this.waiters.length)
        this.schedule(this.failed ? (this.opts.retryDelayMs ?? 250) : 0);
    });
  }

  /** Waits until every change so far is written (or failed), or until `deadline` (epoch ms) passes. */
  async drain(deadline = Number.POSITIVE_INFINITY): Promise<void> {
    for (let i = 0; i < 100 && (this.inflight || this.scheduled || this.dirty.size); i++) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      if (this.inflight) await Promise.race([this.inflight, sleep(left)]);
      else if (this.dirty.size && !this.scheduled) this.flush();
      else await new Promise((r) => setImmediate(r));
    }
  }

  /**
   * Writes what it can within `timeoutMs`, then stops for good: no retry after close, and binds still
   * waiting are rejected (their ACKs are never sent, so no client holds an address the store lacks). A
   * stopping worker must not linger on a batch its manager cannot take.
   */
  async close(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    await this.drain(Date.now() + timeoutMs);
    this.closed = true;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(new Error('lease store closed'));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.min(ms, 2 ** 31 - 1)).unref());
}

function toLease(pool: Pool, r: Rec): Lease {
  const l: Lease = {
    ip: intToIp(r.ip),
    mac: r.mac,
    network: pool.name,
    state: r.state === 'offered' ? 'bound' : r.state,
    expiresAt: r.expiresAt,
    updatedAt: r.updatedAt,
  };
  if (r.hostname) l.hostname = r.hostname;
  if (r.clientId) l.clientId = r.clientId;
  return l;
}

/** A {@link LeaseBackend} in memory: for tests, and for a worker that needs no persistence. */
export class MemoryLeaseBackend implements LeaseBackend {
  readonly leases = new Map<string, Lease>();
  /** Sizes of the batches written, in order (group commit is observable in tests). */
  readonly batches: number[] = [];
  /** If set, the next persist calls fail with it. */
  failWith: Error | undefined;
  /** Artificial write latency in ms. */
  delayMs = 0;

  constructor(initial: Lease[] = []) {
    for (const l of initial) this.leases.set(`${l.network}/${l.ip}`, { ...l });
  }

  async load(): Promise<Lease[]> {
    return [...this.leases.values()].map((l) => ({ ...l }));
  }

  async persist(batch: Lease[]): Promise<void> {
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failWith) throw this.failWith;
    this.batches.push(batch.length);
    for (const l of batch) this.leases.set(`${l.network}/${l.ip}`, { ...l });
  }
}
