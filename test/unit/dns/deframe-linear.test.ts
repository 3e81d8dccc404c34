/**
 * The DNS-over-TCP deframer does work linear in the bytes fed, however a client splits them: a 64 KiB
 * message sent one byte per segment must cost about what a 4 KiB one costs, per byte (joining the pending
 * bytes on each chunk costs 16 times more per byte at 64 KiB; the factor allowed is a generous 4). And it
 * returns exactly the messages that were framed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { frameTcp, TcpDeframer } from '../../../src/dns/codec.ts';

/** Best-of-several nanoseconds per byte to deframe `msg` fed one byte at a time. */
function nsPerByte(msg: Buffer, reps: number): number {
  const framed = frameTcp(msg);
  const bytes = Array.from({ length: framed.length }, (_, i) => framed.subarray(i, i + 1));
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < reps; r++) {
      const d = new TcpDeframer();
      let got = 0;
      for (const b of bytes) got += d.push(b).length;
      assert.equal(got, 1);
    }
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / (reps * framed.length));
  }
  return best;
}

test('a message fed one byte at a time is deframed in linear time', () => {
  const small = Buffer.alloc(4 * 1024, 1);
  const large = Buffer.alloc(65_000, 2);
  nsPerByte(small, 4); // warm up
  const ratio = nsPerByte(large, 1) / nsPerByte(small, 16);
  assert.ok(ratio < 4, `64 KiB costs ${ratio.toFixed(1)}x more per byte than 4 KiB`);
});

test('messages split and joined across chunks come out whole and in order', () => {
  const msgs = [Buffer.from('first'), Buffer.alloc(0), Buffer.alloc(300, 7), Buffer.from('last')];
  const stream = Buffer.concat(msgs.map(frameTcp));
  for (const size of [1, 2, 3, 7, 64, stream.length]) {
    const d = new TcpDeframer();
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i += size) out.push(...d.push(stream.subarray(i, i + size)));
    assert.deepEqual(
      out.map((b) => b.toString('hex')),
      msgs.map((b) => b.toString('hex')),
      `chunks of ${size}`,
    );
    assert.equal(d.buffered, 0);
  }
});
