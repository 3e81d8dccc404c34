/**
 * The hardware steps into state 1 (powered and cabled), on a real store and hub: the human step issues
 * one work order and waits for a person, counts as done once the order is confirmed or the machine showed
 * up on the network, and its undo asks for a disconnect; the `none` step waits for the machine to appear;
 * the power step asks the worker of the node's own provider over the transport (a provider worker served
 * here on the in-process transport, as the lab worker serves `hardware.lab`) and believes only its reply.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeResource } from '../../../src/core/kinds/node.ts';
import type { Step, StepContext } from '../../../src/core/ladder/step.ts';
import {
  hardwareLayer,
  type PowerReply,
  type PowerRequest,
  subjects,
  WORK_ORDERS,
  type WorkOrder,
} from '../../../src/hardware/index.ts';
import { STEPS } from '../../../src/ladder.ts';
import { memoryCore } from '../../helpers/core.ts';

const step = (name: string): Step => hardwareLayer.steps!.find((s) => s.name === name)!;

function setup(t: { after(fn: () => Promise<void>): void }) {
  const { events: _events, ...core } = memoryCore(t);
  const { store } = core;
  const recorded: string[] = [];
  const ctx = (s: Step, status: Record<string, unknown> = {}, hardware = 'human'): StepContext => ({
    ...core,
    step: s,
    signal: new AbortController().signal,
    record: (reason, message) => void recorded.push(`${reason}: ${message}`),
    node: {
      apiVersion: 'strata.dev/v1alpha1',
      kind: 'Node',
      metadata: { name: 'n1', labels: { rack: 'r1' } },
      spec: {
        macAddresses: ['52:54:00:12:34:56'],
        targetState: 4,
        network: 'lab',
        providers: { hardware, boot: 'network' },
        reprovision: false,
      },
      status: { state: 0, ...status },
    } as NodeResource,
  });
  const order = async () => (await store.getRecord(WORK_ORDERS, 'n1')) as WorkOrder | undefined;
  return { store, ctx, recorded, order, transport: core.transport };
}

describe('hardware.human', () => {
  it('issues one work order, waits for a person, and is done once it is confirmed', async (t) => {
    const s = setup(t);
    const human = step(STEPS.hardwareHuman);
    assert.equal(await human.check(s.ctx(human)), false);
    const first = await human.action(s.ctx(human));
    assert.deepEqual(first, {
      status: 'waiting',
      message: 'waiting for a person: confirm with "strata workorder done n1"',
      recheckAfterMs: 60_000,
    });
    const wo = await s.order();
    assert.equal(wo?.action, 'connect');
    assert.equal(wo?.state, 'open');
    assert.match(
      wo!.instructions,
      /^Connect node n1 \(52:54:00:12:34:56\) to energy and to its switch port on network "lab"/,
    );
    await human.action(s.ctx(human));
    assert.equal(
      s.recorded.filter((r) => r.startsWith('WorkOrderCreated')).length,
      1,
      'one order, not one per try',
    );

    await s.store.putRecords(WORK_ORDERS, [{ key: 'n1', value: { ...wo, state: 'done' } }]);
    assert.equal(await human.check(s.ctx(human)), true);
  });

  it('counts a machine that already booted from the network as powered and cabled', async (t) => {
    const s = setup(t);
    const human = step(STEPS.hardwareHuman);
    assert.equal(await human.check(s.ctx(human, { discovered: { network: 'lab' } })), true);
  });

  it('asks a person to disconnect the node when it walks back down', async (t) => {
    const s = setup(t);
    const human = step(STEPS.hardwareHuman);
    await human.undo!(s.ctx(human, { state: 1 }));
    const wo = await s.order();
    assert.equal(wo?.action, 'disconnect');
    assert.equal(wo?.instructions, 'Power off node n1 and disconnect it.');
  });
});

describe('hardware.none', () => {
  it('waits until the machine shows up on the network by itself', async (t) => {
    const s = setup(t);
    const none = step(STEPS.hardwareNone);
    assert.equal(await none.check(s.ctx(none)), false);
    assert.equal((await none.action(s.ctx(none))).status, 'waiting');
    assert.equal(await none.check(s.ctx(none, { lastSeen: new Date().toISOString() })), true);
  });
});

describe('hardware.power', () => {
  /** A provider worker on the node's own subject: it switches a pretend machine and logs what it was asked. */
  async function provider(s: ReturnType<typeof setup>, name: string, initial: PowerReply['state']) {
    const asked: PowerRequest[] = [];
    let state = initial;
    await s.transport.serve<PowerRequest, PowerReply>(subjects.power(name), async (r) => {
      asked.push(r);
      if (r.op === 'on' || r.op === 'off') state = r.op;
      return { state, ...(r.op === 'on' ? { message: 'VM started' } : {}) };
    });
    return asked;
  }

  it("asks the node's own provider, is in state 1 only when it says on, and powers off on the way down", async (t) => {
    const s = setup(t);
    const power = step(STEPS.hardwarePower);
    const asked = await provider(s, 'rack', 'off');
    const other = await provider(s, 'elsewhere', 'on');
    assert.equal(await power.check(s.ctx(power, {}, 'rack')), false);
    assert.deepEqual(await power.action(s.ctx(power, {}, 'rack')), { status: 'done', message: 'VM started' });
    assert.equal(await power.check(s.ctx(power, {}, 'rack')), true);
    await power.undo!(s.ctx(power, { state: 1 }, 'rack'));
    assert.equal(await power.check(s.ctx(power, {}, 'rack')), false);
    assert.deepEqual(
      asked.map((r) => r.op),
      ['status', 'on', 'status', 'off', 'status'],
    );
    // As the provider receives it over the wire (JSON): a uuid the Node does not have is absent.
    assert.deepEqual(asked[1]!.node, {
      name: 'n1',
      macAddresses: ['52:54:00:12:34:56'],
      labels: { rack: 'r1' },
    });
    assert.equal(other.length, 0, 'another provider is never asked');
  });

  it('fails, instead of guessing, when no worker serves the provider', async (t) => {
    const s = setup(t);
    const power = step(STEPS.hardwarePower);
    await assert.rejects(power.check(s.ctx(power, {}, 'nobody')), /hardware\.nobody/);
  });

  it('fails with the provider’s reason when it could not power the node on', async (t) => {
    const s = setup(t);
    const power = step(STEPS.hardwarePower);
    await s.transport.serve<PowerRequest, PowerReply>(subjects.power('rack'), async (q) => ({
      state: 'unknown',
      message: `no lab VM named ${q.node.name} (is the lab up?)`,
    }));
    await assert.rejects(
      power.action(s.ctx(power, {}, 'rack')),
      /the rack provider did not power the node on \(unknown: no lab VM named n1 \(is the lab up\?\)\)/,
    );
  });

  it('powers a network-booting node on only once its Network’s boot worker serves', async (t) => {
    const s = setup(t);
    const power = step(STEPS.hardwarePower);
    const ctx = s.ctx(power, {}, 'lab');
    const asked: string[] = [];
    await s.transport.serve<PowerRequest, PowerReply>(subjects.power('lab'), async (q) => {
      asked.push(`${q.op} ${q.node.name}`);
      return { state: 'on', message: 'powered on' };
    });
    const network = (status: 'True' | 'False' | undefined) => ({
      apiVersion: 'strata.dev/v1alpha1',
      kind: 'Network',
      metadata: { name: 'lab' },
      spec: {},
      ...(status
        ? {
            status: {
              conditions: [
                { type: 'WorkerReady', status, reason: 'x', message: 'starting', lastTransitionTime: '' },
              ],
            },
          }
        : {}),
    });
    await s.store.write([{ op: 'create', resource: network(undefined) }]);
    const before = await power.action(ctx);
    assert.equal(before.status, 'waiting');
    assert.match(before.message ?? '', /boot worker of network lab to serve \(WorkerReady\)/);
    await s.store.write([{ op: 'status', kind: 'Network', name: 'lab', status: network('False').status! }]);
    assert.match((await power.action(ctx)).message ?? '', /WorkerReady: starting/);
    assert.deepEqual(asked, [], 'the provider was not asked while the worker does not serve');

    await s.store.write([{ op: 'status', kind: 'Network', name: 'lab', status: network('True').status! }]);
    assert.deepEqual(await power.action(ctx), { status: 'done', message: 'powered on' });
    assert.deepEqual(asked, ['on n1']);
  });
});
