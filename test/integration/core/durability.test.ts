/**
 * kill -9 durability of the embedded store: while writers apply Nodes over HTTP, `strata up` (SQLite) is
 * killed with SIGKILL at random moments and restarted on the same data directory. Every write the API
 * acknowledged (2xx) must be there afterwards with the acknowledged spec and labels, and the database must
 * pass `PRAGMA integrity_check`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { it } from 'node:test';
import { startStrata } from '../../helpers/strata.ts';

const WRITERS = 3;
const KILLS = 4;

interface Acked {
  mac: string;
  /** Values of the `gen` label the node may have: the last acknowledged one, plus any in-doubt later ones. */
  gens: Set<string>;
}

const manifest = (name: string, mac: string, writer: number, gen: string) =>
  `apiVersion: strata.dev/v1alpha1
kind: Node
metadata:
  name: ${name}
  labels: { writer: "w${writer}", gen: "${gen}" }
spec:
  macAddresses: ["${mac}"]
  hostname: ${name}.example
`;

it('every acknowledged write survives kill -9 at random moments; the database stays intact', async (t) => {
  const s = await startStrata(t);
  const acked = new Map<string, Acked>();
  const ackedPerLife: number[] = [0];
  let inDoubt = 0;
  let stop = false;

  const writer = async (w: number) => {
    for (let seq = 0; !stop; seq++) {
      // Mostly creates, some updates of a node acknowledged earlier (labels change: "configured").
      const mine = [...acked.keys()].filter((n) => n.startsWith(`w${w}-`));
      const update = seq % 4 === 3 && mine.length > 0;
      const name = update ? mine[seq % mine.length]! : `w${w}-${seq}`;
      const mac = update
        ? acked.get(name)!.mac
        : `52:54:00:0${w}:${((seq >> 8) & 255).toString(16).padStart(2, '0')}:${(seq & 255).toString(16).padStart(2, '0')}`;
      const gen = String(seq);
      const life = ackedPerLife.length - 1;
      let ok = false;
      try {
        const res = await fetch(`${s.url}/api/v1/apply`, {
          method: 'POST',
          headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/yaml' },
          body: manifest(name, mac, w, gen),
          signal: AbortSignal.timeout(5000),
        });
        await res.text();
        ok = res.ok;
      } catch {
        // Connection refused or cut by the kill: not acknowledged.
      }
      if (ok) {
        acked.set(name, { mac, gens: new Set([gen]) });
        ackedPerLife[life] = (ackedPerLife[life] ?? 0) + 1;
      } else {
        inDoubt++;
        acked.get(name)?.gens.add(gen);
        await new Promise((r) => setTimeout(r, 30));
      }
    }
  };

  const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
  for (let k = 0; k < KILLS; k++) {
    await new Promise((r) => setTimeout(r, 1500 + Math.random() * 2500));
    await s.kill();
    ackedPerLife.push(0);
    await s.start();
  }
  // One more kill with writes in flight, then look at the files the way they were left.
  await new Promise((r) => setTimeout(r, 1000 + Math.random() * 1000));
  await s.kill();
  stop = true;
  await Promise.all(writers);

  assert.ok(acked.size >= 50, `enough acknowledged writes to mean something (${acked.size})`);
  for (const [i, n] of ackedPerLife.slice(0, KILLS + 1).entries()) {
    assert.ok(n > 0, `writes were acknowledged in server life ${i + 1}: ${ackedPerLife}`);
  }

  const db = new DatabaseSync(join(s.dataDir, 'strata.db'));
  try {
    assert.deepEqual(
      db
        .prepare('PRAGMA integrity_check')
        .all()
        .map((r) => ({ ...r })),
      [{ integrity_check: 'ok' }],
    );
    const rows = db.prepare("SELECT name, meta, spec FROM resources WHERE kind = 'Node'").all() as {
      name: string;
      meta: string;
      spec: string;
    }[];
    const stored = new Map(rows.map((r) => [r.name, r]));
    for (const [name, want] of acked) {
      const row = stored.get(name);
      assert.ok(row, `acknowledged node ${name} is in the database`);
      const spec = JSON.parse(row.spec) as { macAddresses: string[]; hostname: string };
      assert.deepEqual(spec.macAddresses, [want.mac], name);
      assert.equal(spec.hostname, `${name}.example`);
      const gen = (JSON.parse(row.meta) as { labels: Record<string, string> }).labels.gen!;
      assert.ok(
        want.gens.has(gen),
        `${name} has an acknowledged or in-doubt gen (${gen} ∉ ${[...want.gens]})`,
      );
    }
  } finally {
    db.close();
  }

  // And the restarted server serves the same.
  await s.start();
  const res = await s.api('GET', '/api/v1/nodes');
  const items = (res.json as { items: { metadata: { name: string; labels: Record<string, string> } }[] })
    .items;
  const served = new Map(items.map((i) => [i.metadata.name, i]));
  for (const [name, want] of acked) {
    assert.ok(want.gens.has(served.get(name)?.metadata.labels.gen ?? '?'), `${name} served as acknowledged`);
  }
  t.diagnostic(
    `${acked.size} nodes acknowledged (${ackedPerLife.join('/')} per server life), ${inDoubt} writes not acknowledged`,
  );
});
