/**
 * A burst of requests whose every read SQLite answers synchronously must not hold the event loop: each
 * request's chain of `await store.get(…)` would otherwise run to its end in one microtask checkpoint
 * (src/core/turns.ts). Here 400 requests, each 20 reads and some work between them (~1 s of CPU in all),
 * start in one task, as a pipe read of 400 script requests starts them; a 2 ms timer must keep firing
 * meanwhile, and every request must still get its own rows, and in the order the requests came.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SqliteStore } from '../../../src/core/store/sqlite.ts';
import { tempDir } from '../../helpers/strata.ts';

const spin = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

describe('SQLite reads under a burst', () => {
  it('give the event loop a turn every few milliseconds, and every request its own answers', async (t) => {
    const store = new SqliteStore(join(tempDir(t, 'strata-turns-'), 'strata.db'));
    t.after(() => store.close());
    await store.putRecords(
      'burst',
      Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: { i } })),
    );

    let worstGap = 0;
    let last = performance.now();
    const tick = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
    }, 2);
    const finished: number[] = [];
    const request = async (n: number) => {
      const seen: number[] = [];
      for (let r = 0; r < 20; r++) {
        const v = (await store.getRecord('burst', `k${(n + r) % 100}`)) as { i: number };
        seen.push(v.i);
        spin(0.12); // a decision, a render: work between reads
      }
      finished.push(n);
      return seen;
    };
    const started = performance.now();
    last = started;
    const results = await Promise.all(Array.from({ length: 400 }, (_, n) => request(n)));
    const took = performance.now() - started;
    clearInterval(tick);
    worstGap = Math.max(worstGap, performance.now() - last); // the stretch since the timer last ran

    for (const [n, seen] of results.entries())
      assert.deepEqual(
        seen,
        Array.from({ length: 20 }, (_, r) => (n + r) % 100),
      );
    // Waiters resume in the order they waited, so requests end in the order they started.
    assert.deepEqual(
      finished,
      Array.from({ length: 400 }, (_, n) => n),
    );
    // 400 × 20 × 0.12 ms ≈ 1 s of work in one burst: without turns the timer waits for all of it.
    assert.ok(took > 900, `the burst took ${took.toFixed(0)} ms`);
    assert.ok(
      worstGap < 100,
      `the timer waited ${worstGap.toFixed(0)} ms at worst (burst ${took.toFixed(0)} ms)`,
    );
  });
});
