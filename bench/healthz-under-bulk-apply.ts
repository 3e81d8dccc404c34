/**
 * Benchmark: how long /healthz takes to answer while `strata up` takes a 5,000-node apply and then
 * reconciles the new nodes. The event loop must keep turning under bulk writes (issue 9: it once took
 * 12 s). Starts a real server on a temporary data dir, polls /healthz back to back, applies the
 * manifest, keeps polling while the ladder works, and prints the latencies. No pass/fail: run it and read.
 *
 *   node bench/healthz-under-bulk-apply.ts [--nodes 5000] [--target 1] [--after 20] [--database URL]
 *
 * Measured on the 2-core development machine (SQLite): apply 4.5 s; /healthz max 0.26 s during the apply
 * and 0.2 s while the ladder reconciles (before: 16 s, 3.5 s and 19.6 s). PostgreSQL: apply 15 s, /healthz
 * max 0.39 s and 0.13 s.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { nodesManifest } from './lib.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '5000' },
    target: { type: 'string', default: '1' },
    after: { type: 'string', default: '20' },
    database: { type: 'string' },
  },
});
const NODES = Number(values.nodes);
const REPO = resolve(import.meta.dirname, '..');

const port = await new Promise<number>((r) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port;
    s.close(() => r(p));
  });
});
const dataDir = mkdtempSync(join(tmpdir(), 'strata-bench-'));
const token = `bench-${randomBytes(8).toString('hex')}`;
const args = ['--data-dir', dataDir, 'up', '--listen', `127.0.0.1:${port}`, '--admin-token', token];
if (values.database) args.push('--database', values.database);
const server = spawn(join(REPO, 'bin/strata'), args, {
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...process.env, STRATA_LOG_LEVEL: 'error' },
});
const base = `http://127.0.0.1:${port}`;
let cleaned = false;
const cleanup = () => {
  if (cleaned) return;
  cleaned = true;
  server.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
};
process.on('exit', cleanup);

for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${base}/healthz`)).ok) break;
  } catch {
    if (i > 200) throw new Error('strata up did not start');
  }
  await new Promise((r) => setTimeout(r, 100));
}

const manifest = nodesManifest(NODES, Number(values.target));

interface Sample {
  at: number;
  ms: number;
}
const samples: Sample[] = [];
let polling = true;
const t0 = performance.now();
const poller = (async () => {
  while (polling) {
    const start = performance.now();
    await fetch(`${base}/healthz`).then((r) => r.text());
    samples.push({ at: start - t0, ms: performance.now() - start });
    await new Promise((r) => setTimeout(r, 20));
  }
})();

await new Promise((r) => setTimeout(r, 500));
const applyStart = performance.now() - t0;
const res = await fetch(`${base}/api/v1/apply`, {
  method: 'POST',
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' },
  body: manifest,
});
const applyEnd = performance.now() - t0;
if (!res.ok) throw new Error(`apply answered ${res.status}: ${(await res.text()).slice(0, 500)}`);
await new Promise((r) => setTimeout(r, Number(values.after) * 1000));
polling = false;
await poller;

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
  return `n=${s.length} p50=${q(0.5).toFixed(1)}ms p99=${q(0.99).toFixed(1)}ms max=${(s.at(-1) ?? 0).toFixed(1)}ms`;
};
const during = samples.filter((s) => s.at + s.ms >= applyStart && s.at <= applyEnd).map((s) => s.ms);
const after = samples.filter((s) => s.at > applyEnd).map((s) => s.ms);
console.log(
  `apply of ${NODES} nodes (targetState ${values.target}): ${((applyEnd - applyStart) / 1000).toFixed(2)} s`,
);
console.log(`/healthz during the apply:          ${stats(during)}`);
console.log(`/healthz in the ${values.after} s after (reconcile): ${stats(after)}`);
cleanup();
process.exit(0);
