/**
 * The long fuzz run: each decoder of test/fuzz/targets.ts for a while (default 45 s each, so about five
 * minutes for all), counting the inputs tried and the slowest single input (a decoder that hangs or goes
 * superlinear shows up there), and keeping every crash: its input is saved into the seed corpus
 * (test/vectors/fuzz/<target>/crash-<seed>.*) so the suite's short run replays it from then on. The results
 * replace the table in docs/fuzzing.md. Run it at low priority on a shared machine: scripts/fuzz.sh.
 *   node bench/fuzz.ts [--seconds 45] [--target dhcp] [--seed N]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { CORPUS, TARGETS } from '../test/fuzz/targets.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '45' },
    target: { type: 'string' },
    seed: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const DOC = resolve(import.meta.dirname, '../docs/fuzzing.md');

interface Result {
  target: string;
  iterations: number;
  seconds: number;
  slowestMs: number;
  crash?: string;
  seed: number;
}

/** The bytes that reproduce an input as a seed file of its target. */
function asSeed(input: unknown): Buffer {
  if (input instanceof Uint8Array) return Buffer.from(input);
  if (typeof input === 'string') return Buffer.from(input, 'utf8');
  const o = input as Record<string, unknown>;
  for (const k of ['datagram', 'template', 'text']) {
    const v = o[k];
    if (v instanceof Uint8Array) return Buffer.from(v);
    if (typeof v === 'string') return Buffer.from(v, 'utf8');
  }
  return Buffer.from(JSON.stringify(input));
}

const results: Result[] = [];
for (const t of TARGETS.filter((x) => !values.target || x.name === values.target)) {
  const seed = values.seed ? Number(values.seed) : Date.now() ^ (Math.random() * 2 ** 31);
  let slowest = 0;
  const prop = fc.property(t.arbitrary, (input) => {
    const t0 = performance.now();
    try {
      t.run(input);
    } catch (e) {
      if (!t.typed(e)) throw e;
    } finally {
      slowest = Math.max(slowest, performance.now() - t0);
    }
  });
  const started = performance.now();
  const r = fc.check(prop, {
    numRuns: Number.MAX_SAFE_INTEGER,
    interruptAfterTimeLimit: seconds * 1000,
    markInterruptAsFailure: false,
    seed,
  });
  const res: Result = {
    target: t.name,
    iterations: r.numRuns,
    seconds: Math.round((performance.now() - started) / 1000),
    slowestMs: Math.round(slowest * 10) / 10,
    seed,
  };
  if (r.failed && r.counterexample) {
    const file = `crash-${seed >>> 0}.bin`;
    mkdirSync(join(CORPUS, t.name), { recursive: true });
    writeFileSync(join(CORPUS, t.name, file), asSeed(r.counterexample[0]));
    res.crash = `${String(r.errorInstance).split('\n')[0]} (input saved as test/vectors/fuzz/${t.name}/${file})`;
  }
  results.push(res);
  process.stderr.write(`${JSON.stringify(res)}\n`);
}

const START = '<!-- fuzz-results:start -->';
const END = '<!-- fuzz-results:end -->';
const table = [
  START,
  `Last long run: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, \`scripts/fuzz.sh --seconds ${seconds}${values.target ? ` --target ${values.target}` : ''}\`, Node ${process.version}, fast-check ${fc.__version}.`,
  '',
  '| decoder | inputs tried | seconds | slowest input (ms) | crashes | seed |',
  '| --- | ---: | ---: | ---: | --- | ---: |',
  ...results.map(
    (r) =>
      `| ${r.target} | ${r.iterations.toLocaleString('en')} | ${r.seconds} | ${r.slowestMs} | ${r.crash ?? 'none'} | ${r.seed} |`,
  ),
  END,
].join('\n');
const doc = readFileSync(DOC, 'utf8');
const a = doc.indexOf(START);
const b = doc.indexOf(END);
writeFileSync(
  DOC,
  a >= 0 && b > a ? doc.slice(0, a) + table + doc.slice(b + END.length) : `${doc.trimEnd()}\n\n${table}\n`,
);
process.exitCode = results.some((r) => r.crash) ? 1 : 0;
