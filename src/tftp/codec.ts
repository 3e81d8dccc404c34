/**
 * TFTP packet codec and option negotiation: pure functions, no I/O.
 *
 * Covers RFC 1350 (RRQ, WRQ, DATA, ACK, ERROR), RFC 2347 (option extension, OACK), RFC 2348 (blksize
 * 8..65464), RFC 2349 (timeout 1..255 s, tsize) and RFC 7440 (windowsize 1..65535).
 *
 * Why it is written here rather than imported: no maintained TypeScript/Node TFTP server library exists (the
 * npm packages that do exist are unmaintained for years, lack windowsize and are callback-era JavaScript), and
 * the protocol is small enough that owning it — with its edge cases pinned by tests against the RFC examples —
 * is cheaper than adopting and auditing one. The server (`server.ts`) is the only I/O around it.
 *
 * Shape: `decode()` never throws anything but `TftpDecodeError` (with a machine-readable `reason`, so the
 * server can drop and count malformed packets per reason); encoders return fresh Buffers except
 * `writeDataHeader`, which the server's hot path uses to fill reused buffers. Option names are matched
 * case-insensitively and kept lower-cased in a `Map` (a `Map`, not an object, so a client cannot name an
 * option `__proto__`). Block numbers are 16-bit on the wire; the server keeps absolute counters and wraps
 * to 0 after 65535 (the convention of tftp-hpa, iPXE and most firmware).
 */

export const OPCODE = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** RFC 1350 / RFC 2347 error codes. */
export const ERROR_CODE = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_NEGOTIATION: 8,
} as const;

export const DEFAULT_BLKSIZE = 512;
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;
export const MIN_TIMEOUT_S = 1;
export const MAX_TIMEOUT_S = 255;
export const MIN_WINDOWSIZE = 1;
export const MAX_WINDOWSIZE = 65535;

export type Mode = 'netascii' | 'octet' | 'mail';

export interface RequestPacket {
  type: 'rrq' | 'wrq';
  filename: string;
  mode: Mode;
  /** Lower-cased option name → value, in the order the client sent them (first occurrence wins). */
  options: Map<string, string>;
}
export interface DataPacket {
  type: 'data';
  block: number;
  /** A view into the decoded datagram, not a copy. */
  data: Buffer;
}
export interface AckPacket {
  type: 'ack';
  block: number;
}
export interface ErrorPacket {
  type: 'error';
  code: number;
  message: string;
}
export interface OackPacket {
  type: 'oack';
  options: Map<string, string>;
}
export type Packet = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

export type DecodeFailure =
  | 'short' // fewer bytes than the opcode's fixed header
  | 'opcode' // unknown opcode
  | 'unterminated' // a string field without its NUL
  | 'filename' // empty filename or not valid UTF-8
  | 'mode' // not netascii / octet / mail
  | 'option' // option without a value, or empty option name followed by non-padding
  | 'length'; // DATA longer than the largest blksize

/** The only error `decode()` throws. `reason` is a fixed label, safe to use as a metric label. */
export class TftpDecodeError extends Error {
  readonly reason: DecodeFailure;
  constructor(reason: DecodeFailure, message: string) {
    super(message);
    this.name = 'TftpDecodeError';
    this.reason = reason;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The block number of an ACK (a transfer's every other datagram), read without building a packet; -1 for
 * anything else, including an ACK too short to hold one (`decode` says what is wrong with those).
 */
export function ackBlock(b: Uint8Array): number {
  return b.length >= 4 && b[0] === 0 && b[1] === OPCODE.ACK ? (b[2]! << 8) | b[3]! : -1;
}

/** Decodes one TFTP datagram. Throws `TftpDecodeError` on anything malformed; never anything else. */
export function decode(buf: Uint8Array): Packet {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 2) throw new TftpDecodeError('short', `packet of ${b.length} bytes has no opcode`);
  const op = b.readUInt16BE(0);
  switch (op) {
    case OPCODE.RRQ:
    case OPCODE.WRQ:
      return decodeRequest(b, op === OPCODE.RRQ ? 'rrq' : 'wrq');
    case OPCODE.DATA:
      if (b.length < 4) throw new TftpDecodeError('short', 'DATA shorter than 4 bytes');
      if (b.length > 4 + MAX_BLKSIZE) throw new TftpDecodeError('length', 'DATA longer than blksize 65464');
      return { type: 'data', block: b.readUInt16BE(2), data: b.subarray(4) };
    case OPCODE.ACK:
      // Trailing bytes after the block number are ignored (some firmware pads); the block number is what counts.
      if (b.length < 4) throw new TftpDecodeError('short', 'ACK shorter than 4 bytes');
      return { type: 'ack', block: b.readUInt16BE(2) };
    case OPCODE.ERROR: {
      if (b.length < 4) throw new TftpDecodeError('short', 'ERROR shorter than 4 bytes');
      // Lenient: a missing terminating NUL on the message is tolerated; an error ends the transfer anyway.
      const end = b.indexOf(0, 4);
      const message = b.toString('utf8', 4, end === -1 ? b.length : end);
      return { type: 'error', code: b.readUInt16BE(2), message };
    }
    case OPCODE.OACK:
      return { type: 'oack', options: decodeOptions(readFields(b, 2), 0) };
    default:
      throw new TftpDecodeError('opcode', `unknown opcode ${op}`);
  }
}

/** Splits NUL-terminated fields starting at `from`. The last field must be terminated. */
function readFields(b: Buffer, from: number): Buffer[] {
  const fields: Buffer[] = [];
  let pos = from;
  while (pos < b.length) {
    const end = b.indexOf(0, pos);
    if (end === -1) throw new TftpDecodeError('unterminated', 'string field without terminating NUL');
    fields.push(b.subarray(pos, end));
    pos = end + 1;
  }
  return fields;
}

function decodeRequest(b: Buffer, type: 'rrq' | 'wrq'): RequestPacket {
  const fields = readFields(b, 2);
  if (fields.length < 2) {
    throw new TftpDecodeError(
      fields.length === 0 ? 'short' : 'unterminated',
      'request needs filename and mode',
    );
  }
  const [rawName, rawMode] = fields as [Buffer, Buffer];
  if (rawName.length === 0) throw new TftpDecodeError('filename', 'empty filename');
  let filename: string;
  try {
    filename = utf8.decode(rawName);
  } catch {
    throw new TftpDecodeError('filename', 'filename is not valid UTF-8');
  }
  const mode = rawMode.toString('latin1').toLowerCase();
  if (mode !== 'netascii' && mode !== 'octet' && mode !== 'mail') {
    throw new TftpDecodeError('mode', `unknown mode ${JSON.stringify(mode.slice(0, 32))}`);
  }
  return { type, filename, mode, options: decodeOptions(fields, 2) };
}

function decodeOptions(fields: Buffer[], start: number): Map<string, string> {
  const options = new Map<string, string>();
  for (let i = start; i < fields.length; i += 2) {
    const name = fields[i]!;
    if (name.length === 0) {
      // NUL padding after the last option (seen from some PXE ROMs): fine if nothing but padding follows.
      if (fields.slice(i).every((f) => f.length === 0)) break;
      throw new TftpDecodeError('option', 'empty option name');
    }
    const value = fields[i + 1];
    if (value === undefined) throw new TftpDecodeError('option', 'option without a value');
    const key = name.toString('latin1').toLowerCase();
    if (!options.has(key)) options.set(key, value.toString('latin1'));
  }
  return options;
}

function optionBytes(options: Iterable<[string, string]>): Buffer[] {
  const parts: Buffer[] = [];
  for (const [k, v] of options) parts.push(Buffer.from(k + '\0' + v + '\0', 'latin1'));
  return parts;
}

function opcodeBytes(op: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(op, 0);
  return b;
}

export function encodeRequest(
  type: 'rrq' | 'wrq',
  filename: string,
  mode: Mode = 'octet',
  options: Iterable<[string, string]> = [],
): Buffer {
  return Buffer.concat([
    opcodeBytes(type === 'rrq' ? OPCODE.RRQ : OPCODE.WRQ),
    Buffer.from(filename, 'utf8'),
    Buffer.from([0]),
    Buffer.from(mode + '\0', 'latin1'),
    ...optionBytes(options),
  ]);
}

/** Writes opcode DATA and the (wrapped) block number into the first 4 bytes of `target`. */
export function writeDataHeader(target: Buffer, block: number): void {
  target.writeUInt16BE(OPCODE.DATA, 0);
  target.writeUInt16BE(block & 0xffff, 2);
}

/**
 * Every DATA packet of `bytes` at `blksize`, blocks 1..blockCount (the last one short, empty when the size
 * is a multiple of blksize): one allocation, each packet a view into it. A packet's bytes depend only on
 * its block number, so one set serves every transfer of the same file; the server sends them as they are.
 */
export function encodeDataPackets(bytes: Uint8Array, blksize: number): Buffer[] {
  const blocks = blockCount(bytes.length, blksize);
  const all = Buffer.allocUnsafe(bytes.length + 4 * blocks);
  const packets: Buffer[] = new Array(blocks);
  for (let k = 1, at = 0; k <= blocks; k++) {
    const from = (k - 1) * blksize;
    const len = Math.min(blksize, bytes.length - from);
    const p = all.subarray(at, at + 4 + len);
    writeDataHeader(p, k);
    p.set(bytes.subarray(from, from + len), 4);
    packets[k - 1] = p;
    at += 4 + len;
  }
  return packets;
}

export function encodeData(block: number, data: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(4 + data.length);
  writeDataHeader(b, block);
  b.set(data, 4);
  return b;
}

export function encodeAck(block: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt16BE(OPCODE.ACK, 0);
  b.writeUInt16BE(block & 0xffff, 2);
  return b;
}

export function encodeError(code: number, message: string): Buffer {
  const msg = Buffer.from(message, 'utf8');
  const b = Buffer.allocUnsafe(5 + msg.length);
  b.writeUInt16BE(OPCODE.ERROR, 0);
  b.writeUInt16BE(code, 2);
  msg.copy(b, 4);
  b[4 + msg.length] = 0;
  return b;
}

export function encodeOack(options: Iterable<[string, string]>): Buffer {
  return Buffer.concat([opcodeBytes(OPCODE.OACK), ...optionBytes(options)]);
}

export function encode(p: Packet): Buffer {
  switch (p.type) {
    case 'rrq':
    case 'wrq':
      return encodeRequest(p.type, p.filename, p.mode, p.options);
    case 'data':
      return encodeData(p.block, p.data);
    case 'ack':
      return encodeAck(p.block);
    case 'error':
      return encodeError(p.code, p.message);
    case 'oack':
      return encodeOack(p.options);
  }
}

/** What the server is willing to agree to. */
export interface NegotiationLimits {
  /** Largest blksize the server accepts (≤ 65464); larger requests are lowered to it (RFC 2348 allows that). */
  maxBlksize: number;
  /** Largest windowsize; larger requests are lowered to it (RFC 7440 allows that). 0 or 1 refuses the option. */
  maxWindowsize: number;
  /** Optional cap on blksize × windowsize (memory per transfer, burst size on the wire). */
  maxWindowBytes?: number;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  /** Retransmission timeout the client asked for (RFC 2349), in ms; undefined = server default. */
  timeoutMs: number | undefined;
  /** Options to acknowledge in an OACK, in the client's order. Empty: send no OACK, start with DATA 1. */
  oack: Map<string, string>;
}

const DECIMAL = /^[0-9]{1,10}$/;

function parseDecimal(v: string): number | undefined {
  return DECIMAL.test(v) ? Number(v) : undefined;
}

/**
 * Agrees on options for a read request (RFC 2347): unknown or invalid options are left out of the OACK
 * (the client then uses the defaults), out-of-range blksize/windowsize requests are lowered to the server's
 * limits, timeout is echoed unchanged or refused, tsize is answered with `fileSize`.
 */
export function negotiate(
  requested: Map<string, string>,
  fileSize: number,
  limits: NegotiationLimits,
): Negotiated {
  const maxBlksize = Math.max(MIN_BLKSIZE, Math.min(MAX_BLKSIZE, limits.maxBlksize));
  let blksize = DEFAULT_BLKSIZE;
  let windowsize = 1;
  let timeoutMs: number | undefined;
  const oack = new Map<string, string>();
  for (const [name, value] of requested) {
    const n = parseDecimal(value);
    switch (name) {
      case 'blksize':
        if (n === undefined || n < MIN_BLKSIZE) break;
        blksize = Math.min(n, maxBlksize);
        oack.set(name, String(blksize));
        break;
      case 'timeout':
        if (n === undefined || n < MIN_TIMEOUT_S || n > MAX_TIMEOUT_S) break;
        timeoutMs = n * 1000;
        oack.set(name, String(n));
        break;
      case 'tsize':
        if (n === undefined) break;
        oack.set(name, String(fileSize));
        break;
      case 'windowsize':
        if (n === undefined || n < MIN_WINDOWSIZE || n > MAX_WINDOWSIZE || limits.maxWindowsize < 1) break;
        windowsize = Math.min(n, limits.maxWindowsize);
        oack.set(name, String(windowsize));
        break;
    }
  }
  if (limits.maxWindowBytes !== undefined && windowsize * blksize > limits.maxWindowBytes) {
    windowsize = Math.max(1, Math.floor(limits.maxWindowBytes / blksize));
    if (oack.has('windowsize')) oack.set('windowsize', String(windowsize));
  }
  return { blksize, windowsize, timeoutMs, oack };
}

/** Number of DATA blocks for a file: the last one is always short, so exact multiples end with an empty block. */
export function blockCount(size: number, blksize: number): number {
  return Math.floor(size / blksize) + 1;
}
