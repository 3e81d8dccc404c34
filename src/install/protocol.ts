/**
 * The Strata installer protocol: what the installer agent (src/install/agent.sh, busybox sh in the
 * installer initramfs) asks of the Strata server and what it sends back. Human-readable spec:
 * src/install/PROTOCOL.md. Pure: types, paths, and the codec of the config document; no I/O.
 *
 * The config is a line-based `KEY=VALUE` text document rather than JSON because the agent is a busybox
 * shell script: it can split lines safely without eval, and it cannot parse JSON without shipping a JSON
 * tool. Everything the agent sends is small, flat JSON (or plain text for host keys), which the server
 * parses with zod-like checks (`parseInstallEvent`, `parseInstalledReport`).
 */

import type { HttpRelayRequest, HttpRelayResponse } from '../boot/protocol.ts';
import { type WireContract, wireContract } from '../core/wire.ts';

export const INSTALL_CONFIG_VERSION = 1;

/** Install attempts by node name, with their token hashes; a `secrets.` collection, sealed at rest by the store. */
export const INSTALL_ATTEMPTS = 'secrets.install-attempts';

/** Subjects of the install layer on the transport. */
export const subjects = {
  /** Request InstallHttpRequest → InstallHttpResponse: the installer's calls, relayed by the segment's worker. */
  http: 'install.http',
} as const;

/** Every installer call's path starts here (installPaths); the segment's worker relays these to `subjects.http`. */
export const INSTALL_PATH_PREFIX = '/install/';

/** An installer call as the segment's boot worker relays it (boot's generic relay message). */
export type InstallHttpRequest = HttpRelayRequest;
export type InstallHttpResponse = HttpRelayResponse;

/**
 * The install layer speaks HTTP to the installer (installPaths), relayed by the segment's boot worker on
 * `install.http`, and keeps its install attempts in the store.
 */
export const wire: WireContract = wireContract(
  'install',
  subjects,
  {
    http: {
      kind: 'request',
      from: ['boot'],
      to: ['manager'],
      message: "InstallHttpRequest → InstallHttpResponse: installer calls relayed by the segment's worker",
    },
  },
  [
    {
      name: INSTALL_ATTEMPTS,
      key: 'node name',
      holds:
        'InstallAttempt: the Node uid it belongs to, hashes of its install tokens, the installed-report token',
      writers: ['manager'],
      readers: ['manager'],
    },
  ],
);

/** The only error the parsers of this protocol throw: a request or config the agent or Strata refuses. */
export class InstallProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InstallProtocolError';
  }
}

/** Kernel command line parameters the installer initramfs reads (see src/install/init.sh). */
export interface InstallerCmdline {
  /** Base URL of the Strata API reachable from the node, e.g. http://10.213.0.1:8080/ */
  url: string;
  node: string;
  /** Install token for this node: `Authorization: Bearer` on every install request. */
  token: string;
  onfail?: 'shell' | 'poweroff' | 'reboot';
  iface?: string;
  debug?: boolean;
}

/** Builds `strata.url=… strata.node=… strata.token=…` for an iPXE script or QEMU `-append`. */
export function installerCmdline(p: InstallerCmdline): string {
  for (const [k, v] of Object.entries(p)) {
    if (typeof v === 'string' && /\s/.test(v)) throw new Error(`strata.${k} must not contain whitespace`);
  }
  const words = [`strata.url=${p.url}`, `strata.node=${p.node}`, `strata.token=${p.token}`];
  if (p.onfail) words.push(`strata.onfail=${p.onfail}`);
  if (p.iface) words.push(`strata.iface=${p.iface}`);
  if (p.debug) words.push('strata.debug=1');
  return words.join(' ');
}

/** Paths relative to the Strata base URL; `node` is the node name as given on the kernel command line. */
export const installPaths = {
  /** GET, install token. 200 text/plain: the config document (renderInstallConfig). */
  config: (node: string) => `/install/${node}/config`,
  /** POST, install token, application/json InstallEvent. Any 2xx. */
  events: (node: string) => `/install/${node}/events`,
  /** POST, install token, text/plain: the node's SSH host public keys, one OpenSSH .pub line each. */
  hostkey: (node: string) => `/install/${node}/hostkey`,
  /** GET, install token. 200 = script (run with `sh` unless it starts with #!), 404 or 204 = none. */
  preReboot: (node: string) => `/install/${node}/scripts/pre-reboot`,
  /** GET, install token. Like preReboot; stored on the target and run once after the first boot. */
  postReboot: (node: string) => `/install/${node}/scripts/post-reboot`,
  /** POST from the installed system, INSTALLED_TOKEN as Bearer, application/json InstalledReport. */
  installed: (node: string) => `/install/${node}/installed`,
} as const;

export type Firmware = 'auto' | 'bios' | 'uefi';

/** What the server tells the agent to install. Rendered as VERSION=1 + KEY=VALUE lines. */
export interface InstallConfig {
  /** URL of the OS image (tar, tar.gz, tar.zst, tar.xz by extension); relative = to the Strata base URL. */
  imageUrl: string;
  /** Hex sha256 of the image file as served; checked while streaming. */
  imageSha256?: string;
  /** Defaults to the node name. [A-Za-z0-9.-] only. */
  hostname?: string;
  /** Block device, default auto: first of vda sda nvme0n1 xvda hda that is writable and non-empty. */
  disk?: string;
  /** auto = UEFI if /sys/firmware/efi exists. bios: MBR, one ext4. uefi: GPT, ESP (vfat) + ext4. */
  firmware?: Firmware;
  espSizeMiB?: number;
  /** OpenSSH public keys for root's authorized_keys. */
  sshAuthorizedKeys?: string[];
  /** crypt(3) hash for root; without it root has no password (SSH keys only). */
  rootPasswordHash?: string;
  /** Kernel command line of the installed system, default `console=tty0 console=ttyS0,115200n8`. */
  kernelCmdline?: string;
  /** Bearer token the installed system uses for POST …/installed; valid only for this node. */
  installedToken: string;
  /** Base URL the installed system reports to, default the installer's strata.url. */
  reportUrl?: string;
  /** After installing: reboot (default), poweroff, or none (stay in the installer). */
  reboot?: 'reboot' | 'poweroff' | 'none';
  /** disabled (default) or permissive/enforcing: adds security=selinux and relabels on first boot. */
  selinux?: 'disabled' | 'permissive' | 'enforcing';
}

const KEYS: Array<[keyof InstallConfig, string]> = [
  ['imageUrl', 'IMAGE_URL'],
  ['imageSha256', 'IMAGE_SHA256'],
  ['hostname', 'HOSTNAME'],
  ['disk', 'DISK'],
  ['firmware', 'FIRMWARE'],
  ['espSizeMiB', 'ESP_SIZE_MIB'],
  ['rootPasswordHash', 'ROOT_PASSWORD_HASH'],
  ['kernelCmdline', 'KERNEL_CMDLINE'],
  ['installedToken', 'INSTALLED_TOKEN'],
  ['reportUrl', 'REPORT_URL'],
  ['reboot', 'REBOOT'],
  ['selinux', 'SELINUX'],
];

function checkValue(key: string, value: string): string {
  if (/[\r\n\0]/.test(value)) throw new Error(`install config ${key} must be a single line`);
  return value;
}

/** The config document the agent parses: `VERSION=1` then one `KEY=VALUE` per line (value = rest of line). */
export function renderInstallConfig(c: InstallConfig): string {
  const lines = ['# strata install config', `VERSION=${INSTALL_CONFIG_VERSION}`];
  for (const [prop, key] of KEYS) {
    const v = c[prop];
    if (v === undefined || Array.isArray(v)) continue;
    lines.push(`${key}=${checkValue(key, String(v))}`);
  }
  for (const k of c.sshAuthorizedKeys ?? [])
    lines.push(`SSH_AUTHORIZED_KEY=${checkValue('SSH_AUTHORIZED_KEY', k)}`);
  return lines.join('\n') + '\n';
}

/** Inverse of renderInstallConfig, with the agent's rules (comments, CRLF, unknown keys ignored). */
export function parseInstallConfig(text: string): InstallConfig {
  const byKey = new Map(KEYS.map(([p, k]) => [k, p]));
  const out: Record<string, unknown> = {};
  const keys: string[] = [];
  let version: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'VERSION') version = value;
    else if (key === 'SSH_AUTHORIZED_KEY') keys.push(value);
    else {
      const prop = byKey.get(key);
      if (prop) out[prop] = prop === 'espSizeMiB' ? Number(value) : value;
    }
  }
  if (version !== String(INSTALL_CONFIG_VERSION))
    throw new InstallProtocolError(`install config VERSION must be 1`);
  if (typeof out.imageUrl !== 'string' || out.imageUrl === '')
    throw new InstallProtocolError('install config has no IMAGE_URL');
  if (keys.length) out.sshAuthorizedKeys = keys;
  return out as unknown as InstallConfig;
}

/** Steps the agent reports, in order; `failed` status can come with any of them. */
export const INSTALL_STEPS = [
  'agent-start',
  'config',
  'partition',
  'mkfs',
  'download',
  'extract',
  'configure',
  'hostkey',
  'pre-reboot',
  'bootloader',
  'post-reboot',
  'rebooting',
] as const;
export type InstallStep = (typeof INSTALL_STEPS)[number];

/** Body of POST …/events. status: running for progress, done on the last event, failed on error. */
export interface InstallEvent {
  step: InstallStep | string;
  message: string;
  status: 'running' | 'done' | 'failed';
}

export function parseInstallEvent(body: unknown): InstallEvent {
  const b = body as Partial<InstallEvent> | null;
  if (!b || typeof b.step !== 'string' || typeof b.message !== 'string') {
    throw new InstallProtocolError('install event needs string step and message');
  }
  const status = b.status ?? 'running';
  if (status !== 'running' && status !== 'done' && status !== 'failed')
    throw new InstallProtocolError('bad install status');
  return { step: b.step, message: b.message, status };
}

/** Body of POST …/installed, sent by the installed system after its post-reboot script. */
export interface InstalledReport {
  hostname: string;
  kernel: string;
  bootId: string;
  machineId: string;
  /** Exit status of the post-reboot script (0 when there was none). */
  postRebootExit: number;
  /** Global addresses with prefix, e.g. "10.213.0.50/24". */
  addresses: string[];
}

export function parseInstalledReport(body: unknown): InstalledReport {
  const b = body as Partial<InstalledReport> | null;
  if (
    !b ||
    typeof b.hostname !== 'string' ||
    typeof b.kernel !== 'string' ||
    typeof b.postRebootExit !== 'number' ||
    !Array.isArray(b.addresses) ||
    !b.addresses.every((a) => typeof a === 'string')
  ) {
    throw new InstallProtocolError(
      'installed report needs hostname, kernel, postRebootExit and addresses (a list of strings)',
    );
  }
  return {
    hostname: b.hostname,
    kernel: b.kernel,
    bootId: typeof b.bootId === 'string' ? b.bootId : '',
    machineId: typeof b.machineId === 'string' ? b.machineId : '',
    postRebootExit: b.postRebootExit,
    addresses: b.addresses,
  };
}

/** Host keys as posted to …/hostkey: `type base64 [comment]` lines. */
export function parseHostKeys(text: string): Array<{ type: string; key: string; comment?: string }> {
  const keys: Array<{ type: string; key: string; comment?: string }> = [];
  for (const line of text.split('\n')) {
    const [type, key, ...rest] = line.trim().split(/\s+/);
    if (!type || !key || !/^(ssh-|ecdsa-|sk-)/.test(type)) continue;
    keys.push(rest.length ? { type, key, comment: rest.join(' ') } : { type, key });
  }
  return keys;
}
