/**
 * How many processes serve a segment's HTTP and run its TFTP transfers: the Network's spec, else the
 * environment, else the cores.
 */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { it } from 'node:test';
import { httpProcessCount } from '../../../src/boot/http-cores.ts';
import { tftpProcessCount } from '../../../src/tftp/cores.ts';

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

it('TFTP transfers: spec.tftp.processes, then STRATA_BOOT_TFTP_PROCESSES (checked the same way), then the cores', () => {
  assert.equal(tftpProcessCount(1, { STRATA_BOOT_TFTP_PROCESSES: '4' }), 1);
  assert.equal(tftpProcessCount(undefined, { STRATA_BOOT_TFTP_PROCESSES: '4' }), 4);
  assert.equal(tftpProcessCount(undefined, {}), Math.min(availableParallelism(), 8));
  assert.throws(
    () => tftpProcessCount(undefined, { STRATA_BOOT_TFTP_PROCESSES: 'lots' }),
    /STRATA_BOOT_TFTP_PROCESSES="lots" is not a process count: set a whole number from 1 to 64/,
  );
});
