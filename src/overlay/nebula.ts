/**
 * Nebula, with Strata as the CA. Keys and certificates are made by Debian's own `nebula-cert` (1.6.1) in a
 * private temporary directory that is removed at once, so Strata never re-implements Nebula's certificate
 * format; what comes back is kept by the caller in the store's secret records. Renewal is a pure decision
 * on recorded expiry times (a certificate is re-signed when a third of its lifetime is left; the CA is
 * replaced the same way, and members trust the old and the new CA until the old one expires), and each
 * member's `config.yml` is rendered by a pure function with the PKI inline, so one file is all a member needs.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';

const run = promisify(execFile);

export interface NebulaCa {
  cert: string;
  key: string;
  fingerprint: string;
  notBefore: string;
  notAfter: string;
}

export interface NebulaCert {
  cert: string;
  key: string;
  fingerprint: string;
  /** The overlay address with its prefix, as signed (`10.77.0.2/24`). */
  ip: string;
  groups: string[];
  notBefore: string;
  notAfter: string;
}

export interface PrintedCert {
  details: {
    groups: string[];
    ips: string[];
    isCa: boolean;
    issuer: string;
    name: string;
    notAfter: string;
    notBefore: string;
  };
  fingerprint: string;
}

async function inTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-nebula-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function nebulaCert(args: string[]): Promise<string> {
  try {
    return (await run('nebula-cert', args, { encoding: 'utf8' })).stdout;
  } catch (e) {
    const err = e as { code?: string; stderr?: string; message: string };
    if (err.code === 'ENOENT')
      throw new Error('nebula-cert not found: install Debian package "nebula" (scripts/setup.sh)');
    throw new Error(`nebula-cert ${args[0]} failed: ${(err.stderr ?? err.message).trim()}`);
  }
}

/** What `nebula-cert print -json` says about a certificate. */
export async function printCert(pem: string): Promise<PrintedCert> {
  return inTempDir(async (dir) => {
    await writeFile(join(dir, 'c.crt'), pem);
    return JSON.parse(await nebulaCert(['print', '-json', '-path', join(dir, 'c.crt')])) as PrintedCert;
  });
}

/** A new CA for an overlay. `lifetimeSeconds` counts from now. */
export async function createCa(name: string, lifetimeSeconds: number): Promise<NebulaCa> {
  return inTempDir(async (dir) => {
    const crt = join(dir, 'ca.crt');
    const key = join(dir, 'ca.key');
    await nebulaCert([
      'ca',
      '-name',
      name,
      '-duration',
      `${lifetimeSeconds}s`,
      '-out-crt',
      crt,
      '-out-key',
      key,
    ]);
    const cert = await readFile(crt, 'utf8');
    const p = await printCert(cert);
    return {
      cert,
      key: await readFile(key, 'utf8'),
      fingerprint: p.fingerprint,
      notBefore: p.details.notBefore,
      notAfter: p.details.notAfter,
    };
  });
}

/**
 * A fresh key pair and a certificate signed by `ca` for one member. The lifetime is cut to end a minute
 * before the CA's, because nebula-cert refuses to sign past its CA.
 */
export async function signMember(
  ca: NebulaCa,
  member: { name: string; ip: string; groups: readonly string[]; lifetimeSeconds: number },
  now: Date = new Date(),
): Promise<NebulaCert> {
  const caLeft = Math.floor((Date.parse(ca.notAfter) - now.getTime()) / 1000) - 60;
  const lifetime = Math.min(member.lifetimeSeconds, caLeft);
  if (lifetime <= 0)
    throw new Error(`CA ${ca.fingerprint.slice(0, 12)} has expired: make a new CA before signing`);
  return inTempDir(async (dir) => {
    const f = (n: string) => join(dir, n);
    await writeFile(f('ca.crt'), ca.cert);
    await writeFile(f('ca.key'), ca.key, { mode: 0o600 });
    await nebulaCert(['keygen', '-out-key', f('host.key'), '-out-pub', f('host.pub')]);
    const args = [
      'sign',
      '-ca-crt',
      f('ca.crt'),
      '-ca-key',
      f('ca.key'),
      '-name',
      member.name,
      '-ip',
      member.ip,
    ];
    if (member.groups.length) args.push('-groups', member.groups.join(','));
    args.push('-duration', `${lifetime}s`, '-in-pub', f('host.pub'), '-out-crt', f('host.crt'));
    await nebulaCert(args);
    const cert = await readFile(f('host.crt'), 'utf8');
    const p = await printCert(cert);
    return {
      cert,
      key: await readFile(f('host.key'), 'utf8'),
      fingerprint: p.fingerprint,
      ip: member.ip,
      groups: [...member.groups],
      notBefore: p.details.notBefore,
      notAfter: p.details.notAfter,
    };
  });
}

/** True when a third (or less) of the validity between `notBefore` and `notAfter` is left. */
export function needsRenewal(c: { notBefore: string; notAfter: string }, now: Date = new Date()): boolean {
  const start = Date.parse(c.notBefore);
  const end = Date.parse(c.notAfter);
  return now.getTime() >= end - (end - start) / 3;
}

export interface NebulaConfigInput {
  /** Every CA the member trusts (PEM), the newest last. */
  caCerts: readonly string[];
  cert: string;
  key: string;
  amLighthouse: boolean;
  /** The lighthouse's overlay address and where it is reached on the underlay. */
  lighthouse: { address: string; host: string; port: number };
  listenPort: number;
  /** Groups whose members may reach this host over the overlay. */
  groups: readonly string[];
  /** Fingerprints of revoked certificates. */
  blocklist: readonly string[];
  tunDevice: string;
}

/** A member's (or the lighthouse's) `config.yml`. Pure; the PKI is inline, so it is a secret as a whole. */
export function renderNebulaConfig(c: NebulaConfigInput): string {
  const inbound = c.groups.map((g) => ({ port: 'any', proto: 'any', group: g }));
  const config = {
    pki: {
      ca: c.caCerts.map((p) => p.trim()).join('\n') + '\n',
      cert: c.cert,
      key: c.key,
      blocklist: [...c.blocklist],
      // A blocklisted or expired certificate loses its open tunnels too, not only new handshakes.
      disconnect_invalid: true,
    },
    static_host_map: c.amLighthouse
      ? {}
      : { [c.lighthouse.address]: [`${c.lighthouse.host}:${c.lighthouse.port}`] },
    lighthouse: {
      am_lighthouse: c.amLighthouse,
      interval: 60,
      hosts: c.amLighthouse ? [] : [c.lighthouse.address],
    },
    listen: { host: '0.0.0.0', port: c.amLighthouse ? c.lighthouse.port : c.listenPort },
    punchy: { punch: true },
    tun: { disabled: false, dev: c.tunDevice, mtu: 1300 },
    logging: { level: 'info', format: 'text' },
    firewall: {
      conntrack: { tcp_timeout: '12m', udp_timeout: '3m', default_timeout: '10m' },
      outbound: [{ port: 'any', proto: 'any', host: 'any' }],
      inbound,
    },
  };
  return `# Rendered by Strata; holds this host's private key.\n${stringify(config, { lineWidth: 0 })}`;
}
