/**
 * The ladder engine, in-process (startPlatform) with its real store and API: a failing step is retried
 * with growing backoff and `strata describe` shows why; lowering the target walks back down through the
 * steps' undo; deleting a node undoes its steps before it goes; and a node waiting on a person survives a
 * restart of the platform without its step being run twice.
 *
 * The test steps (`testFlakyStep`, `testFlakyCheckStep`, `testPairSteps`) exist only here, in a ladder
 * table of the test's own (`TEST_LADDER`) that picks them by the label `test-step=...`; its states above 2
 * are named gaps, as states 5–9 are in the real table.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeResource } from '../../../src/core/kinds/node.ts';
import type { Step } from '../../../src/core/ladder/step.ts';
import type { LadderRow, LadderTable } from '../../../src/core/ladder/table.ts';
import type { Layer } from '../../../src/core/layer.ts';
import { silentLogger } from '../../../src/core/log.ts';
import type { Resource, StrataEvent } from '../../../src/core/resources/types.ts';
import { LADDER } from '../../../src/ladder.ts';
import { LAYERS } from '../../../src/layers.ts';
import { type Platform, type PlatformOptions, startPlatform } from '../../../src/platform.ts';
import type { Cleanup } from '../../helpers/services.ts';
import { runCli, tempDir, waitFor } from '../../helpers/strata.ts';

const TOKEN = 'ladder-test-token';
const ENGINE = { backoffBaseMs: 100, backoffCapMs: 10_000, waitRecheckMs: 60_000, resyncMs: 60_000 };

/** What the test steps did, per node. */
interface Probe {
  failing: boolean;
  checkFailuresLeft: number;
  done: Set<string>;
  actions: number[];
  undos: string[];
}
const probes = new Map<string, Probe>();
const probe = (name: string): Probe => {
  let p = probes.get(name);
  if (!p) {
    p = { failing: false, checkFailuresLeft: 0, done: new Set(), actions: [], undos: [] };
    probes.set(name, p);
  }
  return p;
};
const byLabel = (n: NodeResource) => n.metadata.labels?.['test-step'];

/** Fails while its probe says `failing`, then succeeds. */
const testFlakyStep: Step = {
  name: 'test.flaky',
  description: 'testFlakyStep: fails while told to, then succeeds',
  check: async (ctx) => probe(ctx.node.metadata.name).done.has('flaky'),
  action: async (ctx) => {
    const p = probe(ctx.node.metadata.name);
    p.actions.push(Date.now());
    if (p.failing) throw new Error(`testFlakyStep: boom #${p.actions.length}`);
    p.done.add('flaky');
    return { status: 'done' };
  },
};

/** Its check throws a few times (the thing it measures is unreachable), then the step works. */
const testFlakyCheckStep: Step = {
  name: 'test.flaky-check',
  description: 'testFlakyCheckStep: its check fails a few times',
  check: async (ctx) => {
    const p = probe(ctx.node.metadata.name);
    if (p.checkFailuresLeft > 0) {
      p.checkFailuresLeft--;
      throw new Error('testFlakyCheckStep: cannot measure');
    }
    return p.done.has('flaky-check');
  },
  action: async (ctx) => {
    probe(ctx.node.metadata.name).done.add('flaky-check');
    return { status: 'done' };
  },
};

/** Two steps, 0→1 and 1→2, each with an undo, for walking down. */
const testPairSteps: Step[] = ['a', 'b'].map((id) => ({
  name: `test.${id}`,
  description: `testPairSteps ${id}`,
  check: async (ctx) => probe(ctx.node.metadata.name).done.has(id),
  action: async (ctx) => {
    probe(ctx.node.metadata.name).done.add(id);
    return { status: 'done' };
  },
  undo: async (ctx) => {
    const p = probe(ctx.node.metadata.name);
    p.done.delete(id);
    p.undos.push(id);
  },
}));

/** Waits for something outside (as a boot waits for the machine); counts how often it is re-checked. */
const waitChecks = new Map<string, number>();
const testWaitStep: Step = {
  name: 'test.wait',
  description: 'testWaitStep: waits until told it is done',
  check: async (ctx) => {
    const name = ctx.node.metadata.name;
    waitChecks.set(name, (waitChecks.get(name) ?? 0) + 1);
    return probe(name).done.has('wait');
  },
  action: async () => ({ status: 'waiting', message: 'testWaitStep: waiting for the machine' }),
};

const testLayer: Layer = {
  name: 'test-ladder',
  roles: [],
  steps: [testFlakyStep, testFlakyCheckStep, ...testPairSteps, testWaitStep],
};

/** The real table's names and layers, with the test steps into states 1 and 2 and gaps above. */
const TEST_LADDER: LadderTable = LADDER.map(
  (row): LadderRow =>
    row.state === 1
      ? {
          ...row,
          by: byLabel,
          steps: {
            flaky: 'test.flaky',
            'flaky-check': 'test.flaky-check',
            pair: 'test.a',
            wait: 'test.wait',
          },
        }
      : row.state === 2
        ? { ...row, by: byLabel, steps: { pair: 'test.b' } }
        : { ...row, steps: {} },
);

async function platform(t: Cleanup, opts: Partial<PlatformOptions> = {}): Promise<Platform> {
  const p = await startPlatform({
    dataDir: opts.dataDir ?? tempDir(t, 'strata-ladder-'),
    listen: '127.0.0.1:0',
    manager: true,
    roles: ['*'],
    token: TOKEN,
    log: silentLogger,
    engine: ENGINE,
    layers: [testLayer],
    ladder: opts.layers ? LADDER : TEST_LADDER,
    ...opts,
  });
  let stopped = false;
  const stop = p.stop;
  p.stop = async () => {
    if (stopped) return;
    stopped = true;
    await stop();
  };
  t.after(() => p.stop());
  return p;
}

const url = (p: Platform) => `http://${p.address!.host}:${p.address!.port}`;
const cli = (p: Platform, args: string[]) => runCli(args, { server: url(p), token: TOKEN });

function nodeDoc(name: string, step: string, targetState: number, hardware = 'none'): Resource {
  return {
    apiVersion: 'strata.dev/v1alpha1',
    kind: 'Node',
    metadata: { name, labels: { 'test-step': step } },
    spec: { targetState, providers: { hardware, boot: 'network' } },
  };
}

async function apply(p: Platform, ...docs: Resource[]): Promise<void> {
  const res = await fetch(`${url(p)}/api/v1/apply`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      files: [{ name: 'test.yaml', text: JSON.stringify({ kind: 'List', items: docs }) }],
    }),
  });
  assert.equal(res.status, 200, await res.text());
}

const getNode = (p: Platform, name: string) => p.resources.get<NodeResource>('Node', name);
const events = async (p: Platform, name: string): Promise<StrataEvent[]> => {
  await p.hub.flush();
  return p.store.listEvents({ kind: 'Node', name });
};
const reasons = async (p: Platform, name: string) => (await events(p, name)).map((e) => e.reason);

function waitState(p: Platform, name: string, state: number, phase = 'Ready', ms = 15_000) {
  return waitFor(
    `node ${name} at state ${state} (${phase})`,
    async () => {
      const n = await getNode(p, name);
      return n?.status?.state === state && n.status.phase === phase && n;
    },
    ms,
    25,
  );
}

describe('ladder engine', () => {
  it('a failing step is retried with growing backoff; describe shows the last error meanwhile', async (t) => {
    const p = await platform(t);
    probe('flaky1').failing = true;
    await apply(p, nodeDoc('flaky1', 'flaky', 1));

    await waitFor('3 failed attempts', () => probe('flaky1').actions.length >= 3, 10_000, 10);
    const d = await cli(p, ['describe', 'node', 'flaky1']);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /phase: Failed/);
    assert.match(
      d.stdout,
      /^Last error:\s+testFlakyStep: boom #\d+ \(attempt \d+, next try \d{4}-\d\d-\d\dT[\d:.]+Z\)$/m,
    );
    assert.match(
      d.stdout,
      /Warning\s+test\.flaky\s+StepFailed\s+testFlakyStep: boom #1 \(attempt 1; retrying in 0\.\d s\)/,
    );
    const table = await cli(p, ['get', 'nodes', '-o', 'wide']);
    assert.match(
      table.stdout,
      /^flaky1\s+0\s+1\s+Failed\s+test\.flaky \(try \d+\)\s.*testFlakyStep: boom #\d+/m,
    );

    probe('flaky1').failing = false;
    const n = await waitState(p, 'flaky1', 1);
    assert.equal(n.status?.step, undefined, 'the step status is cleared once done');

    const failed = (await events(p, 'flaky1')).filter((e) => e.reason === 'StepFailed');
    const calls = probe('flaky1').actions;
    assert.equal(failed.length, calls.length - 1, 'one StepFailed per failed action');
    assert.ok(failed.length >= 3);
    const attempts = failed.map((e) => e.data!.attempts as number);
    assert.deepEqual(
      attempts,
      attempts.map((_, i) => i + 1),
    );
    const delays = failed.map((e) => e.data!.retryInMs as number);
    for (let i = 1; i < delays.length; i++)
      assert.ok(delays[i]! >= delays[i - 1]!, `backoff grows: ${delays}`);
    assert.ok(delays[2]! >= 2 * delays[0]!, `backoff doubles: ${delays}`);
    // And the engine really waited that long between tries.
    for (let i = 1; i < calls.length; i++) {
      assert.ok(
        calls[i]! - calls[i - 1]! >= delays[i - 1]! - 5,
        `waited ${calls[i]! - calls[i - 1]!} ms ≥ ${delays[i - 1]}`,
      );
    }
    const r = await reasons(p, 'flaky1');
    assert.equal(r.filter((x) => x === 'StepStarted').length, 1);
    assert.ok(r.indexOf('StepCompleted') > r.lastIndexOf('StepFailed'));
    assert.equal(r.at(-1), 'TargetReached');
  });

  it('a step whose check fails is retried with growing backoff too', async (t) => {
    const p = await platform(t);
    probe('flakycheck1').checkFailuresLeft = 4;
    await apply(p, nodeDoc('flakycheck1', 'flaky-check', 1));
    await waitState(p, 'flakycheck1', 1);
    const failed = (await events(p, 'flakycheck1')).filter((e) => e.reason === 'StepFailed');
    assert.deepEqual(
      failed.map((e) => e.data!.attempts),
      [1, 2, 3, 4],
    );
    assert.match(failed[0]!.message, /^check failed: testFlakyCheckStep: cannot measure/);
    const delays = failed.map((e) => e.data!.retryInMs as number);
    assert.ok(delays[3]! >= 4 * delays[0]!, `backoff grows: ${delays}`);
  });

  it("lowering targetState runs the steps' undo, top down, and records StepUndone", async (t) => {
    const p = await platform(t);
    await apply(p, nodeDoc('pair1', 'pair', 2));
    await waitState(p, 'pair1', 2);
    assert.deepEqual([...probe('pair1').done], ['a', 'b']);

    await apply(p, nodeDoc('pair1', 'pair', 0));
    await waitState(p, 'pair1', 0);
    assert.deepEqual(probe('pair1').undos, ['b', 'a']);
    assert.equal(probe('pair1').done.size, 0);
    const ev = (await events(p, 'pair1')).filter((e) => ['UndoStarted', 'StepUndone'].includes(e.reason));
    assert.deepEqual(
      ev.map((e) => `${e.reason} ${e.step}: ${e.message}`),
      [
        'UndoStarted test.b: undoing test.b (state 2 → 1)',
        'StepUndone test.b: state 2 → 1 (proprietary node)',
        'UndoStarted test.a: undoing test.a (state 1 → 0)',
        'StepUndone test.a: state 1 → 0 (host)',
      ],
    );
  });

  it('a target above the highest implemented state stops at the named gap, and describe says so', async (t) => {
    const p = await platform(t);
    assert.equal(p.engine!.highestImplementedState(), 2);
    // The API refuses such a target now; a node stored while a server had more layers still meets the gap.
    const limits = p.resources.limits;
    p.resources.limits = {};
    await apply(p, nodeDoc('gap1', 'pair', 4));
    p.resources.limits = limits;
    const n = await waitState(p, 'gap1', 2, 'Blocked');
    assert.equal(
      n.status?.step?.message,
      'state 3 (iPXE node, layer "boot") is not implemented yet: the highest implemented state is 2',
    );
    const d = await cli(p, ['describe', 'node', 'gap1']);
    assert.match(
      d.stdout,
      /Warning\s+-\s+NotImplemented\s+state 3 \(iPXE node, layer "boot"\) is not implemented yet/,
    );
  });

  it('deleting a node at state 1 runs the undo, then the node disappears', async (t) => {
    const p = await platform(t);
    await apply(p, nodeDoc('gone1', 'pair', 1));
    await waitState(p, 'gone1', 1);
    const del = await cli(p, ['delete', 'node', 'gone1']);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout.trim(), 'node/gone1 deletion started');
    await waitFor('gone1 removed', async () => !(await getNode(p, 'gone1')), 10_000, 25);
    assert.deepEqual(probe('gone1').undos, ['a']);
    const r = await reasons(p, 'gone1');
    assert.deepEqual(r.slice(r.indexOf('UndoStarted')), ['UndoStarted', 'StepUndone', 'Deleted']);
    const get = await cli(p, ['get', 'node', 'gone1']);
    assert.equal(get.code, 1);
    assert.match(get.stderr, /Error from server \(NotFound\): node "gone1" not found/);
  });

  it("a burst of a waiting node's timeline events re-checks its step once, and a later event still wakes it", async (t) => {
    const p = await platform(t);
    await apply(p, nodeDoc('burst1', 'wait', 1));
    await waitState(p, 'burst1', 0, 'Waiting');
    await p.engine!.whenIdle();
    const before = waitChecks.get('burst1') ?? 0;
    // Twenty events from a worker within ~200 ms, each persisted (and fanned out) on its own, as a
    // machine's lease, TFTP transfer, script and artifacts arrive in a boot.
    for (let i = 0; i < 20; i++) {
      p.hub.record({ kind: 'Node', name: 'burst1', source: 'test-worker', reason: 'Poke', message: `#${i}` });
      await p.hub.flush();
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 600));
    await p.engine!.whenIdle();
    const burst = (waitChecks.get('burst1') ?? 0) - before;
    assert.ok(burst >= 1 && burst <= 3, `the burst re-checked the step ${burst} times`);

    probe('burst1').done.add('wait');
    p.hub.record({
      kind: 'Node',
      name: 'burst1',
      source: 'test-worker',
      reason: 'Installed',
      message: 'done',
    });
    await waitState(p, 'burst1', 1);
  });

  it('a node waiting on a work order survives a restart; confirming it then moves the node to 1, once', async (t) => {
    const dataDir = tempDir(t, 'strata-restart-');
    const first = await platform(t, { dataDir, layers: LAYERS });
    await apply(first, nodeDoc('human1', 'none', 1, 'human'));
    await waitState(first, 'human1', 0, 'Waiting');
    await waitFor('the work order event', async () =>
      (await reasons(first, 'human1')).includes('WorkOrderCreated'),
    );
    await first.stop();

    const second = await platform(t, { dataDir, layers: LAYERS });
    // The new engine looks at the node again (resync) and keeps waiting on the same work order.
    await second.engine!.whenIdle();
    const waiting = await getNode(second, 'human1');
    assert.equal(waiting?.status?.state, 0);
    assert.equal(waiting?.status?.phase, 'Waiting');
    const open = await cli(second, ['workorder', 'list']);
    assert.match(open.stdout, /^human1\s+connect\s+open\s/m);

    const done = await cli(second, ['workorder', 'done', 'human1', '--by', 'bob']);
    assert.equal(done.code, 0, done.stderr);
    await waitState(second, 'human1', 1);
    const r = await reasons(second, 'human1');
    assert.equal(r.filter((x) => x === 'WorkOrderCreated').length, 1, `one work order: ${r}`);
    assert.equal(r.filter((x) => x === 'StepStarted').length, 1, `one step start: ${r}`);
    assert.deepEqual(r.slice(r.indexOf('WorkOrderDone')), [
      'WorkOrderDone',
      'StepCompleted',
      'TargetReached',
    ]);
  });
});
