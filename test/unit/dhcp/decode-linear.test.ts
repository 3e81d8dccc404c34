/**
 * The DHCP decoder does work linear in the datagram: the crafted worst case (one option code repeated in
 * thousands of 1-byte instances, which RFC 3396 says to concatenate) must cost about the same per byte at
 * 4 KiB and at 64 KiB. A quadratic join costs 16 times more per byte at 64 KiB; the factor allowed here is
 * generous (4) so a busy machine does not fail it. Datagrams over the size bound are refused by reason.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DhcpDecodeError,
  decode,
  HEADER_LEN,
  MAGIC_COOKIE,
  MAX_PACKET_LEN,
  Opt,
} from '../../../src/dhcp/codec.ts';

/** A BOOTREQUEST of `size` bytes whose options are option 12 in 1-byte instances, then END. */
export function repeatedOptionPacket(size: number): Buffer {
  const b = Buffer.alloc(size);
  b[0] = 1;
  b[1] = 1;
  b[2] = 6;
  b.writeUInt32BE(MAGIC_COOKIE, 236);
  let i = HEADER_LEN;
  while (i + 3 < size - 1) {
    b[i++] = Opt.HOSTNAME;
    b[i++] = 1;
    b[i++] = 0x61;
  }
  b[i] = Opt.END;
  return b;
}

/** Best-of-several nanoseconds per byte to decode `buf` `reps` times. */
function nsPerByte(buf: Buffer, reps: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 7; round++) {
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < reps; r++) decode(buf, buf.length);
    const ns = Number(process.hrtime.bigint() - t0);
    best = Math.min(best, ns / (reps * buf.length));
  }
  return best;
}

test('decoding repeated options is linear: 64 KiB costs about what 4 KiB costs, per byte', () => {
  const small = repeatedOptionPacket(4 * 1024);
  const large = repeatedOptionPacket(64 * 1024);
  const p = decode(large, large.length);
  const instances = large.subarray(HEADER_LEN).filter((b) => b === Opt.HOSTNAME).length;
  assert.equal(p.options.get(Opt.HOSTNAME)!.length, instances);
  nsPerByte(small, 50); // warm up
  const perByteSmall = nsPerByte(small, 64);
  const perByteLarge = nsPerByte(large, 4);
  const ratio = perByteLarge / perByteSmall;
  assert.ok(
    ratio < 4,
    `64 KiB costs ${ratio.toFixed(1)}x more per byte than 4 KiB (${perByteLarge.toFixed(2)} vs ${perByteSmall.toFixed(2)} ns/byte)`,
  );
});

test('a datagram over the size bound is refused as too-long, one within it decodes', () => {
  assert.throws(
    () => decode(repeatedOptionPacket(64 * 1024)),
    (e: unknown) => e instanceof DhcpDecodeError && e.reason === 'too-long',
  );
  const p = decode(repeatedOptionPacket(MAX_PACKET_LEN));
  assert.ok(p.options.get(Opt.HOSTNAME)!.length > 5000);
});
