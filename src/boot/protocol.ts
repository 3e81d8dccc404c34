/**
 * What a boot manager and the boot worker of one network segment say to each other over the transport.
 * The worker's packet paths never wait on the manager: it gets the segment's whole configuration (pools,
 * reservations, known MACs, DNS hosts) up front and on every change, and only boot-script renders, lease
 * writes and relayed HTTP calls go to the manager. The worker relays the HTTP paths its config names
 * (`BootConfig.relays`) to the subjects named there, without knowing whose they are: the install layer's
 * installer calls (`/install/…`) are one such relay, declared by that layer (src/boot/handoff.ts).
 */
import type { NetworkSpec } from '../core/kinds/network.ts';
import { type WireContract, wireContract } from '../core/wire.ts';
import type { Lease } from '../dhcp/types.ts';

export const subjects = {
  /** Request {} → NetworkPlacement[]: which segments exist and where their workers run. */
  networks: 'boot.networks',
  /** Published NetworkPlacement[] when networks change. */
  networksChanged: 'boot.networks.changed',
  /** Request {network} → BootConfig. */
  config: 'boot.config',
  /** Published BootConfig when anything the worker needs changed. */
  configChanged: (network: string) => `boot.config.${network}`,
  /** Request {network} → Lease[]. */
  leasesLoad: 'boot.leases.load',
  /** Request {network, leases} → {ok}; replied once committed (it survives a crash of Strata; on SQLite a power cut can lose the last commits: src/core/store/sqlite.ts). */
  leasesPersist: 'boot.leases.persist',
  /** Request BootScriptRequest → {script} | {status, message}. */
  script: 'boot.script',
  /** Published BootReport. */
  report: 'boot.report',
  /** Published WorkerStatus: a segment's worker started, is serving, or failed (and why). */
  workerStatus: 'boot.worker.status',
  /**
   * Request {} on a segment's worker process → its Prometheus metrics (prom-client JSON, labelled with
   * the network), so the manager's /metrics shows the protocol counters that live in the worker.
   */
  metrics: (network: string) => `boot.metrics.${network}`,
} as const;

/** One collection of DHCP leases per network, keyed by address: what the segment's worker handed out. */
export const leaseCollection = (network: string) => `dhcp.leases.${network}`;

/** The site's enrolment token per network (enrolment.ts): boot media carry it; sealed at rest. */
export const ENROLMENT_TOKENS = 'secrets.media-enrolment';

/** Who sends and who receives each subject, and what the boot layer keeps (docs/wire.md). */
export const wire: WireContract = wireContract(
  'boot',
  subjects,
  {
    networks: { kind: 'request', from: ['boot'], to: ['manager'], message: '{} → NetworkPlacement[]' },
    networksChanged: { kind: 'publish', from: ['manager'], to: ['boot'], message: 'NetworkPlacement[]' },
    config: { kind: 'request', from: ['boot'], to: ['manager'], message: '{network} → BootConfig' },
    configChanged: { kind: 'publish', from: ['manager'], to: ['boot'], message: 'BootConfig' },
    leasesLoad: { kind: 'request', from: ['boot'], to: ['manager'], message: '{network} → Lease[]' },
    leasesPersist: {
      kind: 'request',
      from: ['boot'],
      to: ['manager'],
      message: '{network, leases: Lease[]} → {ok}, once committed to the store',
    },
    script: {
      kind: 'request',
      from: ['boot'],
      to: ['manager'],
      message: 'BootScriptRequest → {script} | {status, message}',
    },
    report: { kind: 'publish', from: ['boot'], to: ['manager'], message: 'BootReport' },
    workerStatus: { kind: 'publish', from: ['boot'], to: ['manager'], message: 'WorkerStatus' },
    metrics: {
      kind: 'request',
      from: ['manager'],
      to: ['boot'],
      message: '{} → prom-client metrics JSON of one segment',
    },
  },
  [
    {
      name: leaseCollection('<network>'),
      key: 'leased address',
      holds: 'Lease: the address the segment handed out, so a restarted worker keeps its leases',
      writers: ['manager'],
      readers: ['manager'],
    },
    {
      name: ENROLMENT_TOKENS,
      key: 'network name',
      holds: '{token}: the site enrolment token that boot media embed in their chain URL',
      writers: ['manager'],
      readers: ['manager'],
    },
  ],
);

export interface WorkerStatus {
  network: string;
  phase: 'Starting' | 'Running' | 'Failing';
  /** What the worker does now, or why it fails (naming the fix where it can). */
  message?: string;
}

export interface BootConfig {
  network: string;
  spec: NetworkSpec;
  /** Reserved addresses: nodes with spec.ipAddress on this network. */
  reservations: { mac: string; ip: string; hostname: string }[];
  /** MACs of nodes Strata knows (booted even when unknown nodes are ignored). */
  knownMacs: string[];
  /** DNS names: every node with an address on this network. */
  hosts: { name: string; ipv4: string }[];
  /** HTTP paths the worker relays to a manager over the transport (the first matching prefix wins). */
  relays: HttpRelay[];
}

/** Requests whose path starts with `prefix` are sent as HttpRelayRequest to `subject`. */
export interface HttpRelay {
  prefix: string;
  subject: string;
}

export interface NetworkPlacement {
  name: string;
  /** Network namespace of the segment; absent = the host's own (needs an explicit opt-in). */
  namespace?: string;
  /** Changes whenever the segment's worker must restart (spec changed). */
  generation: number;
}

export interface BootScriptRequest {
  network: string;
  mac: string;
  remoteAddress: string;
  arch?: string;
  baseUrl: string;
  /** From boot media: the site's enrolment token for the network, and the Node the medium was made for. */
  token?: string;
  node?: string;
}

/** Summaries from the worker, one per DHCP exchange, TFTP transfer or HTTP fetch. */
export type BootReport =
  | {
      kind: 'dhcp';
      network: string;
      mac: string;
      type: string;
      reply: string | null;
      ip?: string;
      arch: number | null;
      archKind: string;
      isPXE: boolean;
      isIPXE: boolean;
      isHttpClient: boolean;
      vendorClass?: string;
      hostname?: string;
      uuid?: string;
      bootFile?: string;
      relayed: boolean;
    }
  | {
      kind: 'tftp';
      network: string;
      ip: string;
      path: string;
      bytes: number;
      durationMs: number;
      ok: boolean;
      error?: string;
      blksize: number;
      windowsize: number;
    }
  | {
      /** Sent when the pool runs out (no address, no held offer to reclaim) and when it has one again. */
      kind: 'pool';
      network: string;
      exhausted: boolean;
      /** The MAC that found the pool empty (exhausted) or got the first address again. */
      mac: string;
    }
  | {
      kind: 'http';
      network: string;
      ip: string;
      path: string;
      what: string;
      status: number;
      bytes: number;
      durationMs: number;
      mac?: string;
    };

/** An HTTP request the worker relays (BootConfig.relays): answered with an HttpRelayResponse. */
export interface HttpRelayRequest {
  network: string;
  method: string;
  path: string;
  authorization?: string;
  body: string;
  remoteAddress: string;
}

export interface HttpRelayResponse {
  status: number;
  contentType: string;
  body: string;
  /** Extra response headers (e.g. `allow` with a 405). */
  headers?: Record<string, string>;
}

export type { Lease };
