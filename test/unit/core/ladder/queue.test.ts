/**
 * The ladder's keyed work queue and its backoff: backoff grows and stays capped; the queue dedupes keys,
 * runs one key at a time, and the earliest delay wins.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffMs, WorkQueue } from '../../../../src/core/ladder/queue.ts';

describe('backoffMs', () => {
  it('grows with each attempt (jitter never makes a later attempt shorter) and is capped', () => {
    for (const r of [0, 0.5, 0.999]) {
      const rnd = () => r;
      assert.equal(backoffMs(1, 100, 10_000, rnd), Math.round(50 + r * 50));
      assert.ok(backoffMs(4, 100, 10_000, rnd) >= 400);
      assert.ok(backoffMs(30, 100, 10_000, rnd) <= 10_000);
    }
    // Ranges of consecutive attempts touch but do not overlap: max(n) = min(n + 1).
    for (let n = 1; n < 8; n++) {
      assert.ok(backoffMs(n, 100, 1e9, () => 1) <= backoffMs(n + 1, 100, 1e9, () => 0));
    }
  });
});

describe('WorkQueue', () => {
  it('runs a key queued many times once, never twice at once, and re-runs a key dirtied while running', async () => {
    const runs: string[] = [];
    let active = 0;
    let maxActive = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const q = new WorkQueue(async (k) => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs.push(k);
      if (runs.length === 1) await gate;
      active--;
    }, 4);
    q.add('a');
    q.add('a'); // while running: marks it dirty
    q.add('a');
    release();
    await q.whenIdle();
    assert.deepEqual(runs, ['a', 'a']);
    assert.equal(maxActive, 1);
    q.stop();
  });

  it('keeps only the earliest of several delayed re-queues', async () => {
    const runs: number[] = [];
    const start = Date.now();
    const q = new WorkQueue(async () => {
      runs.push(Date.now() - start);
    });
    q.addAfter('k', 400);
    q.addAfter('k', 30);
    q.addAfter('k', 200);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(runs.length, 1);
    assert.ok(runs[0]! < 200, `ran after ${runs[0]} ms`);
    q.stop();
  });
});
