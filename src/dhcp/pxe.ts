/**
 * PXE facts about a client, read from its request (option 93 architecture, option 60 vendor class,
 * option 77 user class / option 175 for iPXE), and a default {@link BootPolicy} implementing the usual
 * chain: firmware PXE gets the iPXE binary for its architecture over TFTP, iPXE gets the HTTP URL of its
 * script (never a binary again, so no chainload loop), UEFI HTTP Boot gets a URL. The core wraps or
 * replaces the policy (zero-touch enrolment decides boot/ignore); the protocol code only sees the seam.
 */

import { bootScriptPath } from '../ipxe/paths.ts';
import {
  type DhcpPacket,
  getStringOption,
  Opt,
  parseClientArch,
  parseClientUuid,
  parseUserClass,
} from './codec.ts';
import type { ArchKind, BootDecision, BootPolicy, ClientInfo } from './types.ts';

/**
 * Option 93 → firmware family. 0 BIOS; 6, 7, 9 x86 UEFI (6 is strictly IA32 UEFI, grouped with x64 as
 * the platform decided: 32-bit UEFI machines are not a target); 11 ARM64 UEFI; 16 x64 UEFI HTTP; 19
 * ARM64 UEFI HTTP.
 */
export function archKind(arch: number | null): ArchKind {
  switch (arch) {
    case 0:
      return 'bios';
    case 6:
    case 7:
    case 9:
      return 'uefi-x64';
    case 11:
      return 'uefi-arm64';
    case 15:
    case 16:
      return 'http-x64';
    case 19:
      return 'http-arm64';
    default:
      return 'unknown';
  }
}

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

/** Builds the {@link ClientInfo} for a request. `mac` is passed in (the server already formatted it). */
export function clientInfo(p: DhcpPacket, mac: string, networkName: string): ClientInfo {
  const vendorClass = getStringOption(p, Opt.VENDOR_CLASS);
  const userClass = parseUserClass(p.options.get(Opt.USER_CLASS));
  const arch = parseClientArch(p.options.get(Opt.CLIENT_ARCH));
  const isHttpClient = vendorClass?.startsWith('HTTPClient') ?? false;
  const isPXE = isHttpClient || (vendorClass?.startsWith('PXEClient') ?? false);
  let kind = archKind(arch);
  if (isHttpClient && kind === 'uefi-x64') kind = 'http-x64';
  if (isHttpClient && kind === 'uefi-arm64') kind = 'http-arm64';
  const uuid = parseClientUuid(p.options.get(Opt.CLIENT_UUID));
  return {
    mac,
    arch,
    archKind: kind,
    isPXE,
    isIPXE: userClass.includes('iPXE') || p.options.has(Opt.IPXE_ENCAP),
    isHttpClient,
    vendorClass,
    userClass,
    hostname: getStringOption(p, Opt.HOSTNAME),
    uuid: uuid === ZERO_UUID ? undefined : uuid,
    relayed: p.giaddr !== 0,
    networkName,
  };
}

export interface DefaultBootPolicyOptions {
  /** Base URL of Strata's HTTP server, e.g. `http://10.0.0.1:8080`. */
  httpBase: string;
  /** Path + query of the iPXE script; default the one the HTTP handler serves (src/ipxe/paths.ts). */
  scriptPath?: string;
  /** Path of the HTTP Boot image for UEFI HTTP clients (an iPXE EFI binary served over HTTP). */
  httpBootPath?: { x64?: string; arm64?: string };
  /** TFTP file names of the iPXE binaries. */
  files?: { bios?: string; x64?: string; arm64?: string };
  /** siaddr for TFTP; defaults to the server address. */
  nextServer?: string;
  /** Boot clients without option 93 / PXE vendor class? Default false (OS DHCP clients get no file). */
  bootNonPxe?: boolean;
}

/** The default chain: firmware → TFTP iPXE binary, iPXE → HTTP script, HTTP Boot → HTTP URL. */
export function defaultBootPolicy(o: DefaultBootPolicyOptions): BootPolicy {
  const script = o.httpBase + (o.scriptPath ?? bootScriptPath());
  const files = {
    bios: o.files?.bios ?? 'undionly.kpxe',
    x64: o.files?.x64 ?? 'ipxe.efi',
    arm64: o.files?.arm64 ?? 'ipxe-arm64.efi',
  };
  const http = {
    x64: o.httpBase + (o.httpBootPath?.x64 ?? '/boot/ipxe.efi'),
    arm64: o.httpBase + (o.httpBootPath?.arm64 ?? '/boot/ipxe-arm64.efi'),
  };
  const tftp = (file: string): BootDecision => (o.nextServer ? { file, nextServer: o.nextServer } : { file });
  return {
    decide(c: ClientInfo): BootDecision | null {
      if (c.isIPXE) return { file: script };
      if (!c.isPXE && !o.bootNonPxe) return null;
      switch (c.archKind) {
        case 'bios':
          return tftp(files.bios);
        case 'uefi-x64':
          return tftp(files.x64);
        case 'uefi-arm64':
          return tftp(files.arm64);
        case 'http-x64':
          return { file: http.x64 };
        case 'http-arm64':
          return { file: http.arm64 };
        default:
          return null;
      }
    },
  };
}
