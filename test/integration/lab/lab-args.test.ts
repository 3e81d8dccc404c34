/**
 * `strata lab up` refuses bad arguments before any work: before it asks the server anything and before the
 * asset build (minutes on a first run). Through bin/strata, with no server at all (the address points at a
 * closed port) and an empty asset cache that must stay empty.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { runCli, suiteCleanup, tempDir } from '../../helpers/strata.ts';

describe('strata lab up: bad arguments are refused before any work', () => {
  const t = suiteCleanup();
  const cache = tempDir(t, 'lab-first-run-args-');
  const labUp = (...args: string[]) =>
    runCli(['lab', 'up', ...args], { server: 'http://127.0.0.1:9', env: { STRATA_LAB_CACHE: cache } });

  const cases: Array<[string[], RegExp]> = [
    [
      ['--nodes', 'abc'],
      /option '--nodes <n>' argument 'abc' is invalid\. expected a whole number of VMs from 1 to 16/,
    ],
    [['--nodes', '0'], /'--nodes <n>' argument '0' is invalid\. expected a whole number of VMs from 1 to 16/],
    [
      ['--nodes', '17'],
      /'--nodes <n>' argument '17' is invalid\. expected a whole number of VMs from 1 to 16/,
    ],
    [['--nodes', '2.5'], /'--nodes <n>' argument '2\.5' is invalid/],
    [
      ['--firmware', 'arm64'],
      /'--firmware <kind>' argument 'arm64' is invalid\. Allowed choices are bios, uefi, mixed/,
    ],
    [['--target', '10'], /'--target <state>' argument '10' is invalid\. expected a ladder state from 1 to 9/],
    [
      ['--target', 'high'],
      /'--target <state>' argument 'high' is invalid\. expected a ladder state from 1 to 9/,
    ],
    [['--wait=perhaps'], /'--wait \[bool\]' argument 'perhaps' is invalid\. expected true or false/],
    [
      ['--memory', '128'],
      /'--memory <MiB>' argument '128' is invalid\. expected a size in MiB from 256 to 16384/,
    ],
    [['--loss', '60'], /'--loss <percent>' argument '60' is invalid\. expected a percentage from 0 to 50/],
  ];
  for (const [args, message] of cases) {
    it(`refuses ${args.join(' ')}`, async () => {
      const r = await labUp(...args);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(
        r.stderr,
        /cannot reach|Preparing lab assets/,
        'refused before contacting anything',
      );
      assert.deepEqual(readdirSync(cache), [], 'no asset build started');
    });
  }

  it('good arguments get as far as asking the server, still before building anything', async () => {
    const r = await labUp('--nodes', '2', '--firmware', 'mixed', '--target', '4', '--wait=false');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot connect to the Strata API at http:\/\/127\.0\.0\.1:9/);
    assert.deepEqual(readdirSync(cache), [], 'no asset build started');
  });
});
