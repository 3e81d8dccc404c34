/**
 * The iPXE script a boot medium carries (pure: input in, script text out). It brings one network
 * interface up — by DHCP, or with a static address for networks without DHCP — and chains to Strata's
 * per-machine HTTP script (`/boot/ipxe?mac=…`), adding the site's enrolment token (and the node's name
 * when the medium was made for one). Failures loop back after a pause, so a stick left in a machine whose
 * server is still starting boots once the server answers.
 *
 * Every value is checked before it lands in the script: iPXE expands `${…}` and splits on whitespace,
 * `||`, `&&`, `;` and `#` (see src/ipxe/script.ts), so only addresses, a URL without those characters, a
 * base64url token and a DNS-label node name get in.
 */
import { isIPv4 } from 'node:net';

export interface StaticAddress {
  address: string;
  prefix: number;
  gateway: string;
  dns?: string;
}

export interface MediaScriptInput {
  /** Strata's boot HTTP server as the machine reaches it, e.g. `http://10.213.0.1:8080`. */
  baseUrl: string;
  network: string;
  /** The site's enrolment token for this network. */
  token: string;
  node?: string;
  static?: StaticAddress;
}

/** A value that cannot go into a media script; `field` names the option to fix. */
export class MediaInputError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'MediaInputError';
    this.field = field;
  }
}

/** Parses `--static ADDR/PREFIX/GATEWAY[/DNS]`, e.g. `192.168.7.50/24/192.168.7.1/192.168.7.1`. */
export function parseStatic(text: string): StaticAddress {
  const [address, prefix, gateway, dns, ...rest] = text.split('/');
  const fix = 'give ADDRESS/PREFIX/GATEWAY[/DNS], e.g. 192.168.7.50/24/192.168.7.1/192.168.7.1';
  if (rest.length || !address || !prefix || !gateway) throw new MediaInputError('--static', fix);
  if (!isIPv4(address)) throw new MediaInputError('--static', `${address} is not an IPv4 address; ${fix}`);
  const p = Number(prefix);
  if (!/^\d+$/.test(prefix) || p < 1 || p > 31)
    throw new MediaInputError('--static', `prefix ${prefix} must be 1..31; ${fix}`);
  if (!isIPv4(gateway)) throw new MediaInputError('--static', `gateway ${gateway} is not an IPv4 address`);
  if (dns !== undefined && !isIPv4(dns))
    throw new MediaInputError('--static', `DNS ${dns} is not an IPv4 address`);
  return { address, prefix: p, gateway, ...(dns ? { dns } : {}) };
}

function netmask(prefix: number): string {
  const m = (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

export function renderMediaScript(i: MediaScriptInput): string {
  if (!/^https?:\/\/[A-Za-z0-9.:[\]-]+$/.test(i.baseUrl))
    throw new MediaInputError('baseUrl', `${JSON.stringify(i.baseUrl)} is not http(s)://HOST[:PORT]`);
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(i.token))
    throw new MediaInputError('token', 'an enrolment token is 16..128 base64url characters');
  if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(i.network))
    throw new MediaInputError('network', `${JSON.stringify(i.network)} is not a resource name`);
  if (i.node !== undefined && !/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(i.node))
    throw new MediaInputError('--node', `${JSON.stringify(i.node)} is not a resource name`);
  const s = i.static;
  if (s) parseStatic(`${s.address}/${s.prefix}/${s.gateway}${s.dns ? `/${s.dns}` : ''}`);
  const nic = s ? 'net0' : 'netX';
  const query = [
    `mac=\${${nic}/mac}`,
    'media=1',
    `network=${i.network}`,
    ...(i.node ? [`node=${i.node}`] : []),
    `token=${i.token}`,
  ].join('&');
  const up = s
    ? [
        'ifopen net0 || goto retry',
        `set net0/ip ${s.address}`,
        `set net0/netmask ${netmask(s.prefix)}`,
        `set net0/gateway ${s.gateway}`,
        ...(s.dns ? [`set dns ${s.dns}`] : []),
      ]
    : ['dhcp || goto retry'];
  return [
    '#!ipxe',
    `echo Strata boot media: network ${i.network}${i.node ? `, node ${i.node}` : ''}`,
    ':start',
    ...up,
    `echo Strata: chaining to ${i.baseUrl}/boot/ipxe as \${${nic}/mac}`,
    `chain --autofree ${i.baseUrl}/boot/ipxe?${query} || goto retry`,
    ':retry',
    'echo Strata: no boot script yet, retrying in 10 s',
    'sleep 10',
    'goto start',
    '',
  ].join('\n');
}
