/**
 * Pure pieces of the core that the integration suites rely on: backoff that grows and stays capped, the
 * keyed work queue (dedupe, one run per key at a time, earliest delay wins), manifest issues that carry
 * file, resource and field path, and list output that stays a list.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { printResources } from '../../../src/cli/print.ts';
import '../../../src/core/kinds/index.ts';
import { backoffMs, WorkQueue } from '../../../src/core/ladder/queue.ts';
import { StrataError } from '../../../src/core/resources/errors.ts';
import { getKind } from '../../../src/core/resources/kinds.ts';
import { formatPath, loadManifests } from '../../../src/core/resources/manifest.ts';
import type { Resource } from '../../../src/core/resources/types.ts';

describe('backoffMs', () => {
  it('grows with each attempt (jitter never makes a later attempt shorter) and is capped', () => {
    for (const r of [0, 0.5, 0.999]) {
      const rnd = () => r;
      assert.equal(backoffMs(1, 100, 10_000, rnd), Math.round(50 + r * 50));
      assert.ok(backoffMs(4, 100, 10_000, rnd) >= 400);
      assert.ok(backoffMs(30, 100, 10_000, rnd) <= 10_000);
    }
    // Ranges of consecutive attempts touch but do not overlap: max(n) = min(n + 1).
    for (let n = 1; n < 8; n++) {
      assert.ok(backoffMs(n, 100, 1e9, () => 1) <= backoffMs(n + 1, 100, 1e9, () => 0));
    }
  });
});

describe('WorkQueue', () => {
  it('runs a key queued many times once, never twice at once, and re-runs a key dirtied while running', async () => {
    const runs: string[] = [];
    let active = 0;
    let maxActive = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const q = new WorkQueue(async (k) => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs.push(k);
      if (runs.length === 1) await gate;
      active--;
    }, 4);
    q.add('a');
    q.add('a'); // while running: marks it dirty
    q.add('a');
    release();
    await q.whenIdle();
    assert.deepEqual(runs, ['a', 'a']);
    assert.equal(maxActive, 1);
    q.stop();
  });

  it('keeps only the earliest of several delayed re-queues', async () => {
    const runs: number[] = [];
    const start = Date.now();
    const q = new WorkQueue(async () => {
      runs.push(Date.now() - start);
    });
    q.addAfter('k', 400);
    q.addAfter('k', 30);
    q.addAfter('k', 200);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(runs.length, 1);
    assert.ok(runs[0]! < 200, `ran after ${runs[0]} ms`);
    q.stop();
  });
});

describe('manifest issues', () => {
  const H = 'apiVersion: strata.dev/v1alpha1';
  it('formats zod paths like spec.macAddresses[0]', () => {
    assert.equal(formatPath(['spec', 'macAddresses', 0, 'x']), 'spec.macAddresses[0].x');
  });

  it('collects every problem of every file, each with file, resource and path', () => {
    let err: unknown;
    try {
      loadManifests([
        {
          name: 'a.yaml',
          text: `${H}\nkind: Node\nmetadata: {name: n1}\n---\n${H}\nkind: Node\nmetadata: {name: n2}\nspec: {targetState: 10}\n`,
        },
        {
          name: 'b.yaml',
          text: `${H}\nkind: Node\nmetadata: {name: n1}\n---\n${H}\nkind: Network\nmetadata: {name: net}\nspec: {interface: eth0, subnet: 10.0.0.0/24, serverAddress: 10.0.1.1, dhcp: {mode: off}}\n`,
        },
      ]);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof StrataError);
    assert.equal(err.status, 422);
    assert.equal(err.reason, 'Invalid');
    assert.deepEqual(
      err.details!.map((d) => [d.file, d.resource, d.path]),
      [
        ['a.yaml', 'Node/n2', 'spec.targetState'],
        ['b.yaml', 'Node/n1', 'metadata.name'],
        ['b.yaml', 'Network/net', 'spec.serverAddress'],
      ],
    );
    assert.match(
      err.message,
      /^3 errors:\n {2}a\.yaml: Node\/n2: spec\.targetState: expected a state number 0\.\.9/,
    );
  });

  it('applies defaults and normalises MACs in what it accepts', () => {
    const [n] = loadManifests([
      {
        name: 'n.yaml',
        text: `${H}\nkind: Node\nmetadata: {name: n1}\nspec: {macAddresses: [52-54-00-AA-BB-CC]}\n`,
      },
    ]);
    assert.deepEqual(n!.spec.macAddresses, ['52:54:00:aa:bb:cc']);
    assert.equal(n!.spec.targetState, 0);
    assert.deepEqual(n!.spec.providers, { hardware: 'human', boot: 'network' });
  });
});

describe('printResources', () => {
  const def = getKind('Node')!;
  const node = (name: string): Resource => ({
    apiVersion: 'strata.dev/v1alpha1',
    kind: 'Node',
    metadata: { name, creationTimestamp: new Date().toISOString() },
    spec: { targetState: 0, macAddresses: [], providers: { hardware: 'human' } },
  });
  it('prints a list as a List even with one item, a named object as itself', () => {
    assert.equal(JSON.parse(printResources(def, [node('a')], 'json')).kind, 'List');
    assert.equal(JSON.parse(printResources(def, [node('a')], 'json', true)).kind, 'Node');
  });
  it('does not fold long values in YAML (keys and certificates stay on one line)', () => {
    const long = `ssh-ed25519 ${'A'.repeat(120)} me@host`;
    const r = { ...node('a'), status: { hostKey: long } };
    assert.match(printResources(def, [r], 'yaml'), new RegExp(`^  hostKey: ${long}$`, 'm'));
  });
});
