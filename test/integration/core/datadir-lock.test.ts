/**
 * One `strata up` per data dir: a second one on the same directory would serve DHCP a second time on the
 * same segments. It is refused with a message naming the data dir and the pid of the instance holding it;
 * a holder killed with kill -9 does not block the next start.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli, startStrata, suiteCleanup } from '../../helpers/strata.ts';

describe('data dir lock: one Strata per data dir', () => {
  const t = suiteCleanup();

  it('a second strata up on the same data dir is refused, naming the dir and the holder', async () => {
    const a = await startStrata(t);
    const r = await runCli(
      ['--data-dir', a.dataDir, 'up', '--listen', '127.0.0.1:0', '--admin-token', 'second-one'],
      {
        timeoutMs: 20_000,
      },
    );
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`data dir ${a.dataDir} is in use by another Strata \\(pid ${a.child.pid}, running since `),
    );
    assert.match(r.stderr, /--data-dir/);
    assert.doesNotMatch(r.stdout, /is up/);
    // the first one is unharmed
    assert.equal((await fetch(`${a.url}/healthz`)).status, 200);
  });

  it('after kill -9 of the holder, a new start takes the stale lock', async () => {
    const a = await startStrata(t);
    const first = a.child.pid;
    await a.kill();
    await a.start();
    assert.notEqual(a.child.pid, first);
    assert.equal((await fetch(`${a.url}/healthz`)).status, 200);
    const lock = JSON.parse(readFileSync(join(a.dataDir, 'strata.lock'), 'utf8')) as { pid: number };
    assert.equal(lock.pid, a.child.pid, 'the lock names the new holder');
    await a.stop();
    assert.ok(!existsSync(join(a.dataDir, 'strata.lock')), 'a graceful stop releases it');
  });
});
