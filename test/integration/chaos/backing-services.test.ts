/**
 * The backing services restarted under load. PostgreSQL: a private server (never the shared one) is shut
 * down and started again while `strata up` on it takes a burst of Node applies over HTTP and a burst of
 * real DHCP clients (lease writes). Strata reconnects by itself; writes during the outage are refused with
 * a clear error, every acknowledged write (applies and ACKed leases) is in the database afterwards, and
 * each Node was created once in the change log. NATS: a private nats-server with JetStream carrying a
 * manager and an sshkeys worker is stopped and started again while keys are asked for; each key is
 * generated exactly once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { netnsAvailable } from '../../helpers/netns.ts';
import { startNats } from '../../helpers/services.ts';
import { startStrata, suiteCleanup, waitFor } from '../../helpers/strata.ts';
import { assertAcksStored, assertNoDoubleBinding, segmentWithStrata, startBurst } from './burst.ts';
import { privatePostgres, privatePostgresSkip } from './private-postgres.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pgSkip = netnsAvailable().reason ?? privatePostgresSkip();

const node = (name: string, i: number) =>
  `apiVersion: strata.dev/v1alpha1
kind: Node
metadata: {name: ${name}}
spec:
  macAddresses: ["52:54:00:bb:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}"]
`;

describe('PostgreSQL restarted under load', { skip: pgSkip ?? false }, () => {
  const t = suiteCleanup();

  it('strata reconnects; acknowledged applies and leases are all there; nothing created twice', async (tc) => {
    const db = await privatePostgres(t);
    const seg = await segmentWithStrata(t, {
      net: 11,
      clients: ['c0', 'c1', 'c2', 'c3', 'c4', 'c5'],
      strata: { database: db.url },
    });
    const { strata } = seg;
    const burst = startBurst(t, seg);
    const acked = new Set<string>();
    const refusals: { status: number; text: string }[] = [];
    let stop = false;
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const name = `w${w}-${i}`;
        try {
          const r = await strata.api('POST', '/api/v1/apply', node(name, w * 1000 + i));
          if (r.status < 300) acked.add(name);
          else refusals.push({ status: r.status, text: r.text });
        } catch {
          // A cut connection is not an acknowledgement.
        }
        await sleep(20);
      }
    };
    const writers = [0, 1, 2].map(writer);
    await waitFor(
      'leases and applies before the restart',
      () => burst.acks().length >= 10 && acked.size >= 20,
      30_000,
    );
    await db.stop();
    const downAt = Date.now();
    // A write while the database is down gets an answer (not a hang, not a crash) saying what is wrong.
    const probe = await strata.api('POST', '/api/v1/apply', node('during-outage', 9999)).catch((e) => {
      stop = true;
      throw new Error(
        `${(e as Error).message}: strata exited ${strata.child.exitCode}\n${strata.stderr().slice(-4000)}`,
      );
    });
    await sleep(1000);
    await db.start();
    const upAcks = burst.acks().length;
    const upApplies = acked.size;
    await waitFor(
      'applies and leases acknowledged again after the restart',
      () => acked.size > upApplies + 10 && burst.acks().length > upAcks + 5,
      30_000,
    ).catch((e) => {
      stop = true;
      throw new Error(
        `${(e as Error).message}: applies ${upApplies} → ${acked.size}, ACKs ${upAcks} → ${burst.acks().length}, ` +
          `last refusals ${JSON.stringify(refusals.slice(-3))}\n${strata.stderr().slice(-3000)}`,
      );
    });
    stop = true;
    await Promise.all(writers);
    await burst.stop();

    // During the outage the API said what was wrong, and the server stayed up.
    assert.equal(probe.status, 503, probe.text);
    assert.match(probe.text, /database .* is unreachable/);
    const failed = refusals.filter((r) => r.status >= 500);
    for (const r of failed) assert.equal(r.status, 503, r.text);
    assert.equal(strata.child.exitCode, null, 'strata did not exit');

    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      const names = new Set(
        (await c.query<{ name: string }>("SELECT name FROM resources WHERE kind = 'Node'")).rows.map(
          (r) => r.name,
        ),
      );
      for (const n of acked) assert.ok(names.has(n), `acknowledged node ${n} is stored`);
      const twice = await c.query(
        "SELECT name, count(*) FROM changes WHERE kind = 'Node' AND type = 'ADDED' GROUP BY name HAVING count(*) > 1",
      );
      assert.deepEqual(twice.rows, [], 'no node was created twice');
      const leases = await c.query<{ key: string; value: { mac: string; state: string } }>(
        "SELECT key, value FROM records WHERE collection = 'dhcp.leases.seg'",
      );
      const all = burst.acks();
      assertNoDoubleBinding(all);
      const checked = assertAcksStored(all, new Map(leases.rows.map((r) => [r.key, r.value])));
      tc.diagnostic(
        `chaos postgres: down ${((Date.now() - downAt) / 1000).toFixed(0)} s window; ${acked.size} applies and ` +
          `${checked} leases acknowledged, all stored; ${failed.length} writes refused with 503`,
      );
    } finally {
      await c.end();
    }
  });
});

const sshKey = (name: string) => `apiVersion: strata.dev/v1alpha1
kind: SSHKey
metadata: { name: ${name} }
spec: { generate: true, comment: ${name}@chaos }
`;

describe('nats-server restarted under load', () => {
  const t = suiteCleanup();

  it('a key asked for during the outage is generated exactly once after it', async (tc) => {
    const nats = await startNats({ jetstream: true }, t);
    const manager = await startStrata(t, { mode: 'manager', nats: nats.url });
    const worker = await startStrata(t, { mode: 'worker', nats: nats.url, roles: 'sshkeys' });
    const fingerprint = async (name: string) =>
      ((await manager.api('GET', `/api/v1/sshkeys/${name}`)).json as { status?: { fingerprint?: string } })
        .status?.fingerprint;
    const generated = (name: string) =>
      worker
        .stderr()
        .split('\n')
        .filter(
          (l) => l.startsWith('{') && l.includes('"generated ssh key"') && l.includes(`"key":"${name}"`),
        ).length;

    for (const name of ['a0', 'a1', 'a2']) {
      const r = await manager.cli(['apply', '-f', '-'], { stdin: sshKey(name) });
      assert.equal(r.code, 0, r.stderr);
    }
    await nats.kill();
    const during = ['b0', 'b1', 'b2'];
    for (const name of during) {
      const r = await manager.cli(['apply', '-f', '-'], { stdin: sshKey(name) });
      assert.equal(r.code, 0, `the API takes the request while NATS is down: ${r.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 1500));
    await nats.restart();
    const all = ['a0', 'a1', 'a2', ...during];
    await waitFor(
      'every key generated after the restart',
      async () => (await Promise.all(all.map(fingerprint))).every(Boolean),
      45_000,
    ).catch((e) => {
      throw new Error(
        `${(e as Error).message}\n${manager.stderr().slice(-3000)}\n${worker.stderr().slice(-2000)}`,
      );
    });
    const first = await Promise.all(all.map(fingerprint));
    // Nothing is generated again later (a redelivered job would replace the key).
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(await Promise.all(all.map(fingerprint)), first, 'keys are stable');
    for (const name of all) assert.equal(generated(name), 1, `${name} generated once`);
    assert.equal(manager.child.exitCode, null);
    assert.equal(worker.child.exitCode, null);
    tc.diagnostic(
      `chaos nats: ${all.length} keys (${during.length} asked for during the outage), each generated once`,
    );
  });
});
