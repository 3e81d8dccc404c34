/**
 * The DNS data Strata is authoritative for: the platform zone (`<node>.<zone>` A records built from DHCP
 * reservations and leases) and the reverse zones that hold their PTR records.
 *
 * Shaped for the packet path: `setHosts()` does all the work (validation, name normalisation, building
 * ready-to-encode dns-packet records) and swaps one immutable snapshot in, so a lookup is a couple of Map
 * reads and allocates nothing. The lead rebuilds the host list whenever reservations or leases change.
 */
import { isIPv4 } from 'node:net';
import type { Answer, SoaAnswer } from 'dns-packet';

/** One host name with one IPv4 address; repeat the name to give it several addresses. */
export interface HostEntry {
  /** A short name (`node1`) or a name inside the zone (`node1.strata.lan`, `n1.rack2.strata.lan`). */
  name: string;
  ipv4: string;
}

export interface ZoneOptions {
  /** The forward zone, e.g. `strata.lan`. */
  zone: string;
  /** The zone's name server name; default `ns.<zone>`. */
  nsName?: string;
  /** Address for `nsName` when it lies inside the zone (glue). */
  nsAddress?: string;
  /** SOA RNAME (mailbox as a name); default `hostmaster.<zone>`. */
  hostmaster?: string;
  /** TTL of A and PTR records, seconds; default 60 (leases change). */
  ttl?: number;
  /** SOA minimum = negative-caching TTL, seconds; default 30. */
  negativeTtl?: number;
  /**
   * Reverse zones we are authoritative for (e.g. `0.168.192.in-addr.arpa`). When omitted, the /24 zone
   * of every host address is used, so PTR lookups for unknown addresses of the lab's segments get
   * NXDOMAIN instead of being forwarded.
   */
  reverseZones?: string[];
}

/** What the zone knows about a name, all record sets pre-built. */
export interface NameNode {
  /** Record sets by dns-packet type name ('A', 'PTR', 'SOA', 'NS'). An empty map = empty non-terminal. */
  readonly rrsets: ReadonlyMap<string, readonly Answer[]>;
}

export interface ZoneAuthority {
  readonly apex: string;
  /** The SOA record (answer form, TTL = SOA TTL). */
  readonly soa: SoaAnswer;
  /** The SOA record as it goes into the authority section of negative answers (TTL = minimum). */
  readonly negativeSoa: SoaAnswer;
}

/**
 * The seam between the DNS server and whoever owns the data: a fake in tests, `ZoneData` in production.
 * Names passed in are lower case, without trailing dot.
 */
export interface DnsRecordSource {
  /** The zone that contains `name`, or undefined when we are not authoritative for it. */
  zoneOf(name: string): ZoneAuthority | undefined;
  /** The node for an existing name (including empty non-terminals), or undefined (NXDOMAIN). */
  node(name: string): NameNode | undefined;
}

export interface SetHostsResult {
  accepted: number;
  rejected: { name: string; ipv4: string; reason: string }[];
}

interface Snapshot {
  zones: Map<string, ZoneAuthority>;
  nodes: Map<string, NameNode>;
  /** Most labels any zone apex has: bounds the suffix walk in zoneOf. */
  maxApexLabels: number;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Lower-cases a DNS name and strips a trailing dot. */
export function normalizeName(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

/** `192.168.0.10` → `10.0.168.192.in-addr.arpa`. */
export function reverseName(ipv4: string): string {
  const p = ipv4.split('.');
  return `${p[3]}.${p[2]}.${p[1]}.${p[0]}.in-addr.arpa`;
}

function validHostname(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  for (const label of name.split('.')) if (!LABEL.test(label)) return false;
  return true;
}

export class ZoneData implements DnsRecordSource {
  readonly zone: string;
  readonly nsName: string;
  private readonly opts: ZoneOptions;
  private serial: number;
  private snap: Snapshot;

  constructor(opts: ZoneOptions) {
    const zone = normalizeName(opts.zone);
    if (!validHostname(zone)) throw new Error(`invalid zone name: ${opts.zone}`);
    if (opts.nsAddress !== undefined && !isIPv4(opts.nsAddress)) {
      throw new Error(`invalid nsAddress: ${opts.nsAddress}`);
    }
    this.opts = opts;
    this.zone = zone;
    this.nsName = normalizeName(opts.nsName ?? `ns.${zone}`);
    this.serial = Math.floor(Date.now() / 1000) >>> 0;
    this.snap = this.build([]);
  }

  /** Current SOA serial; bumps on every `setHosts`. */
  get soaSerial(): number {
    return this.serial;
  }

  zoneOf(name: string): ZoneAuthority | undefined {
    const { zones, maxApexLabels } = this.snap;
    const direct = zones.get(name);
    if (direct) return direct;
    // Walk the suffixes (at most maxApexLabels lookups below the name itself).
    let i = name.indexOf('.');
    let labelsLeft = 1;
    for (let j = 0; j < name.length; j++) if (name.charCodeAt(j) === 46) labelsLeft++;
    while (i !== -1) {
      labelsLeft--;
      if (labelsLeft <= maxApexLabels) {
        const z = zones.get(name.slice(i + 1));
        if (z) return z;
      }
      i = name.indexOf('.', i + 1);
    }
    return undefined;
  }

  node(name: string): NameNode | undefined {
    return this.snap.nodes.get(name);
  }

  /**
   * Replaces every host record at once. Short names get the zone appended; names outside the zone,
   * invalid hostnames and invalid addresses are rejected (reported, not thrown: they come from DHCP
   * clients). Duplicate (name, address) pairs collapse.
   */
  setHosts(hosts: readonly HostEntry[]): SetHostsResult {
    const now = Math.floor(Date.now() / 1000) >>> 0;
    this.serial = now > this.serial ? now : (this.serial + 1) >>> 0;
    const rejected: SetHostsResult['rejected'] = [];
    const ok: { fqdn: string; ipv4: string }[] = [];
    for (const h of hosts) {
      const reason = this.checkHost(h);
      if (reason) rejected.push({ name: h.name, ipv4: h.ipv4, reason });
      else ok.push({ fqdn: this.qualify(h.name), ipv4: h.ipv4 });
    }
    this.snap = this.build(ok);
    return { accepted: ok.length, rejected };
  }

  private checkHost(h: HostEntry): string | undefined {
    if (typeof h.ipv4 !== 'string' || !isIPv4(h.ipv4)) return 'not an IPv4 address';
    if (typeof h.name !== 'string') return 'name is not a string';
    const fqdn = this.qualify(h.name);
    if (!validHostname(fqdn)) return 'not a valid hostname';
    if (fqdn === this.zone) return 'the zone apex is not a host name';
    if (!fqdn.endsWith(`.${this.zone}`)) return `outside zone ${this.zone}`;
    return undefined;
  }

  /** Short names get the zone appended; a trailing dot marks a name as already absolute. */
  private qualify(name: string): string {
    const n = normalizeName(name);
    if (name.endsWith('.') || n === this.zone || n.endsWith(`.${this.zone}`)) return n;
    return `${n}.${this.zone}`;
  }

  private build(hosts: readonly { fqdn: string; ipv4: string }[]): Snapshot {
    const ttl = this.opts.ttl ?? 60;
    const minimum = this.opts.negativeTtl ?? 30;
    const hostmaster = normalizeName(this.opts.hostmaster ?? `hostmaster.${this.zone}`);
    const zones = new Map<string, ZoneAuthority>();
    const nodes = new Map<string, Map<string, Answer[]>>();
    const rrset = (name: string, type: string): Answer[] => {
      let n = nodes.get(name);
      if (!n) {
        n = new Map();
        nodes.set(name, n);
      }
      let set = n.get(type);
      if (!set) {
        set = [];
        n.set(type, set);
      }
      return set;
    };
    const addZone = (apex: string) => {
      if (zones.has(apex)) return;
      const soaData = {
        mname: this.nsName,
        rname: hostmaster,
        serial: this.serial,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum,
      };
      const soa: SoaAnswer = { type: 'SOA', name: apex, ttl: 3600, class: 'IN', data: soaData };
      zones.set(apex, { apex, soa, negativeSoa: { ...soa, ttl: minimum } });
      rrset(apex, 'SOA').push(soa);
      rrset(apex, 'NS').push({ type: 'NS', name: apex, ttl: 3600, class: 'IN', data: this.nsName });
    };

    addZone(this.zone);
    for (const z of this.opts.reverseZones ?? []) addZone(normalizeName(z));
    // Every PTR must sit in a zone we answer for: addresses outside the configured reverse zones (or all
    // of them, when none are configured) get their /24 zone.
    const covered = (name: string): boolean => {
      for (let i = name.indexOf('.'); i !== -1; i = name.indexOf('.', i + 1)) {
        if (zones.has(name.slice(i + 1))) return true;
      }
      return false;
    };
    for (const ipv4 of [...hosts.map((h) => h.ipv4), ...(this.opts.nsAddress ? [this.opts.nsAddress] : [])]) {
      if (!covered(reverseName(ipv4))) {
        const p = ipv4.split('.');
        addZone(`${p[2]}.${p[1]}.${p[0]}.in-addr.arpa`);
      }
    }

    const seen = new Set<string>();
    const addHost = (fqdn: string, ipv4: string) => {
      const key = `${fqdn} ${ipv4}`;
      if (seen.has(key)) return;
      seen.add(key);
      rrset(fqdn, 'A').push({ type: 'A', name: fqdn, ttl, class: 'IN', data: ipv4 });
      const rev = reverseName(ipv4);
      rrset(rev, 'PTR').push({ type: 'PTR', name: rev, ttl, class: 'IN', data: fqdn });
    };
    if (this.opts.nsAddress && this.nsName.endsWith(`.${this.zone}`))
      addHost(this.nsName, this.opts.nsAddress);
    for (const h of hosts) addHost(h.fqdn, h.ipv4);

    // Empty non-terminals: every ancestor of a name, up to its zone apex, exists (NODATA, not NXDOMAIN).
    for (const name of [...nodes.keys()]) {
      let i = name.indexOf('.');
      while (i !== -1) {
        const parent = name.slice(i + 1);
        if (zones.has(parent) || nodes.has(parent)) break;
        nodes.set(parent, new Map());
        i = name.indexOf('.', i + 1);
      }
    }

    let maxApexLabels = 0;
    for (const apex of zones.keys()) maxApexLabels = Math.max(maxApexLabels, apex.split('.').length);
    const frozen = new Map<string, NameNode>();
    for (const [name, sets] of nodes) frozen.set(name, { rrsets: sets });
    return { zones, nodes: frozen, maxApexLabels };
  }
}
