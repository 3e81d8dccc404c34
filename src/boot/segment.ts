/**
 * What every protocol server of a segment's boot worker shares (as pixiecore's dhcp.go, tftp.go and
 * http.go share one Server): the segment's name and spec, where the server is reached, the artifacts it
 * serves, the transport to the manager and one way to report what happened. Also the two checks a worker
 * makes before binding anything: the segment's interface is here, and the iPXE binaries sit next to the
 * artifacts so TFTP and HTTP Boot serve them from one place.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { NetworkSpec } from '../core/kinds/network.ts';
import type { Logger } from '../core/log.ts';
import type { Transport } from '../core/transport/types.ts';
import type { BootConfig, BootReport } from './protocol.ts';

/** Where Debian's ipxe package puts the binaries firmware fetches over TFTP. */
export const IPXE_DIR = process.env.STRATA_IPXE_DIR ?? '/usr/lib/ipxe';

/** The iPXE binaries firmware may be handed (BIOS, UEFI, UEFI over SNP, PXE). */
const IPXE_BINARIES = ['undionly.kpxe', 'ipxe.efi', 'snponly.efi', 'ipxe.pxe'];

export interface Segment {
  network: string;
  spec: NetworkSpec;
  transport: Transport;
  log: Logger;
  dataDir: string;
  /** Where nodes reach this segment's HTTP server, e.g. `http://10.213.0.1:8080`. */
  httpBase: string;
  /** Served over TFTP and under `/artifacts/` over HTTP. */
  artifacts: string;
  /** The iPXE binaries (and the local-boot GRUB image), inside `artifacts`. */
  ipxeDir: string;
  /** Production opt-in for a segment served from the host's own namespace (see src/dhcp/guard.ts). */
  allowHostNamespace?: boolean;
  /** Sends a summary to the manager; never waits and never fails the packet path. */
  report(r: BootReport): void;
  /**
   * Firmware asked for a network boot (a PXE client's DHCP request): servers start now what they start
   * lazily (`SegmentServer.warm`), ahead of its TFTP and HTTP requests. Cheap to call on every such request.
   */
  firmware?(): void;
}

/** One protocol server of the segment: stopped with the worker, told of every new configuration. */
export interface SegmentServer {
  stop(): Promise<void>;
  update?(cfg: BootConfig): void;
  /** Firmware is on the wire (see `Segment.firmware`). */
  warm?(): void;
}

/** Copies the iPXE binaries next to the artifacts (once), so TFTP and HTTP Boot serve them from one place. */
export function stageIpxeBinaries(ipxeDir: string): void {
  mkdirSync(ipxeDir, { recursive: true });
  for (const f of IPXE_BINARIES) {
    if (existsSync(join(IPXE_DIR, f)) && !existsSync(join(ipxeDir, f)))
      copyFileSync(join(IPXE_DIR, f), join(ipxeDir, f));
  }
}

/**
 * Refuses to start, with the fix in the message, when the segment's interface or the server address is
 * missing here: a namespace without its bridge would otherwise fail later on an obscure bind error.
 */
export function checkInterface(spec: NetworkSpec, namespace: string | undefined): void {
  const where = namespace ? `network namespace ${namespace}` : "the host's network namespace";
  const ifaces = networkInterfaces();
  const addrs = ifaces[spec.interface];
  const has = Object.values(ifaces).some((list) => list?.some((a) => a.address === spec.serverAddress));
  if (has) return;
  const prefix = spec.subnet.split('/')[1];
  const ns = namespace ? `ip -n ${namespace} ` : 'ip ';
  if (!addrs && !existsSync(`/sys/class/net/${spec.interface}`)) {
    throw new Error(
      `interface ${spec.interface} (spec.interface) does not exist in ${where}: create it, e.g. ` +
        `\`${ns}link add ${spec.interface} type bridge && ${ns}link set ${spec.interface} up && ` +
        `${ns}addr add ${spec.serverAddress}/${prefix} dev ${spec.interface}\``,
    );
  }
  throw new Error(
    `no interface in ${where} has the server address ${spec.serverAddress} (spec.serverAddress): ` +
      `add it with \`${ns}addr add ${spec.serverAddress}/${prefix} dev ${spec.interface}\``,
  );
}
