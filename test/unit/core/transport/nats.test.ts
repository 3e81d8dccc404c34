/**
 * Pure parts of the NATS transport: the retry backoff. (How queue names become durable consumer names is
 * part of the wire contract: test/unit/core/wire.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { retryDelayMs } from '../../../../src/core/transport/nats.ts';

describe('nats retryDelayMs', () => {
  it('doubles from 200 ms and stops at 30 s', () => {
    assert.deepEqual([1, 2, 3].map(retryDelayMs), [200, 400, 800]);
    assert.equal(retryDelayMs(20), 30_000);
  });
});
