/**
 * DHCPv4 packet codec: RFC 2131 (BOOTP frame), RFC 2132 (options), RFC 3396 (long options split into
 * several instances are concatenated), option overload (option 52: `file`/`sname` carry options) and the
 * PXE options of RFC 4578 (93 client architecture, 94 network interface id, 97 client machine id), plus
 * the facts firmware actually sends: iPXE puts the raw bytes `iPXE` in option 77 (not the RFC 3004
 * length-prefixed form, so {@link parseUserClass} accepts both) and its own encapsulated option 175.
 *
 * Written for Strata: no maintained TypeScript/JavaScript DHCP library exists (the npm packages are
 * unmaintained, callback-era, and fold socket handling into the codec). Shaped like pixiecore's `dhcp4`
 * package: pure functions, no I/O, so it is tested against captured packets. Decoding copies nothing:
 * option values and `chaddr` are views into the received buffer, addresses are uint32 numbers (cheap to
 * compare and hash in the server's hot path). Malformed input throws {@link DhcpDecodeError}, whose
 * `reason` is a short stable string a caller can use as a metric label.
 */

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const MAGIC_COOKIE = 0x63825363;
/** Fixed BOOTP header (236 bytes) + the magic cookie. */
export const HEADER_LEN = 240;
/** RFC 2131: replies are at least a 300-byte BOOTP frame, some old PXE ROMs insist on it. */
export const MIN_REPLY_LEN = 300;

/** Message types (option 53). */
export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type MessageTypeName = keyof typeof MessageType;
const TYPE_NAMES: (MessageTypeName | undefined)[] = [
  undefined,
  'DISCOVER',
  'OFFER',
  'REQUEST',
  'DECLINE',
  'ACK',
  'NAK',
  'RELEASE',
  'INFORM',
];
export function messageTypeName(t: number): MessageTypeName | undefined {
  return TYPE_NAMES[t];
}

/** Option codes used by Strata. */
export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  BROADCAST: 28,
  VENDOR_SPECIFIC: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAM_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER_NAME: 66,
  BOOTFILE_NAME: 67,
  USER_CLASS: 77,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_UUID: 97,
  IPXE_ENCAP: 175,
  END: 255,
} as const;

export type DecodeErrorReason =
  | 'short'
  | 'bad-op'
  | 'bad-hlen'
  | 'bad-cookie'
  | 'truncated-option'
  | 'no-end'
  | 'bad-overload'
  | 'too-long';

/** Thrown by {@link decode} for any packet that is not a well-formed DHCP message. */
export class DhcpDecodeError extends Error {
  readonly reason: DecodeErrorReason;
  constructor(reason: DecodeErrorReason, message: string) {
    super(message);
    this.name = 'DhcpDecodeError';
    this.reason = reason;
  }
}

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: number;
  yiaddr: number;
  siaddr: number;
  giaddr: number;
  /** The 16-byte chaddr field; the hardware address is its first `hlen` bytes. */
  chaddr: Uint8Array;
  /** Server host name field (empty when overloaded with options or unset). */
  sname: string;
  /** Boot file name field (empty when overloaded with options or unset). */
  file: string;
  /** Options by code; several instances of one code are concatenated (RFC 3396). */
  options: Map<number, Uint8Array>;
}

export const FLAG_BROADCAST = 0x8000;

// ---------------------------------------------------------------- addresses

export function ipToInt(ip: string): number {
  const p = ip.split('.');
  if (p.length !== 4) throw new Error(`not an IPv4 address: ${ip}`);
  let n = 0;
  for (const s of p) {
    const v = Number(s);
    if (!/^\d{1,3}$/.test(s) || v > 255) throw new Error(`not an IPv4 address: ${ip}`);
    n = n * 256 + v;
  }
  return n >>> 0;
}

export function intToIp(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

/** Lower-case, colon separated hardware address (`52:54:00:12:34:56`). */
export function macToString(bytes: Uint8Array, len = bytes.length): string {
  let s = '';
  for (let i = 0; i < len; i++) s += (i ? ':' : '') + HEX[bytes[i]!];
  return s;
}

export function macFromString(mac: string): Uint8Array {
  const parts = mac.split(/[:-]/);
  const out = new Uint8Array(parts.length);
  parts.forEach((p, i) => {
    if (!/^[0-9a-fA-F]{2}$/.test(p)) throw new Error(`not a MAC address: ${mac}`);
    out[i] = Number.parseInt(p, 16);
  });
  return out;
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]!];
  return s;
}

// ---------------------------------------------------------------- decode

const latin1 = new TextDecoder('latin1');

function cString(buf: Uint8Array, start: number, len: number): string {
  let end = start;
  const stop = start + len;
  while (end < stop && buf[end] !== 0) end++;
  return end === start ? '' : latin1.decode(buf.subarray(start, end));
}

/**
 * Largest datagram {@link decode} accepts by default. A DHCP message fits an Ethernet frame (576 bytes is
 * the minimum every client takes, option 57 rarely asks for more than 1500); 16 KiB leaves room for jumbo
 * frames and leaves a fragmented 64 KiB datagram out.
 */
export const MAX_PACKET_LEN = 16 * 1024;

/**
 * Parses one options area, collecting the instances of each code (RFC 3396) into `into`. Linear: the
 * instances are only concatenated once, after every area is read (see {@link joinOptions}).
 */
function parseOptions(buf: Uint8Array, start: number, end: number, into: Map<number, Uint8Array[]>): boolean {
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === Opt.PAD) {
      i++;
      continue;
    }
    if (code === Opt.END) return true;
    if (i + 1 >= end) throw new DhcpDecodeError('truncated-option', `option ${code} has no length byte`);
    const len = buf[i + 1]!;
    const vstart = i + 2;
    if (vstart + len > end) throw new DhcpDecodeError('truncated-option', `option ${code} runs past the end`);
    const value = buf.subarray(vstart, vstart + len);
    const parts = into.get(code);
    if (parts === undefined) into.set(code, [value]);
    else parts.push(value);
    i = vstart + len;
  }
  return false;
}

/** The value of one code: a single instance stays a view into the datagram, several are joined once. */
function joinParts(list: Uint8Array[]): Uint8Array {
  if (list.length === 1) return list[0]!;
  let n = 0;
  for (const v of list) n += v.length;
  const joined = new Uint8Array(n);
  let at = 0;
  for (const v of list) {
    joined.set(v, at);
    at += v.length;
  }
  return joined;
}

/**
 * Decodes a DHCP message (request or reply). Throws {@link DhcpDecodeError} if it is malformed or longer
 * than `maxLength` (default {@link MAX_PACKET_LEN}). A missing END option is tolerated (several firmwares
 * omit it) as long as no option is truncated. Work is linear in the datagram's length.
 */
export function decode(buf: Uint8Array, maxLength = MAX_PACKET_LEN): DhcpPacket {
  if (buf.length < HEADER_LEN) throw new DhcpDecodeError('short', `packet is ${buf.length} bytes`);
  if (buf.length > maxLength) {
    throw new DhcpDecodeError(
      'too-long',
      `packet is ${buf.length} bytes, more than the ${maxLength} accepted`,
    );
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) throw new DhcpDecodeError('bad-op', `op ${op}`);
  const hlen = buf[2]!;
  if (hlen > 16) throw new DhcpDecodeError('bad-hlen', `hlen ${hlen}`);
  if (dv.getUint32(236) !== MAGIC_COOKIE) throw new DhcpDecodeError('bad-cookie', 'no DHCP magic cookie');
  const parts = new Map<number, Uint8Array[]>();
  parseOptions(buf, HEADER_LEN, buf.length, parts);
  let sname = '';
  let file = '';
  const overloadParts = parts.get(Opt.OVERLOAD);
  const overload = overloadParts && joinParts(overloadParts);
  const ov = overload && overload.length === 1 ? overload[0]! : 0;
  if (overload && (overload.length !== 1 || ov < 1 || ov > 3)) {
    throw new DhcpDecodeError('bad-overload', 'option 52 must be one byte 1..3');
  }
  // RFC 2131 4.1: options area first, then `file`, then `sname`.
  if (ov & 1) parseOptions(buf, 108, 236, parts);
  else file = cString(buf, 108, 128);
  if (ov & 2) parseOptions(buf, 44, 108, parts);
  else sname = cString(buf, 44, 64);
  const options = new Map<number, Uint8Array>();
  for (const [code, list] of parts) options.set(code, joinParts(list));
  return {
    op,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: dv.getUint32(4),
    secs: dv.getUint16(8),
    flags: dv.getUint16(10),
    ciaddr: dv.getUint32(12),
    yiaddr: dv.getUint32(16),
    siaddr: dv.getUint32(20),
    giaddr: dv.getUint32(24),
    chaddr: buf.subarray(28, 44),
    sname,
    file,
    options,
  };
}

/** Decodes, returning the error instead of throwing: for callers that count rather than catch. */
export function tryDecode(buf: Uint8Array): DhcpPacket | DhcpDecodeError {
  try {
    return decode(buf);
  } catch (e) {
    if (e instanceof DhcpDecodeError) return e;
    return new DhcpDecodeError('short', String(e));
  }
}

// ---------------------------------------------------------------- option readers

export function getMessageType(p: DhcpPacket): number {
  const v = p.options.get(Opt.MESSAGE_TYPE);
  return v && v.length === 1 ? v[0]! : 0;
}

export function getIpOption(p: DhcpPacket, code: number): number {
  const v = p.options.get(code);
  if (v?.length !== 4) return 0;
  return ((v[0]! << 24) | (v[1]! << 16) | (v[2]! << 8) | v[3]!) >>> 0;
}

export function getStringOption(p: DhcpPacket, code: number): string | undefined {
  const v = p.options.get(code);
  if (!v) return undefined;
  // Some clients NUL-terminate strings; drop trailing NULs.
  let end = v.length;
  while (end > 0 && v[end - 1] === 0) end--;
  return latin1.decode(v.subarray(0, end));
}

/**
 * Option 77, user class. RFC 3004 says a sequence of (length, data) instances; iPXE and many other
 * clients send one raw string instead. A value is taken as RFC 3004 only if its instances are all
 * non-empty and add up exactly to its length, else it is one raw string.
 */
export function parseUserClass(v: Uint8Array | undefined): string[] {
  if (!v || v.length === 0) return [];
  const out: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i]!;
    if (len === 0 || i + 1 + len > v.length) return [latin1.decode(v)];
    out.push(latin1.decode(v.subarray(i + 1, i + 1 + len)));
    i += 1 + len;
  }
  return out;
}

/** Option 93 (RFC 4578): a list of 16-bit architecture types; the first is the one that counts. */
export function parseClientArch(v: Uint8Array | undefined): number | null {
  if (!v || v.length < 2) return null;
  return (v[0]! << 8) | v[1]!;
}

/** Option 97 (RFC 4578): type 0 then a 16-byte GUID, formatted as an SMBIOS UUID. */
export function parseClientUuid(v: Uint8Array | undefined): string | undefined {
  if (v?.length !== 17 || v[0] !== 0) return undefined;
  const h = toHex(v.subarray(1));
  // SMBIOS stores the first three fields little-endian.
  const le = (s: string) => s.match(/../g)!.reverse().join('');
  return `${le(h.slice(0, 8))}-${le(h.slice(8, 12))}-${le(h.slice(12, 16))}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function parseParamRequestList(v: Uint8Array | undefined): number[] {
  return v ? Array.from(v) : [];
}

// ---------------------------------------------------------------- encode

export interface EncodeFields {
  op: number;
  htype?: number;
  hlen?: number;
  hops?: number;
  xid: number;
  secs?: number;
  flags?: number;
  ciaddr?: number;
  yiaddr?: number;
  siaddr?: number;
  giaddr?: number;
  chaddr: Uint8Array;
  sname?: string;
  file?: string;
}

/** Option values for encoding, written in insertion order (keep 53 first). */
export type OptionList = [code: number, value: Uint8Array][];

export function ipBytes(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}
export function ipListBytes(list: number[]): Uint8Array {
  const out = new Uint8Array(list.length * 4);
  for (let i = 0; i < list.length; i++) out.set(ipBytes(list[i]!), i * 4);
  return out;
}
export function u32Bytes(n: number): Uint8Array {
  return ipBytes(n >>> 0);
}
const encoder = new TextEncoder();
export function strBytes(s: string): Uint8Array {
  return encoder.encode(s);
}

function writeCString(buf: Buffer, at: number, max: number, s: string | undefined): void {
  if (!s) return;
  const n = buf.write(s, at, max, 'latin1');
  if (n >= max) throw new Error(`field too long (max ${max - 1}): ${s}`);
}

/** Size the options need, with RFC 3396 splitting of values longer than 255 bytes. */
function optionsSize(options: OptionList): number {
  let n = 1; // END
  for (const [, v] of options) n += v.length === 0 ? 2 : v.length + 2 * Math.ceil(v.length / 255);
  return n;
}

/**
 * Encodes a DHCP message into a fresh buffer (the reply buffer: the only allocation a reply needs).
 * Values longer than 255 bytes are split into several instances (RFC 3396). The frame is padded to
 * {@link MIN_REPLY_LEN}.
 */
export function encode(f: EncodeFields, options: OptionList): Buffer {
  const len = Math.max(MIN_REPLY_LEN, HEADER_LEN + optionsSize(options));
  const buf = Buffer.alloc(len);
  buf[0] = f.op;
  buf[1] = f.htype ?? 1;
  buf[2] = f.hlen ?? 6;
  buf[3] = f.hops ?? 0;
  buf.writeUInt32BE(f.xid >>> 0, 4);
  buf.writeUInt16BE(f.secs ?? 0, 8);
  buf.writeUInt16BE(f.flags ?? 0, 10);
  buf.writeUInt32BE((f.ciaddr ?? 0) >>> 0, 12);
  buf.writeUInt32BE((f.yiaddr ?? 0) >>> 0, 16);
  buf.writeUInt32BE((f.siaddr ?? 0) >>> 0, 20);
  buf.writeUInt32BE((f.giaddr ?? 0) >>> 0, 24);
  buf.set(f.chaddr.subarray(0, 16), 28);
  writeCString(buf, 44, 64, f.sname);
  writeCString(buf, 108, 128, f.file);
  buf.writeUInt32BE(MAGIC_COOKIE, 236);
  let i = HEADER_LEN;
  for (const [code, v] of options) {
    if (v.length === 0) {
      buf[i++] = code;
      buf[i++] = 0;
      continue;
    }
    for (let off = 0; off < v.length; off += 255) {
      const chunk = Math.min(255, v.length - off);
      buf[i++] = code;
      buf[i++] = chunk;
      buf.set(v.subarray(off, off + chunk), i);
      i += chunk;
    }
  }
  buf[i] = Opt.END;
  return buf;
}
