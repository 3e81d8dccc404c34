/**
 * Pipe transport over an in-memory stream pair, bridged to an in-process parent: what a boot worker in a
 * network namespace sees (calls both ways, fan-out, durable work with redelivery) and what the manager
 * sees when the child goes away or writes garbage.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import { registry } from '../../../../src/core/metrics.ts';
import { StrataError } from '../../../../src/core/resources/errors.ts';
import { InprocTransport } from '../../../../src/core/transport/inproc.ts';
import { bridgePipe, PipeTransport } from '../../../../src/core/transport/pipe.ts';
import type { Job } from '../../../../src/core/transport/types.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A parent with an in-process transport, and a child wired to it by two in-memory pipes. */
function setup(t: TestContext, parent = new InprocTransport()) {
  const down = new PassThrough(); // parent → child (the child's stdin)
  const up = new PassThrough(); // child → parent (the child's stdout)
  const child = new PipeTransport(down, up);
  const bridge = bridgePipe(parent, up, down, { label: 'test' });
  t.after(async () => {
    await child.close();
    await bridge.close();
  });
  return { parent, child, bridge, up, down };
}

async function malformedCount(side: string): Promise<number> {
  const m = registry.getSingleMetric('strata_transport_pipe_malformed_total');
  if (!m) return 0;
  return (await m.get()).values.find((v) => v.labels['side'] === side)?.value ?? 0;
}

describe('pipe transport', () => {
  it('child requests reach a handler the parent serves; errors keep status and reason', async (t) => {
    const { parent, child } = setup(t);
    await parent.serve<{ a: number; b: number }, number>('svc.add', async ({ a, b }) => a + b);
    await parent.serve('svc.missing', async () => {
      throw new StrataError(404, 'NotFound', 'node "n1" not found');
    });
    await parent.serve('svc.hang', () => new Promise(() => {}));

    assert.equal(await child.request('svc.add', { a: 2, b: 3 }), 5);
    await assert.rejects(child.request('svc.missing', {}), (e: unknown) => {
      assert.ok(e instanceof StrataError);
      assert.equal(e.status, 404);
      assert.equal(e.reason, 'NotFound');
      assert.equal(e.message, 'node "n1" not found');
      return true;
    });
    await assert.rejects(child.request('svc.nobody', {}), /no worker serves "svc.nobody"/);
    await assert.rejects(child.request('svc.hang', {}, { timeout: 50 }), /timed out after 50 ms/);
  });

  it('parent requests reach a handler the child serves, large payloads included', async (t) => {
    const { parent, child } = setup(t);
    await child.serve<{ text: string }, { text: string; len: number }>('boot.echo', async (d) => ({
      ...d,
      len: d.text.length,
    }));
    await child.serve('boot.fail', async () => {
      throw new StrataError(409, 'Conflict', 'lease taken');
    });

    assert.deepEqual(await parent.request('boot.echo', { text: 'hé' }), { text: 'hé', len: 2 });
    const big = 'x\n€'.repeat(1_000_000);
    const r = await parent.request<{ text: string }, { len: number }>('boot.echo', { text: big });
    assert.equal(r.len, big.length);
    await assert.rejects(parent.request('boot.fail', {}), { status: 409, reason: 'Conflict' });
  });

  it('publishes and subscribes both ways, with wildcards', async (t) => {
    const { parent, child } = setup(t);
    const inChild: [unknown, string][] = [];
    const inParent: [unknown, string][] = [];
    await child.subscribe('events.>', (d, s) => inChild.push([d, s]));
    await parent.subscribe('report.*', (d, s) => inParent.push([d, s]));

    await parent.publish('events.node.n1', { phase: 'Installing' });
    await parent.publish('other.thing', 1);
    await child.publish('report.dhcp', { leases: 3 });
    await child.publish('report.dhcp.extra', 0);

    await waitFor('the child to get the event', () => inChild.length === 1);
    assert.deepEqual(inChild, [[{ phase: 'Installing' }, 'events.node.n1']]);
    assert.deepEqual(inParent, [[{ leases: 3 }, 'report.dhcp']]);
  });

  it('runs jobs enqueued on the parent in the child; a throwing handler gets the job again', async (t) => {
    const { parent, child } = setup(t);
    const seen: Job<{ mac: string }>[] = [];
    await child.consume<{ mac: string }>('boot.tftp', async (job) => {
      seen.push(job);
      if (job.attempt === 1) throw new Error('tftp server not ready');
    });
    await parent.enqueue('boot.tftp', 'j1', { mac: '52:54:00:00:00:01' });
    await waitFor('the redelivery', () => seen.length === 2);
    assert.deepEqual(
      seen.map((j) => [j.id, j.attempt, j.data.mac]),
      [
        ['j1', 1, '52:54:00:00:00:01'],
        ['j1', 2, '52:54:00:00:00:01'],
      ],
    );
    await sleep(400);
    assert.equal(seen.length, 2, 'acked once the handler resolved');

    // Enqueued by the child, consumed on the parent.
    const onParent: string[] = [];
    await parent.consume('work.install', async (job) => void onParent.push(job.id));
    await child.enqueue('work.install', 'i1', {});
    await waitFor('the parent to run the job', () => onParent.length === 1);
  });

  it('cleans up on the parent when the child goes away; its job goes to another worker', async (t) => {
    const { parent, child, bridge, up } = setup(t);
    const got: number[] = [];
    await child.serve('boot.echo', async (d) => d);
    await child.serve('boot.hang', () => new Promise(() => {}));
    await child.subscribe('events.>', () => got.push(1));
    await child.consume('boot.dhcp', () => new Promise(() => {}));
    await parent.enqueue('boot.dhcp', 'd1', {});
    await sleep(20);
    const hanging = parent.request('boot.hang', {}, { timeout: 5000 });

    up.destroy(); // the child crashed: its stdout is gone, no goodbye
    await assert.rejects(hanging, /pipe transport closed/);
    await bridge.closed;
    await assert.rejects(parent.request('boot.echo', {}), /no worker serves "boot.echo"/);
    await parent.publish('events.node.n1', {});
    assert.deepEqual(got, []);

    // The job the dead child held is delivered again, to the next child that consumes the queue.
    const next = setup(t, parent);
    const jobs: Job[] = [];
    await next.child.consume('boot.dhcp', async (job) => void jobs.push(job));
    await waitFor('the job to come back', () => jobs.length === 1);
    assert.deepEqual([jobs[0]!.id, jobs[0]!.attempt], ['d1', 2]);
    assert.equal(child.name, 'pipe');
  });

  it('a child closing its transport unsubscribes; a parent closing the bridge fails child calls', async (t) => {
    const a = setup(t);
    await a.child.serve('boot.echo', async (d) => d);
    await a.child.close();
    await a.bridge.closed;
    await assert.rejects(a.parent.request('boot.echo', {}), /no worker serves/);
    await assert.rejects(a.child.request('boot.echo', {}), /pipe transport closed/);

    const b = setup(t);
    await b.parent.serve('svc.hang', () => new Promise(() => {}));
    const pending = b.child.request('svc.hang', {}, { timeout: 300 });
    await sleep(10);
    await b.bridge.close();
    await assert.rejects(pending, /pipe transport closed/);
    await b.child.closed;
  });

  it('drops and counts malformed lines, and reassembles split and batched lines', async (t) => {
    const { parent, child, up } = setup(t);
    await child.serve('boot.echo', async (d) => d);
    const before = await malformedCount('parent');
    up.write('not json\n[1,2]\n{"no":"op"}\nnull\n\n');
    assert.equal(await parent.request('boot.echo', 'still fine'), 'still fine');
    assert.equal((await malformedCount('parent')) - before, 4);

    const got: unknown[] = [];
    await parent.subscribe('raw.*', (d) => got.push(d));
    const line = (n: number, data: string) =>
      `${JSON.stringify({ op: 'publish', id: 9000 + n, subject: 'raw.x', data })}\n`;
    const bytes = Buffer.from(line(1, 'é-split') + line(2, 'two') + line(3, 'three'));
    const cut = bytes.indexOf(Buffer.from('é')) + 1; // in the middle of a UTF-8 character
    up.write(bytes.subarray(0, cut));
    await sleep(10);
    up.write(bytes.subarray(cut));
    await waitFor('three messages', () => got.length === 3);
    assert.deepEqual(got, ['é-split', 'two', 'three']);
  });
});
