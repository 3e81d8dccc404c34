/** How many processes serve a segment's HTTP: the Network's spec, else the environment, else the cores. */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { it } from 'node:test';
import { httpProcessCount } from '../../../src/boot/http-cores.ts';

it('spec.boot.httpProcesses wins, then STRATA_BOOT_HTTP_PROCESSES, then one per core up to 8', () => {
  assert.equal(httpProcessCount({ httpProcesses: 3 }, { STRATA_BOOT_HTTP_PROCESSES: '5' }), 3);
  assert.equal(httpProcessCount({}, { STRATA_BOOT_HTTP_PROCESSES: '5' }), 5);
  assert.equal(httpProcessCount({}, { STRATA_BOOT_HTTP_PROCESSES: '' }), Math.min(availableParallelism(), 8));
  assert.equal(httpProcessCount({}, {}), Math.min(availableParallelism(), 8));
});

it('a bad STRATA_BOOT_HTTP_PROCESSES is refused, naming the variable and the fix', () => {
  for (const bad of ['0', '2.5', 'many', '65'])
    assert.throws(
      () => httpProcessCount({}, { STRATA_BOOT_HTTP_PROCESSES: bad }),
      /STRATA_BOOT_HTTP_PROCESSES=.*whole number from 1 to 64/,
    );
});
