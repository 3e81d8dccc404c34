/**
 * Pure parts of the NATS transport: how queue names become durable consumer names (must be one-to-one, or
 * two queues would share a consumer) and the retry backoff.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { durableName, retryDelayMs } from '../../../src/core/transport/nats.ts';

describe('nats durableName', () => {
  it('keeps plain names and maps distinct queues to distinct names without dots', () => {
    assert.equal(durableName('sshkeys'), 'sshkeys');
    const queues = ['a.b', 'a_b', 'a__b', 'a_.b', 'a._b', 'a_db', 'a.db', 'a_d.b', 'boot.tftp', 'boot_tftp'];
    const names = queues.map(durableName);
    assert.equal(new Set(names).size, queues.length, names.join(' '));
    for (const n of names) assert.ok(!/[.*> ]/.test(n), n);
  });
});

describe('nats retryDelayMs', () => {
  it('doubles from 200 ms and stops at 30 s', () => {
    assert.deepEqual([1, 2, 3].map(retryDelayMs), [200, 400, 800]);
    assert.equal(retryDelayMs(20), 30_000);
  });
});
