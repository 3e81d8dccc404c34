/**
 * DNS message framing around dns-packet (which is the codec: nothing here parses wire format by hand).
 * Adds what a server needs on top: classifying a datagram as a usable query or a malformed one, building
 * response headers from a query, EDNS(0) negotiation and UDP truncation (TC bit), and TCP's two-byte
 * length framing. Pure: no I/O.
 */

import type { Answer, DecodedPacket, OptAnswer, Packet } from 'dns-packet';
import dnsPacket from 'dns-packet';

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

export const FLAG_AA = dnsPacket.AUTHORITATIVE_ANSWER;
export const FLAG_TC = dnsPacket.TRUNCATED_RESPONSE;
export const FLAG_RD = dnsPacket.RECURSION_DESIRED;
export const FLAG_RA = dnsPacket.RECURSION_AVAILABLE;
export const FLAG_CD = dnsPacket.CHECKING_DISABLED;
const OPCODE_MASK = 0x7800;

/** Largest UDP answer without EDNS (RFC 1035). */
export const CLASSIC_UDP_LIMIT = 512;
/** Our advertised EDNS UDP payload size (DNS flag day 2020 recommendation). */
export const DEFAULT_EDNS_UDP_SIZE = 1232;

export type DecodeResult =
  | { ok: true; query: DecodedPacket }
  | { ok: false; reason: 'short' | 'undecodable' | 'not-a-query' };

/** Decodes a datagram that should be a query. Never throws. */
export function decodeQuery(buf: Buffer): DecodeResult {
  if (buf.length < 12) return { ok: false, reason: 'short' };
  // QR bit set: a response (or reflection attempt); never answer it.
  if ((buf[2]! & 0x80) !== 0) return { ok: false, reason: 'not-a-query' };
  try {
    return { ok: true, query: dnsPacket.decode(buf) };
  } catch {
    return { ok: false, reason: 'undecodable' };
  }
}

/** The opcode of a decoded packet (0 = QUERY). */
export function opcodeOf(p: DecodedPacket): number {
  return ((p.flags ?? 0) & OPCODE_MASK) >> 11;
}

/** The query's EDNS OPT record, if any. */
export function ednsOf(query: DecodedPacket): OptAnswer | undefined {
  const adds = query.additionals;
  if (!adds) return undefined;
  for (const a of adds) if (a.type === 'OPT') return a as OptAnswer;
  return undefined;
}

/**
 * A response skeleton for `query`: same id, opcode, RD and CD bits, the question echoed, `rcode` in the
 * low four bits. Callers fill answers/authorities.
 */
export function responseFor(query: DecodedPacket, rcode: number, extraFlags = 0): Packet {
  const qf = query.flags ?? 0;
  return {
    id: query.id ?? 0,
    type: 'response',
    flags: (qf & (OPCODE_MASK | FLAG_RD | FLAG_CD)) | extraFlags | (rcode & 0xf),
    questions: query.questions ?? [],
    answers: [],
    authorities: [],
    additionals: [],
  };
}

/** Our OPT record for a response to an EDNS query. */
export function optRecord(udpSize = DEFAULT_EDNS_UDP_SIZE, extendedRcode = 0): OptAnswer {
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize: udpSize,
    extendedRcode,
    ednsVersion: 0,
    flags: 0,
    flag_do: false,
    options: [],
  };
}

export interface EncodeLimits {
  /** UDP payload limit for this response; omit for TCP (65535). */
  udpLimit?: number;
}

/**
 * The UDP payload limit for answering `query`: 512 without EDNS, else the client's advertised size
 * clamped to [512, ourMax].
 */
export function udpLimitFor(query: DecodedPacket, ourMax = DEFAULT_EDNS_UDP_SIZE): number {
  const opt = ednsOf(query);
  if (!opt) return CLASSIC_UDP_LIMIT;
  const size = opt.udpPayloadSize || CLASSIC_UDP_LIMIT;
  return Math.max(CLASSIC_UDP_LIMIT, Math.min(size, ourMax));
}

/**
 * Encodes a response. When it does not fit `udpLimit`, re-encodes it with the TC bit, the question and
 * only the OPT record (RFC 2181 §9: a truncated answer carries no partial RRsets), so the client retries
 * over TCP.
 */
export function encodeResponse(
  packet: Packet,
  limits: EncodeLimits = {},
): { buf: Buffer; truncated: boolean } {
  const buf = dnsPacket.encode(packet);
  const limit = limits.udpLimit ?? 65535;
  if (buf.length <= limit) return { buf, truncated: false };
  const opt = packet.additionals?.filter((a: Answer) => a.type === 'OPT') ?? [];
  const small: Packet = {
    ...packet,
    flags: (packet.flags ?? 0) | FLAG_TC,
    answers: [],
    authorities: [],
    additionals: opt,
  };
  return { buf: dnsPacket.encode(small), truncated: true };
}

/** Prefixes a message with its two-byte length (RFC 1035 §4.2.2 / RFC 7766). */
export function frameTcp(msg: Buffer): Buffer {
  const out = Buffer.allocUnsafe(msg.length + 2);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}

/**
 * Incremental TCP deframer: feed chunks, get whole messages. Linear in the bytes fed however they are
 * split: chunks are queued as they come and each byte is copied at most once, when its message is complete
 * (joining the pending bytes on every chunk would make a message sent one byte at a time quadratic).
 */
export class TcpDeframer {
  private chunks: Buffer[] = [];
  /** Index of the first chunk still queued in `chunks`. */
  private head = 0;
  private size = 0;

  push(chunk: Buffer): Buffer[] {
    if (chunk.length) {
      this.chunks.push(chunk);
      this.size += chunk.length;
    }
    const out: Buffer[] = [];
    while (this.size >= 2) {
      const len = (this.byteAt(0) << 8) | this.byteAt(1);
      if (this.size < len + 2) break;
      out.push(this.take(len + 2).subarray(2));
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  get buffered(): number {
    return this.size;
  }

  private byteAt(i: number): number {
    for (let c = this.head; ; c++) {
      const chunk = this.chunks[c]!;
      if (i < chunk.length) return chunk[i]!;
      i -= chunk.length;
    }
  }

  /** Removes the first `n` queued bytes; a view when they lie in one chunk, else one copy. */
  private take(n: number): Buffer {
    this.size -= n;
    const first = this.chunks[this.head]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks[this.head++] = EMPTY;
      else this.chunks[this.head] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[this.head]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks[this.head++] = EMPTY;
      else this.chunks[this.head] = c.subarray(k);
    }
    return out;
  }
}

const EMPTY = Buffer.alloc(0);
