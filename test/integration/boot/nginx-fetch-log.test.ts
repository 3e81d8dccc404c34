/**
 * The fetch log of the nginx that serves a segment's artifacts (src/boot/http-nginx.ts, fetch-log.ts),
 * with a real nginx (2 workers) on loopback and curl fetching in parallel: every fetch is reported exactly
 * once while the log is rotated many times under it, and after the rotations nginx writes to the current
 * file (none of its workers holds a renamed or deleted one); stopping leaves no log file behind.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { childrenOf, findNginx, startNginxFront } from '../../../src/boot/http-nginx.ts';
import { silentLogger } from '../../../src/core/log.ts';
import type { FetchSummary } from '../../../src/ipxe/http.ts';
import { freePort } from '../../helpers/services.ts';
import { waitFor } from '../../helpers/strata.ts';

function skipReason(): string | false {
  try {
    findNginx();
  } catch {
    return 'nginx missing (scripts/setup.sh)';
  }
  return spawnSync('curl', ['--version']).status === 0 ? false : 'curl missing';
}

/** The files nginx's workers (the master's children) hold open below `dir`. */
function logFdsOfWorkers(master: number, dir: string): string[] {
  const out: string[] = [];
  for (const pid of childrenOf(master))
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target.startsWith(dir)) out.push(target);
      } catch {}
    }
  return out;
}

it('every fetch reported once across many rotations; nginx ends on the current file', {
  skip: skipReason(),
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'strata-nginx-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const artifacts = join(dir, 'artifacts');
  mkdirSync(artifacts);
  const n = 400;
  for (let i = 0; i < n; i++) writeFileSync(join(artifacts, `f${i}`), `artifact ${i}\n`);
  const fetches: FetchSummary[] = [];
  const port = await freePort();
  const run = join(dir, 'run');
  const front = await startNginxFront({
    dir: run,
    host: '127.0.0.1',
    port,
    artifacts,
    socket: join(dir, 'node.sock'),
    processes: 2,
    onFetch: (f) => fetches.push(f),
    log: silentLogger,
    // About 150 bytes a line: rotated as soon as it may be.
    fetchLogMaxBytes: 1500,
  });
  t.after(() => front.stop());

  const urls = Array.from(
    { length: n },
    (_, i) => `url = "http://127.0.0.1:${port}/artifacts/f${i}"\noutput = "/dev/null"\n`,
  );
  // Batches, 2.5 s apart: a rotated file is read for 2 s before the next rotation.
  for (let b = 0; b < 5; b++) {
    const part = urls.slice(b * 80, (b + 1) * 80).join('');
    writeFileSync(join(dir, 'curl.conf'), part);
    const r = spawnSync('curl', ['-s', '--fail', '-Z', '--parallel-max', '8', '-K', join(dir, 'curl.conf')], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    await new Promise((r) => setTimeout(r, 2500));
  }

  await waitFor(`all ${n} fetches reported (${fetches.length} so far)`, () => fetches.length >= n, 10_000);
  const paths = fetches.map((f) => f.path).sort();
  assert.equal(new Set(paths).size, n, 'every fetch reported once');
  assert.equal(paths.length, n);
  assert.ok(fetches.every((f) => f.status === 200 && f.remoteAddress === '127.0.0.1' && f.completed));

  assert.ok(front.logRotations() >= 4, `the log was rotated under nginx (${front.logRotations()} times)`);
  const master = front.pid()!;
  const current = join(run, 'fetch.log');
  await waitFor(
    'nginx writing to the current log file only',
    () => {
      const open = logFdsOfWorkers(master, run).filter((p) => p.includes('fetch.log'));
      return open.length > 0 && open.every((p) => p === current);
    },
    8000,
  );
  await waitFor('the rotated file read and removed', () => !existsSync(`${current}.old`), 8000);
  await front.stop();
  assert.ok(!existsSync(current), 'stop removes the fetch log');
});
