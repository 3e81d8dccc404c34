/**
 * One behaviour suite, run against both transports: in-process, and NATS with a real `nats-server -js`
 * started for the suite. Then what only a networked transport can show: a worker that dies mid-job (its
 * connection closed, or its process killed) loses the job to another worker after ack_wait, and jobs
 * survive a new connection and a server restart.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { StrataError } from '../../../src/core/resources/errors.ts';
import { openTransport } from '../../../src/core/transport/index.ts';
import { InprocTransport } from '../../../src/core/transport/inproc.ts';
import { NatsTransport } from '../../../src/core/transport/nats.ts';
import type { ConsumeOptions, Job, Transport } from '../../../src/core/transport/types.ts';
import { type NatsServer, startNats } from '../../helpers/services.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

let seq = 0;
const unique = (prefix: string) => `${prefix}${Date.now().toString(36)}x${seq++}`;

interface Driver {
  name: 'inproc' | 'nats';
  open(): Promise<Transport>;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
}

let nats: NatsServer | undefined;
const drivers: Driver[] = [
  { name: 'inproc', open: async () => new InprocTransport() },
  {
    name: 'nats',
    setup: async () => {
      nats = await startNats({ jetstream: true });
    },
    teardown: async () => {
      await nats?.stop();
    },
    open: () => openTransport(nats!.url),
  },
];

for (const driver of drivers) {
  describe(`transport conformance: ${driver.name}`, () => {
    let tr: Transport;
    before(async () => {
      await driver.setup?.();
      tr = await driver.open();
      assert.equal(tr.name, driver.name);
    });
    after(async () => {
      await tr?.close();
      await driver.teardown?.();
    });

    /** consume(), unsubscribed when the test ends. */
    async function consume<T>(
      t: TestContext,
      queue: string,
      handler: (job: Job<T>) => Promise<void>,
      opts?: ConsumeOptions,
    ) {
      const sub = await tr.consume<T>(queue, handler, opts);
      t.after(() => sub.unsubscribe());
      return sub;
    }

    it('request/reply returns the handler result; a handler error reaches the caller', async (t) => {
      const subj = unique('svc.echo.');
      const sub = await tr.serve<{ n: number }, { doubled: number }>(subj, async (d) => ({
        doubled: d.n * 2,
      }));
      t.after(() => sub.unsubscribe());
      assert.deepEqual(await tr.request(subj, { n: 21 }), { doubled: 42 });

      const failing = unique('svc.fail.');
      const s2 = await tr.serve<{ kind: string }, never>(failing, async (d) => {
        if (d.kind === 'strata') throw new StrataError(404, 'NotFound', 'node "x" not found');
        throw new Error('disk on fire');
      });
      t.after(() => s2.unsubscribe());
      await assert.rejects(tr.request(failing, { kind: 'strata' }), (e: unknown) => {
        assert.ok(e instanceof StrataError);
        assert.equal(e.reason, 'NotFound');
        assert.equal(e.status, 404);
        assert.equal(e.message, 'node "x" not found');
        return true;
      });
      await assert.rejects(tr.request(failing, { kind: 'plain' }), /disk on fire/);
    });

    it('a request nobody serves fails at once with a clear error; a slow one times out', async (t) => {
      const started = Date.now();
      await assert.rejects(
        tr.request('svc.nobody.home', {}, { timeout: 5000 }),
        /no worker serves "svc\.nobody\.home" \(is a worker with that role running\?\)/,
      );
      assert.ok(Date.now() - started < 2000, 'no-responder error should not wait for the timeout');

      const slow = unique('svc.slow.');
      const sub = await tr.serve(slow, () => sleep(1000));
      t.after(() => sub.unsubscribe());
      await assert.rejects(
        tr.request(slow, {}, { timeout: 150 }),
        /request "svc\.slow\.\w+" timed out after 150 ms/,
      );

      // A short timeout behind a long one in flight still fires (its handler would answer after 3 s, so a
      // timer left at the long one's deadline makes this resolve instead); the long one gets its answer.
      const paced = unique('svc.paced.');
      const sub2 = await tr.serve(paced, async (d: { ms: number }) => {
        await sleep(d.ms);
        return { slept: d.ms };
      });
      t.after(() => sub2.unsubscribe());
      const long = tr.request(paced, { ms: 600 }, { timeout: 5000 });
      await assert.rejects(tr.request(paced, { ms: 3000 }, { timeout: 100 }), /timed out after 100 ms/);
      assert.deepEqual(await long, { slept: 600 });
    });

    it('servers of one subject share the load; an unsubscribed one gets no more', async (t) => {
      const subj = unique('svc.shared.');
      const counts = [0, 0];
      const subs = await Promise.all(
        counts.map((_, i) =>
          tr.serve(subj, async () => {
            counts[i]!++;
            return i;
          }),
        ),
      );
      t.after(() => Promise.all(subs.map((s) => s.unsubscribe())));
      for (let i = 0; i < 20; i++) await tr.request(subj, i);
      assert.equal(counts[0]! + counts[1]!, 20);
      assert.ok(counts[0]! > 0 && counts[1]! > 0, `both servers answered: ${counts}`);

      await subs[0]!.unsubscribe();
      const before = counts[0];
      for (let i = 0; i < 5; i++) assert.equal(await tr.request(subj, i), 1);
      assert.equal(counts[0], before);
    });

    it('publish fans out to every matching subscriber, with wildcards', async (t) => {
      const root = unique('ev');
      const got: Record<string, { data: unknown; subject: string }[]> = {
        all: [],
        ready: [],
        exact: [],
        other: [],
      };
      const subs = await Promise.all([
        tr.subscribe(`${root}.>`, (data, subject) => got.all!.push({ data, subject })),
        tr.subscribe(`${root}.*.ready`, (data, subject) => got.ready!.push({ data, subject })),
        tr.subscribe(`${root}.node-1.ready`, (data, subject) => got.exact!.push({ data, subject })),
        tr.subscribe(`${root}.*`, (data, subject) => got.other!.push({ data, subject })),
        tr.subscribe(`${root}.>`, () => {
          throw new Error('a failing subscriber does not stop the others');
        }),
      ]);
      t.after(() => Promise.all(subs.map((s) => s.unsubscribe())));
      await tr.publish(`${root}.node-1.ready`, { state: 4 });
      await tr.publish(`${root}.node-2.booting`, { state: 2 });
      await waitFor(
        'fan-out',
        () => got.all!.length === 2 && got.ready!.length === 1 && got.exact!.length === 1,
      );
      await sleep(100);
      assert.deepEqual(got.ready, [{ data: { state: 4 }, subject: `${root}.node-1.ready` }]);
      assert.deepEqual(got.exact, [{ data: { state: 4 }, subject: `${root}.node-1.ready` }]);
      assert.deepEqual(
        got.all!.map((g) => g.subject),
        [`${root}.node-1.ready`, `${root}.node-2.booting`],
      );
      assert.deepEqual(got.other, []);

      await subs[0]!.unsubscribe();
      await tr.publish(`${root}.node-3.ready`, {});
      await waitFor('delivery after unsubscribe', () => got.ready!.length === 2);
      await sleep(100);
      assert.equal(got.all!.length, 2);
    });

    it('jobs enqueued before any consumer exists are delivered once one starts', async (t) => {
      const q = unique('q.early.');
      for (let i = 0; i < 3; i++)
        await tr.enqueue(q, `job-${i}`, { i, nested: { mac: '52:54:00:12:34:56' } });
      await sleep(100);
      const jobs: Job<{ i: number }>[] = [];
      await consume<{ i: number }>(t, q, async (job) => {
        jobs.push(job);
      });
      await waitFor('3 jobs', () => jobs.length === 3);
      assert.deepEqual(jobs.map((j) => j.id).sort(), ['job-0', 'job-1', 'job-2']);
      for (const j of jobs) {
        assert.equal(j.attempt, 1);
        assert.deepEqual(j.data, { i: Number(j.id.slice(4)), nested: { mac: '52:54:00:12:34:56' } });
      }
      await sleep(300);
      assert.equal(jobs.length, 3, 'acked jobs are not delivered again');
    });

    it('a handler that throws gets the job again with attempt 2', async (t) => {
      const q = unique('q.retry.');
      const attempts: number[] = [];
      await consume(t, q, async (job) => {
        attempts.push(job.attempt);
        if (job.attempt === 1) throw new Error('transient');
      });
      await tr.enqueue(q, 'flaky', {});
      await waitFor('a retry', () => attempts.length === 2);
      await sleep(400);
      assert.deepEqual(attempts, [1, 2]);
    });

    it('a job that keeps failing is given up after maxDeliver attempts', async (t) => {
      const q = unique('q.giveup.');
      const attempts: number[] = [];
      await consume(
        t,
        q,
        async (job) => {
          attempts.push(job.attempt);
          throw new Error('permanent');
        },
        { maxDeliver: 2 },
      );
      await tr.enqueue(q, 'doomed', {});
      await waitFor('2 attempts', () => attempts.length === 2);
      await sleep(1000);
      assert.deepEqual(attempts, [1, 2]);
    });

    it('a duplicate job id is dropped while the job is pending', async (t) => {
      const q = unique('q.dup.');
      await tr.enqueue(q, 'same-id', { first: true });
      await tr.enqueue(q, 'same-id', { first: false });
      await tr.enqueue(q, 'other-id', { first: true });
      const got: Job[] = [];
      await consume(t, q, async (job) => {
        got.push(job);
      });
      await waitFor('2 jobs', () => got.length === 2);
      await sleep(300);
      assert.deepEqual(got.map((j) => [j.id, j.data]).sort(), [
        ['other-id', { first: true }],
        ['same-id', { first: true }],
      ]);
    });

    it('a consumer works on at most `concurrency` jobs at once', async (t) => {
      const q = unique('q.conc.');
      let running = 0;
      let peak = 0;
      let done = 0;
      await consume(
        t,
        q,
        async () => {
          running++;
          peak = Math.max(peak, running);
          await sleep(100);
          running--;
          done++;
        },
        { concurrency: 2 },
      );
      for (let i = 0; i < 6; i++) await tr.enqueue(q, `c${i}`, i);
      await waitFor('6 jobs', () => done === 6);
      assert.equal(peak, 2);
    });
  });
}

describe('transport: NATS only', () => {
  let server: NatsServer;
  before(async () => {
    server = await startNats({ jetstream: true });
  });
  after(() => server?.stop());

  async function open(t: TestContext): Promise<NatsTransport> {
    const tr = await NatsTransport.connect(server.url);
    t.after(() => tr.close());
    return tr;
  }

  it('a consumer whose connection closes without acking loses the job to another after ack_wait', async (t) => {
    const q = unique('q.dies.');
    const a = await open(t);
    const b = await open(t);
    const seenByA: Job[] = [];
    await a.consume(
      q,
      async (job) => {
        seenByA.push(job);
        await new Promise(() => {}); // never finishes
      },
      { ackWaitMs: 1000 },
    );
    await b.enqueue(q, 'victim', { x: 1 });
    await waitFor('worker A to take the job', () => seenByA.length === 1);
    await a.close();
    const diedAt = Date.now();

    const seenByB: Job[] = [];
    const sub = await b.consume(
      q,
      async (job) => {
        seenByB.push(job);
      },
      { ackWaitMs: 1000 },
    );
    t.after(() => sub.unsubscribe());
    await waitFor('worker B to get the job', () => seenByB.length === 1, 8000);
    assert.equal(seenByB[0]!.id, 'victim');
    assert.equal(seenByB[0]!.attempt, 2);
    assert.deepEqual(seenByB[0]!.data, { x: 1 });
    assert.ok(Date.now() - diedAt < 5000);
  });

  it('a worker process killed mid-job: the job is redelivered after ack_wait', async (t) => {
    const q = unique('q.killed.');
    const worker = spawn(
      process.execPath,
      [fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url)), server.url, q, '1000'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    t.after(() => worker.kill('SIGKILL'));
    let out = '';
    worker.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitFor('the worker process to be ready', () => out.includes('ready'), 10_000);
    const tr = await open(t);
    await tr.enqueue(q, 'job-k', { step: 'install' });
    await waitFor('the worker process to take the job', () => out.includes('got job-k 1'));
    worker.kill('SIGKILL');
    await once(worker, 'exit');

    const seen: Job[] = [];
    const sub = await tr.consume(q, async (job) => void seen.push(job), { ackWaitMs: 1000 });
    t.after(() => sub.unsubscribe());
    await waitFor('the job to come back', () => seen.length === 1, 8000);
    assert.deepEqual(
      seen.map((j) => [j.id, j.attempt, j.data]),
      [['job-k', 2, { step: 'install' }]],
    );
  });

  it('a job running longer than ack_wait is not redelivered while its worker is alive', async (t) => {
    const q = unique('q.long.');
    const tr = await open(t);
    const attempts: number[] = [];
    let finished = false;
    const sub = await tr.consume(
      q,
      async (job) => {
        attempts.push(job.attempt);
        await sleep(2500);
        finished = true;
      },
      { ackWaitMs: 600 },
    );
    t.after(() => sub.unsubscribe());
    await tr.enqueue(q, 'long', {});
    await waitFor('the long job', () => finished, 6000);
    await sleep(1000);
    assert.deepEqual(attempts, [1]);
  });

  it('durable jobs survive a new connection and a server restart', async (t) => {
    const q = unique('q.durable.');
    const first = await NatsTransport.connect(server.url);
    await first.enqueue(q, 'before-restart-1', { n: 1 });
    await first.close();

    const second = await open(t);
    await second.enqueue(q, 'before-restart-2', { n: 2 });
    await server.restart();

    const third = await open(t);
    const seen: Job[] = [];
    const sub = await third.consume(q, async (job) => void seen.push(job));
    t.after(() => sub.unsubscribe());
    await waitFor('both jobs after the restart', () => seen.length === 2, 10_000);
    assert.deepEqual(seen.map((j) => j.id).sort(), ['before-restart-1', 'before-restart-2']);
  });

  it('openTransport picks the transport from the URL', async () => {
    const inproc = await openTransport();
    assert.equal(inproc.name, 'inproc');
    await inproc.close();
    const n = await openTransport(server.url);
    assert.equal(n.name, 'nats');
    await assert.rejects(n.enqueue('bad queue', 'x', {}), /invalid queue name/);
    await n.close();
    await assert.rejects(openTransport('amqp://x'), /unknown transport/);
  });
});
