/**
 * A node's timeline read through the API shows every event recorded before the request, though the
 * event hub persists events in batches (every 20 ms): a client that sees a node reach a state and then
 * reads its timeline finds the step that got it there (a race the IPMI VM test met in CI).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import type { TokenAuth } from '../../../src/api/auth.ts';
import { ApiServer } from '../../../src/api/server.ts';
import { API_VERSION, type StrataEvent } from '../../../src/core/resources/types.ts';
import { memoryCore } from '../../helpers/core.ts';

describe('a timeline read through the API', () => {
  it('includes the events recorded just before it, not yet written by the batch', async (t) => {
    const { resources, hub, log } = memoryCore(t);
    const api = new ApiServer({ resources, hub, log, auth: {} as TokenAuth, version: 'test' });
    await resources.apply([
      {
        apiVersion: API_VERSION,
        kind: 'Node',
        metadata: { name: 'n1' },
        spec: { macAddresses: ['52:54:00:aa:bb:01'], targetState: 1 },
      },
    ]);
    const read = async () => {
      const m = api.router.match('GET', '/api/v1/nodes/n1/events');
      assert.ok(m && m !== 'method');
      return (await m.route.handler({
        req: { headers: {} } as unknown as IncomingMessage,
        res: {} as ServerResponse,
        params: m.params,
        query: new URLSearchParams(),
        body: async () => '',
        json: async <T>() => ({}) as T,
      })) as { items: StrataEvent[] };
    };
    hub.record({ kind: 'Node', name: 'n1', source: 'test', reason: 'StepCompleted', message: 'state 0 → 1' });
    hub.record({ kind: 'Node', name: 'n1', source: 'test', reason: 'TargetReached', message: 'at 1' });
    const { items } = await read();
    assert.deepEqual(
      items.map((e) => e.reason),
      ['StepCompleted', 'TargetReached'],
    );
    assert.ok(
      items.every((e) => typeof e.id === 'number'),
      'each has the id it was stored with',
    );
  });
});
