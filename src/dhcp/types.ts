/**
 * The seams between the DHCP worker and the rest of Strata. The worker owns the protocol; the core owns
 * everything else and plugs in through three interfaces, like pixiecore's single `Booter`:
 * - {@link LeaseBackend}: where leases live (the core backs it by the store; tests use memory),
 * - {@link BootPolicy}: what a machine boots, or whether it boots at all (`null` = ignore it),
 * - {@link DhcpObserver}: a summary of every exchange, for node timelines and enrolment of unknown MACs.
 * {@link DhcpServerConfig} is plain data (JSON-able), so a worker can be started from a file or a message.
 */

import type { MessageTypeName } from './codec.ts';

export type LeaseState = 'bound' | 'released' | 'declined';

/** One address binding, as persisted. Times are epoch milliseconds. */
export interface Lease {
  ip: string;
  /** Lower-case colon-separated MAC; for a declined address, the client that declined it. */
  mac: string;
  network: string;
  state: LeaseState;
  /** End of the lease (bound) or of the quarantine (declined); informative for released. */
  expiresAt: number;
  updatedAt: number;
  hostname?: string;
  clientId?: string;
}

/**
 * Persistence of leases. `load` is called once at start; `persist` receives batches of changed leases
 * (group commit: all changes made while the previous write was running go into one call). A lease is
 * keyed by (network, ip): a later record for the same key replaces the earlier one. ACKs are sent only
 * after the batch holding their lease resolved, so a restart never hands a bound address to another
 * machine.
 */
export interface LeaseBackend {
  load(): Promise<Lease[]>;
  persist(batch: Lease[]): Promise<void>;
}

/** Firmware families derived from option 93 (RFC 4578 / IANA processor architecture types). */
export type ArchKind = 'bios' | 'uefi-x64' | 'uefi-arm64' | 'http-x64' | 'http-arm64' | 'unknown';

/** What the boot policy knows about a client. */
export interface ClientInfo {
  mac: string;
  /** Option 93 value, null if the client sent none (an OS DHCP client, usually). */
  arch: number | null;
  archKind: ArchKind;
  /** Firmware network boot (option 60 starts with PXEClient or HTTPClient). */
  isPXE: boolean;
  /** iPXE is asking (user class "iPXE" or option 175 present): give it a script, not a binary. */
  isIPXE: boolean;
  /** UEFI HTTP Boot (option 60 starts with HTTPClient): give it a URL. */
  isHttpClient: boolean;
  vendorClass: string | undefined;
  userClass: string[];
  hostname: string | undefined;
  /** SMBIOS UUID from option 97, if sent and not all zeros. */
  uuid: string | undefined;
  relayed: boolean;
  networkName: string;
}

export interface BootDecision {
  /** TFTP file name (firmware PXE) or URL (iPXE, HTTP Boot): goes into the `file` field / option 67. */
  file: string;
  /** siaddr; defaults to the server's own address. */
  nextServer?: string;
  /** sname / option 66 (TFTP server name); unset by default. */
  serverName?: string;
}

/**
 * Decides what a client boots. `null` = do not send it boot information (in full mode it still gets an
 * address; in proxy mode it gets no answer at all).
 */
export interface BootPolicy {
  decide(client: ClientInfo): BootDecision | null;
}

/** A summarised exchange: one per accepted request packet. */
export interface ExchangeEvent {
  time: number;
  mac: string;
  type: MessageTypeName;
  /** The reply sent, or null if none (dropped, ignored, another server chosen). */
  reply: 'OFFER' | 'ACK' | 'NAK' | null;
  /** Address offered/acked/released/declined, if any. */
  ip: string | undefined;
  arch: number | null;
  archKind: ArchKind;
  isPXE: boolean;
  isIPXE: boolean;
  isHttpClient: boolean;
  vendorClass: string | undefined;
  hostname: string | undefined;
  uuid: string | undefined;
  relayed: boolean;
  networkName: string;
  /** Boot file/URL handed out, if any. */
  bootFile: string | undefined;
  /**
   * For REQUEST: which RFC 2131 state the client is in. Renewing and rebinding look the same to us
   * (dgram cannot tell a unicast from a broadcast destination), both are 'renewing'.
   */
  requestState?: 'selecting' | 'init-reboot' | 'renewing';
  /** Port the request came in on (67 or the PXE port). */
  port: number;
  /**
   * Why no reply was sent, when that is worth telling (e.g. 'pool-exhausted', 'not-booting'), or
   * 'reclaimed-offer' for an OFFER of an address held for another client.
   */
  note?: string;
}

export interface DhcpObserver {
  onExchange(e: ExchangeEvent): void;
}

export interface Reservation {
  mac: string;
  ip: string;
  hostname?: string;
}

export interface PoolRange {
  start: string;
  end: string;
}

/** An address network served by the worker: the local segment, or one reached through relays. */
export interface DhcpNetworkConfig {
  name: string;
  /** CIDR, e.g. `10.0.0.0/24`. Relayed requests are matched on giaddr lying in it. */
  subnet: string;
  ranges: PoolRange[];
  gateway?: string;
  dnsServers?: string[];
  domain?: string;
  /** Seconds. */
  leaseTime?: number;
  reservations?: Reservation[];
}

export interface DhcpServerConfig {
  /** The segment's interface inside the worker's namespace (informative: dgram cannot bind to it). */
  interface: string;
  /** Our address on the segment: server identifier (option 54) and default next-server. */
  serverIp: string;
  mode: 'full' | 'proxy';
  /** Name of the local network (default 'default'). */
  name?: string;
  /** Local segment (full mode). */
  subnet?: string;
  ranges?: PoolRange[];
  gateway?: string;
  dnsServers?: string[];
  domain?: string;
  /** Seconds, default 3600. */
  leaseTime?: number;
  reservations?: Reservation[];
  /** More networks, served only through relays (giaddr). */
  relayNetworks?: DhcpNetworkConfig[];
  /** Default { dhcp: 67, pxe: 4011 }. Clients are answered on `clientPort` (default 68). */
  ports?: { dhcp?: number; pxe?: number; client?: number };
  /** Default 0.0.0.0 (needed to receive broadcasts). */
  bindAddress?: string;
  /**
   * Seconds an offered address is held for the client (default 30). When the pool runs short, held offers
   * are reclaimed oldest first before a client is refused.
   */
  offerHoldTime?: number;
  /** Seconds a declined address stays quarantined (default 600). */
  declineQuarantine?: number;
  /** NAK requests for addresses we know are wrong even without a record of the client (default true). */
  authoritative?: boolean;
}
