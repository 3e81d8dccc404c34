/**
 * The hardware layer's API decisions, on a real store, hub and in-process transport, calling the routes
 * the layer adds to the router: a power request names a valid op or is refused naming `op`; a node whose
 * provider Strata cannot switch (human, none) is a 409 that says why; a machine provider's reply is passed
 * through and written on the timeline; a work order is confirmed once (a second confirmation changes
 * nothing) and the confirmation is on the node's timeline.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { Router } from '../../../src/core/http.ts';
import { LadderEngine } from '../../../src/core/ladder/engine.ts';
import { API_VERSION } from '../../../src/core/resources/types.ts';
import {
  hardwareLayer,
  type PowerReply,
  type PowerRequest,
  subjects,
  WORK_ORDERS,
  type WorkOrder,
} from '../../../src/hardware/index.ts';
import { memoryCore } from '../../helpers/core.ts';

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const { events, ...core } = memoryCore(t);
  const { store, hub, transport } = core;
  const router = new Router();
  await hardwareLayer.manager!({
    ...core,
    engine: new LadderEngine(core, { table: [], steps: [] }),
    router,
    layers: [],
    dataDir: '/nonexistent',
  });
  /** Calls the route for METHOD PATH with a JSON body, as the API server would after authentication. */
  const call = async (method: string, path: string, body?: unknown) => {
    const m = router.match(method, path);
    assert.ok(m && m !== 'method', `${method} ${path} is a route`);
    const text = body === undefined ? '' : JSON.stringify(body);
    return m.route.handler({
      req: { headers: { 'content-length': String(text.length) } } as unknown as IncomingMessage,
      res: {} as ServerResponse,
      params: m.params,
      query: new URLSearchParams(),
      body: async () => text,
      json: async <T>() => JSON.parse(text || '{}') as T,
    });
  };
  let macs = 0;
  const node = (name: string, hardware: string) =>
    core.resources.apply([
      {
        apiVersion: API_VERSION,
        kind: 'Node',
        metadata: { name },
        spec: {
          macAddresses: [`52:54:00:aa:bb:${String(++macs).padStart(2, '0')}`],
          targetState: 1,
          providers: { hardware },
        },
      },
    ]);
  return { call, node, transport, store, hub, events };
}

describe('POST /api/v1/nodes/:name/power', () => {
  it('refuses an op it does not know, naming the field and the ones it takes', async (t) => {
    const s = await setup(t);
    await s.node('n1', 'lab');
    await assert.rejects(s.call('POST', '/api/v1/nodes/n1/power', { op: 'reboot' }), (e: Error) => {
      assert.match(
        e.message,
        /^op: expected one of on, off, off-force, cycle, reset, status, pxe-once, media-boot, inventory; got "reboot"$/,
      );
      return true;
    });
  });

  it('will not pretend to switch a machine a person or nobody powers', async (t) => {
    const s = await setup(t);
    for (const hw of ['human', 'none']) {
      await s.node(`n-${hw}`, hw);
      await assert.rejects(s.call('POST', `/api/v1/nodes/n-${hw}/power`, { op: 'on' }), (e: Error) => {
        assert.match(e.message, new RegExp(`hardware provider "${hw}": Strata cannot switch its power`));
        return true;
      });
    }
  });

  it("asks the node's provider worker, returns its reply and writes the switch on the timeline", async (t) => {
    const s = await setup(t);
    await s.node('n1', 'lab');
    const asked: PowerRequest[] = [];
    await s.transport.serve<PowerRequest, PowerReply>(subjects.power('lab'), async (r) => {
      asked.push(r);
      return { state: r.op === 'off' ? 'off' : 'on' };
    });
    assert.deepEqual(await s.call('POST', '/api/v1/nodes/n1/power', { op: 'status' }), {
      kind: 'PowerStatus',
      node: 'n1',
      state: 'on',
    });
    await s.call('POST', '/api/v1/nodes/n1/power', { op: 'off' });
    assert.deepEqual(
      asked.map((r) => `${r.op} ${r.node.name}`),
      ['status n1', 'off n1'],
    );
    await s.hub.flush();
    assert.deepEqual(
      s.events.filter((e) => e.reason === 'Power').map((e) => e.message),
      ['power off requested: now off'],
      'a status query is not a switch and leaves no event',
    );
  });
});

describe('work orders', () => {
  it('are confirmed once, by whoever the body names, with the confirmation on the timeline', async (t) => {
    const s = await setup(t);
    await assert.rejects(s.call('POST', '/api/v1/workorders/n1/done'), /no work order for node "n1"/);
    const open: WorkOrder = {
      node: 'n1',
      action: 'connect',
      instructions: 'Connect node n1',
      state: 'open',
      createdAt: new Date().toISOString(),
    };
    await s.store.putRecords(WORK_ORDERS, [{ key: 'n1', value: open }]);
    const listed = (await s.call('GET', '/api/v1/workorders')) as { items: WorkOrder[] };
    assert.deepEqual(listed.items, [open]);
    const done = (await s.call('POST', '/api/v1/workorders/n1/done', { by: 'alice' })) as WorkOrder;
    assert.equal(done.state, 'done');
    assert.equal(done.doneBy, 'alice');
    const again = (await s.call('POST', '/api/v1/workorders/n1/done', { by: 'bob' })) as WorkOrder;
    assert.equal(again.doneBy, 'alice', 'a second confirmation changes nothing');
    await s.hub.flush();
    assert.deepEqual(
      s.events.filter((e) => e.reason === 'WorkOrderDone').map((e) => e.message),
      ['work order "connect" confirmed by alice'],
    );
  });
});
