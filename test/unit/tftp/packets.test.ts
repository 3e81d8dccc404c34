import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blockCount } from '../../../src/tftp/codec.ts';
import { PacketSets } from '../../../src/tftp/packets.ts';

const cost = (file: Uint8Array, blksize: number) => file.length + 4 * blockCount(file.length, blksize);

describe('tftp packet sets (ready-made DATA of in-memory files)', () => {
  it('transfers of one file at one blksize share one set; another blksize is another set', () => {
    const sets = new PacketSets(1 << 20);
    const file = Buffer.alloc(10_000, 1);
    const a = sets.acquire(file, 512);
    const b = sets.acquire(file, 512);
    assert.ok(a);
    assert.equal(a, b);
    assert.equal(a.packets.length, blockCount(10_000, 512));
    assert.equal(sets.heldBytes, cost(file, 512));
    const c = sets.acquire(file, 1428);
    assert.notEqual(c, a);
    assert.equal(sets.heldBytes, cost(file, 512) + cost(file, 1428));
  });

  it('holds no more than its budget: a set that does not fit is not built (the transfer reads instead)', () => {
    const file = Buffer.alloc(10_000);
    const sets = new PacketSets(cost(file, 512) + 100);
    const a = sets.acquire(file, 512);
    assert.ok(a);
    assert.equal(sets.acquire(file, 1000), undefined, 'the budget is used by a set in use');
    assert.equal(sets.heldBytes, cost(file, 512));
    assert.equal(new PacketSets(0).acquire(file, 512), undefined);
  });

  it('a set nobody uses stays for the next transfer, and is dropped when a new one needs its room', () => {
    const file = Buffer.alloc(10_000);
    const other = Buffer.alloc(10_000);
    const sets = new PacketSets(cost(file, 512) + 100);
    const a = sets.acquire(file, 512)!;
    sets.release(a);
    assert.equal(sets.acquire(file, 512), a, 'kept while idle');
    sets.release(a);
    const b = sets.acquire(other, 512);
    assert.ok(b, 'the idle set made room');
    assert.equal(sets.heldBytes, cost(other, 512));
    assert.notEqual(sets.acquire(file, 512), a, 'the dropped set is not handed out again');
  });
});
