/**
 * WireGuard: key pairs and rendered configurations. Keys are X25519 pairs from node:crypto (the same
 * curve and encoding `wg genkey`/`wg pubkey` use, which the unit test checks against the real tool), so
 * Strata needs no binary to make them. Rendering is pure: one peer list per member, from which both a
 * wg-quick file (with Address and, on a hub, forwarding) and a `wg setconf` file (the kernel/UAPI subset)
 * are written, because nodes with wg-quick and the userspace wireguard-go on bare `wg` need both.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';

export interface WgKeyPair {
  privateKey: string;
  publicKey: string;
}

/** PKCS#8 header of an X25519 private key (RFC 8410); the 32 raw key bytes follow. */
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const b64 = (u: string) => Buffer.from(u, 'base64url').toString('base64');

export function generateWgKeyPair(): WgKeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return { privateKey: b64(jwk.d!), publicKey: b64(jwk.x!) };
}

/** The public key of a base64 private key (what `wg pubkey` prints). */
export function wgPublicKey(privateKey: string): string {
  const raw = Buffer.from(privateKey, 'base64');
  if (raw.length !== 32)
    throw new Error('invalid WireGuard private key: expected 32 bytes in base64 (wg genkey)');
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: 'der', type: 'pkcs8' });
  return b64(createPublicKey(key).export({ format: 'jwk' }).x!);
}

export interface WgPeer {
  /** Node name, for comments and tests; not part of WireGuard's own format. */
  name: string;
  publicKey: string;
  allowedIps: readonly string[];
  endpoint?: string;
  persistentKeepalive?: number;
}

export interface WgInterface {
  privateKey: string;
  /** Overlay address with prefix (`10.77.0.2/24`). */
  address: string;
  listenPort: number;
  peers: readonly WgPeer[];
  /** The hub forwards between spokes. */
  forward?: boolean;
}

function peerLines(p: WgPeer): string[] {
  const lines = [
    `# ${p.name}`,
    '[Peer]',
    `PublicKey = ${p.publicKey}`,
    `AllowedIPs = ${p.allowedIps.join(', ')}`,
  ];
  if (p.endpoint) lines.push(`Endpoint = ${p.endpoint}`);
  if (p.persistentKeepalive) lines.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
  return lines;
}

/** The `wg setconf` / `wg syncconf` form: no Address, no hooks. */
export function renderWgSetconf(i: WgInterface): string {
  const out = ['[Interface]', `PrivateKey = ${i.privateKey}`, `ListenPort = ${i.listenPort}`];
  for (const p of i.peers) out.push('', ...peerLines(p));
  return `${out.join('\n')}\n`;
}

/** The wg-quick form: the interface address, and IP forwarding on a hub. */
export function renderWgQuick(i: WgInterface): string {
  const out = [
    '[Interface]',
    `PrivateKey = ${i.privateKey}`,
    `Address = ${i.address}`,
    `ListenPort = ${i.listenPort}`,
  ];
  if (i.forward) out.push('PostUp = sysctl -qw net.ipv4.ip_forward=1');
  for (const p of i.peers) out.push('', ...peerLines(p));
  return `${out.join('\n')}\n`;
}
