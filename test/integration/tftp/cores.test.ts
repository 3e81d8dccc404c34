/**
 * Transfers in processes of their own (src/tftp/cores.ts), as a segment's worker runs them by default: real
 * tftp-hpa and atftp clients against the listener, every download compared by sha256, the summaries and
 * counters back in the listener's process, no process left after stop, and a transfer process killed
 * mid-transfer costing only its own transfers.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { promisify } from 'node:util';
import { encodeAck, encodeRequest } from '../../../src/tftp/codec.ts';
import { transferCores } from '../../../src/tftp/cores.ts';
import { transferSettings } from '../../../src/tftp/server.ts';
import {
  type Harness,
  makeTree,
  metricValue,
  RawClient,
  sha256,
  startServer,
  waitForSummary,
} from './helpers.ts';

const run = promisify(execFile);
const CORE = 'src/tftp/core.ts';

let tree: Awaited<ReturnType<typeof makeTree>>;
let h: Harness;
let cores: ReturnType<typeof transferCores>;
let out: string;
let n = 0;

/** Transfer processes that are this test's (children of this process). */
function ourCores(): number[] {
  const r = execFileSync('pgrep', ['-P', String(process.pid), '-f', CORE], { encoding: 'utf8' }).trim();
  return r ? r.split('\n').map(Number) : [];
}
function ourCoresOrNone(): number[] {
  try {
    return ourCores();
  } catch {
    return []; // pgrep exits 1 when none matches
  }
}

before(async () => {
  tree = await makeTree();
  cores = transferCores({
    count: 2,
    dirs: [{ root: tree.root }],
    settings: transferSettings({ address: '127.0.0.1' }),
    log: (await import('../../../src/core/log.ts')).silentLogger,
  });
  h = await startServer(tree.root, { host: cores });
  out = `${tree.root}-out`;
  await run('mkdir', ['-p', out]);
});
after(async () => {
  await h.server.stop();
  await cores.stop();
  await rm(tree.root, { recursive: true, force: true });
  await rm(out, { recursive: true, force: true });
});

async function hpaGet(file: string): Promise<string> {
  const dest = join(out, `hpa-${n++}`);
  await run('tftp', ['-m', 'binary', '127.0.0.1', String(h.port), '-c', 'get', file, dest], {
    timeout: 60_000,
  });
  return dest;
}

async function untilReady(): Promise<void> {
  for (let i = 0; i < 200 && cores.ready < 2; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(cores.ready, 2, 'both transfer processes came up');
}

it('starts no process before the first request, then runs transfers in both', async () => {
  assert.deepEqual(ourCoresOrNone(), [], 'no transfer process before any request');
  // The first request starts the processes and is served by the listener meanwhile.
  assert.equal(sha256(await readFile(await hpaGet('one-meg'))), tree.hashes.get('one-meg'));
  await untilReady();
  assert.equal(ourCores().length, 2);
  const accepted = await metricValue('strata_tftp_requests_total', { result: 'accepted' });
  const dests = await Promise.all(
    ['ten-meg', 'odd1000', 'exact512', 'empty', 'one-meg', 'sub/dir/nested.bin'].map(
      async (f) => [f, await hpaGet(f)] as const,
    ),
  );
  for (const [f, dest] of dests) assert.equal(sha256(await readFile(dest)), tree.hashes.get(f), f);
  // atftp with blksize and windowsize (RFC 7440), negotiated in a transfer process.
  const dest = join(out, `atftp-${n++}`);
  await run(
    'atftp',
    [
      '--get',
      '-r',
      'ten-meg',
      '-l',
      dest,
      '--option',
      'blksize 1428',
      '--option',
      'windowsize 8',
      '127.0.0.1',
      String(h.port),
    ],
    { timeout: 60_000 },
  );
  assert.equal(sha256(await readFile(dest)), tree.hashes.get('ten-meg'));
  const s = await waitForSummary(h, (x) => x.path === 'ten-meg' && x.windowsize === 8);
  assert.ok(s?.ok, 'the windowsize transfer is summarised back, ok');
  assert.equal(s.bytes, 10 * 1024 * 1024);
  // Counters moved in the processes land in this process's registry.
  for (let i = 0; i < 100; i++) {
    if ((await metricValue('strata_tftp_requests_total', { result: 'accepted' })) - accepted >= 7) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal((await metricValue('strata_tftp_requests_total', { result: 'accepted' })) - accepted, 7);
});

it('answers a missing file with error 1 from a transfer process, and counts it', async () => {
  await untilReady();
  const before = await metricValue('strata_tftp_requests_total', { result: 'not-found' });
  const r = await run(
    'tftp',
    ['-m', 'binary', '127.0.0.1', String(h.port), '-c', 'get', 'nope', join(out, 'nope')],
    { timeout: 30_000 },
  );
  assert.match(r.stdout + r.stderr, /File not found/i);
  const s = await waitForSummary(h, (x) => x.path === 'nope');
  assert.equal(s?.ok, false);
  assert.equal((await metricValue('strata_tftp_requests_total', { result: 'not-found' })) - before, 1);
});

it('loses only the transfers of a process that dies; the next request is served', async () => {
  await untilReady();
  // Two clients that take their first block and then hold still: their transfers stay open (waiting for
  // an ACK), one in each process (handed out in turn).
  const clients = await Promise.all([RawClient.open(), RawClient.open()]);
  let victim: number | undefined;
  try {
    const first: { tid: number }[] = [];
    for (const c of clients) {
      c.send(encodeRequest('rrq', 'one-meg', 'octet', []), h.port);
      const r = await c.recv(5000);
      assert.equal(r?.packet.type, 'data');
      first.push({ tid: r!.port });
    }
    victim = ourCores()[0]!;
    process.kill(victim, 'SIGKILL');
    const lost = await waitForSummary(h, (x) => x.error === 'transfer process exited', 5000);
    assert.ok(lost, 'the dead process’s transfer is reported failed');
    assert.equal(h.summaries.filter((x) => x.error === 'transfer process exited').length, 1);
    assert.equal(h.server.activeTransfers, 1, 'the other transfer still runs');
    // The survivor's client goes on: ACK block 1, block 2 comes (from whichever of the two survived).
    let moved = 0;
    for (const [k, c] of clients.entries()) {
      c.send(encodeAck(1), first[k]!.tid);
      for (;;) {
        const r = await c.recv(1500);
        if (!r) break;
        if (r.packet.type === 'data' && r.packet.block === 2) {
          moved++;
          break;
        }
      }
    }
    assert.equal(moved, 1, 'exactly one transfer survived the process');
  } finally {
    for (const c of clients) c.close();
  }
  // Served again at once (by the survivor or the listener), and the dead process is gone.
  assert.equal(sha256(await readFile(await hpaGet('one-meg'))), tree.hashes.get('one-meg'));
  assert.ok(victim && !ourCoresOrNone().includes(victim));
});

it('leaves no transfer process behind when stopped', async () => {
  await h.server.stop();
  await cores.stop();
  assert.deepEqual(ourCoresOrNone(), []);
});

it('warm() starts the processes ahead of any request (a PXE client asked for an address)', async () => {
  const warm = transferCores({
    count: 2,
    dirs: [{ root: tree.root }],
    settings: transferSettings({ address: '127.0.0.1' }),
    log: (await import('../../../src/core/log.ts')).silentLogger,
  });
  try {
    assert.deepEqual(ourCoresOrNone(), []);
    warm.warm();
    warm.warm(); // again: no more processes
    for (let i = 0; i < 200 && warm.ready < 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(warm.ready, 2);
    assert.equal(ourCores().length, 2);
  } finally {
    await warm.stop();
  }
  assert.deepEqual(ourCoresOrNone(), []);
  warm.warm();
  assert.deepEqual(ourCoresOrNone(), [], 'a stopped server starts nothing');
});
