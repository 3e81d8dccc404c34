/**
 * The short fuzz run of the suite: every seed of test/vectors/fuzz through its decoder, then a couple of
 * seconds of property-based fuzzing (fast-check) per decoder. A decoder decodes or refuses with its own
 * typed error; anything else is a crash, reported with fast-check's seed and counterexample to replay.
 * The long run is bench/fuzz.ts (scripts/fuzz.sh); its results are in docs/fuzzing.md.
 *
 * The suite's run uses a fixed seed, so CI explores the same inputs every time and a red build always
 * means a change broke a decoder, never a lucky draw: new inputs are the long run's job, and its crashes
 * become seeds here. `STRATA_FUZZ_SEED=random` (or a number) explores elsewhere by hand.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { property, seeds, TARGETS } from './targets.ts';

const MS = Number(process.env.STRATA_FUZZ_MS ?? 2000);
const SEED_ENV = process.env.STRATA_FUZZ_SEED ?? '20261202';
const SEED = SEED_ENV === 'random' ? undefined : Number(SEED_ENV);

describe('fuzzing the decoders (short run)', () => {
  for (const t of TARGETS) {
    it(`${t.name}: seeds and ${MS} ms of random and mutated inputs decode or raise the typed error`, {
      timeout: 120_000,
    }, () => {
      const corpus = seeds(t.name);
      assert.ok(corpus.length > 0, `a seed corpus in test/vectors/fuzz/${t.name}`);
      for (const s of corpus) {
        try {
          t.run(t.fromSeed(s));
        } catch (e) {
          if (!t.typed(e)) throw e;
        }
      }
      const r = fc.check(property(t), {
        numRuns: 1_000_000,
        interruptAfterTimeLimit: MS,
        markInterruptAsFailure: false,
        ...(SEED === undefined ? {} : { seed: SEED }),
      });
      if (r.failed) assert.fail(fc.defaultReportMessage(r) ?? `${t.name} failed`);
      assert.ok(r.numRuns > 0);
    });
  }
});
