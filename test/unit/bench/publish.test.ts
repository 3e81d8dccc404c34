/**
 * A benchmark section written by one command keeps the rows another command wrote (runs of different
 * sizes, e.g. the boot storm at 5,000 machines with smaller artifacts, share one table).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { earlier, type Row, render } from '../../../bench/lib.ts';

const load = { load1: 1, stealPct: 0, busyPct: 50 };
const row = (what: string, strata: string): Row => ({ what, strata, peer: 'p', ratio: '1.00×', load });
const byCount = (what: string) => what.replace(/ machines.*/, '');

/** The section `command` writes over the section `before`. */
const write = (command: string, rows: Row[], before?: string) =>
  render(
    { name: 'storm', title: 'Storm', command, rows, merge: byCount },
    before ? earlier(before) : undefined,
  );

describe('bench publish with merge', () => {
  const first = write('node bench/storm.ts --machines 100,1000', [
    row('100 machines (8 + 20 MiB)', 'a'),
    row('1,000 machines (8 + 20 MiB)', 'b'),
  ]);

  it('keeps the earlier rows and their run line, adding this run after them', () => {
    const text = write(
      'node bench/storm.ts --machines 5000 --kernel-mib 1',
      [row('5,000 machines (1 + 4 MiB)', 'c')],
      first,
    );
    const rows = earlier(text).rows.map((r) => `${r[0]}=${r[1]}`);
    assert.deepEqual(rows, [
      '100 machines (8 + 20 MiB)=a',
      '1,000 machines (8 + 20 MiB)=b',
      '5,000 machines (1 + 4 MiB)=c',
    ]);
    const runs = earlier(text).runs;
    assert.equal(runs.length, 2);
    assert.match(runs[0]!, /^`node bench\/storm.ts --machines 100,1000` on /);
    assert.match(runs[1]!, /^`node bench\/storm.ts --machines 5000 --kernel-mib 1` on /);
  });

  it('replaces the rows of the same key, whatever their sizes, and the same command’s run line', () => {
    const text = write(
      'node bench/storm.ts --machines 100,1000',
      [row('1,000 machines (1 + 4 MiB)', 'd')],
      first,
    );
    assert.deepEqual(
      earlier(text).rows.map((r) => `${r[0]}=${r[1]}`),
      ['100 machines (8 + 20 MiB)=a', '1,000 machines (1 + 4 MiB)=d'],
    );
    assert.equal(earlier(text).runs.length, 1);
  });
});
