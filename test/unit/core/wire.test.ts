/**
 * The wire contract (src/core/wire.ts, each layer's protocol.ts): every layer declares one, docs/wire.md is
 * what they render (regenerate with `node scripts/gen-docs.ts`), and real layer code, run on a transport
 * that notes every subject it touches, uses only subjects its process is declared to send or receive.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadContracts, permissions, renderWire, WIRE_MD } from '../../../scripts/gen-docs.ts';
import { Router } from '../../../src/core/http.ts';
import '../../../src/core/kinds/index.ts';
import { LadderEngine } from '../../../src/core/ladder/engine.ts';
import { silentLogger } from '../../../src/core/log.ts';
import { subjectMatches, type Transport } from '../../../src/core/transport/types.ts';
import { durableName, type WireContract } from '../../../src/core/wire.ts';
import { LAYERS } from '../../../src/layers.ts';
import { registryLayer } from '../../../src/registry/index.ts';
import { serveShell } from '../../../src/shell/worker.ts';
import { sshkeysLayer } from '../../../src/sshkeys/index.ts';
import { memoryCore } from '../../helpers/core.ts';

describe('durableName', () => {
  it('keeps plain names and maps distinct queues to distinct names without dots', () => {
    assert.equal(durableName('sshkeys'), 'sshkeys');
    const queues = ['a.b', 'a_b', 'a__b', 'a_.b', 'a._b', 'a_db', 'a.db', 'a_d.b', 'boot.tftp', 'boot_tftp'];
    const names = queues.map(durableName);
    assert.equal(new Set(names).size, queues.length, names.join(' '));
    for (const n of names) assert.ok(!/[.*> ]/.test(n), n);
  });
});

type Use = { op: 'send' | 'receive'; kind: 'request' | 'publish' | 'queue'; subject: string };

/** The in-process transport, noting each subject used and whether this process sends or receives on it. */
function recording(inner: Transport, uses: Use[]): Transport {
  const note = <T>(op: Use['op'], kind: Use['kind'], subject: string, call: () => T): T => {
    uses.push({ op, kind, subject });
    return call();
  };
  return {
    name: inner.name,
    request: (s, d, o) => note('send', 'request', s, () => inner.request(s, d, o)),
    serve: (s, h) => note('receive', 'request', s, () => inner.serve(s, h)),
    publish: (s, d) => note('send', 'publish', s, () => inner.publish(s, d)),
    subscribe: (s, h) => note('receive', 'publish', s, () => inner.subscribe(s, h)),
    enqueue: (q, id, d) => note('send', 'queue', `work.${q}`, () => inner.enqueue(q, id, d)),
    consume: (q, h, o) => note('receive', 'queue', `work.${q}`, () => inner.consume(q, h, o)),
    close: () => inner.close(),
  };
}

/** Uses no contract declares for this party, as `receive request boot.script` lines. */
function undeclared(contracts: WireContract[], party: string, uses: Use[]): string[] {
  const all = contracts.flatMap((c) => c.subjects);
  return uses
    .filter(
      (u) =>
        !all.some(
          (s) =>
            s.kind === u.kind &&
            subjectMatches(s.subject, u.subject) &&
            (u.op === 'send' ? s.from : s.to).includes(party),
        ),
    )
    .map((u) => `${u.op} ${u.kind} ${u.subject}`);
}

describe('the wire contract', () => {
  it('has a protocol.ts with `wire` for every layer, and docs/wire.md is what they render', async () => {
    const contracts = await loadContracts();
    assert.deepEqual(
      contracts.map((c) => c.layer),
      ['core', ...LAYERS.map((l) => l.name)],
    );
    assert.equal(
      readFileSync(WIRE_MD, 'utf8'),
      renderWire(contracts),
      'docs/wire.md is out of date: run node scripts/gen-docs.ts',
    );
  });

  it('names only known processes, and gives a requester the reply inboxes', async () => {
    const perms = permissions(await loadContracts());
    assert.deepEqual(
      [...perms.keys()],
      ['manager', 'bmc', 'lab', 'boot', 'media', 'sshkeys', 'shell-global'],
    );
    assert.ok(perms.get('boot')!.publish.has('boot.script'));
    assert.ok(perms.get('boot')!.subscribe.has('_INBOX.>'));
    assert.ok(perms.get('manager')!.subscribe.has('boot.script'));
    assert.ok(!perms.get('lab')!.subscribe.has('boot.script'), 'the lab worker never sees boot scripts');
  });

  it('covers every subject the sshkeys and registry managers, an sshkeys worker and a shell worker use', async (t) => {
    const contracts = await loadContracts();
    const { events: _events, transport: inner, ...mem } = memoryCore(t);
    const manager: Use[] = [];
    const worker: Use[] = [];
    const shell: Use[] = [];
    const core = { ...mem, transport: recording(inner, manager) };
    const m = await sshkeysLayer.manager!({
      ...core,
      engine: new LadderEngine(core, { table: [], steps: [] }),
      router: new Router(),
      layers: [],
      dataDir: tmpdir(),
    });
    const w = await sshkeysLayer.worker!(
      { transport: recording(inner, worker), log: silentLogger, dataDir: tmpdir(), id: 'wire-test' },
      'sshkeys',
    );
    const sh = await serveShell(recording(inner, shell), 'seg1', silentLogger);
    const dataDir = mkdtempSync(join(tmpdir(), 'wire-test-'));
    const reg = await registryLayer.manager!({
      ...core,
      engine: new LadderEngine(core, { table: [], steps: [] }),
      router: new Router(),
      layers: [],
      dataDir,
    });
    t.after(async () => {
      await sh.stop();
      await reg?.stop();
      rmSync(dataDir, { recursive: true, force: true });
      await w?.stop();
      await m?.stop();
    });
    await core.resources.apply([
      {
        apiVersion: 'strata.dev/v1alpha1',
        kind: 'SSHKey',
        metadata: { name: 'k' },
        spec: { generate: true },
      },
    ]);
    const end = Date.now() + 10_000;
    while (!(await core.resources.get('SSHKey', 'k'))?.status && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(manager.length && worker.length && shell.length, 'each part used the transport');
    assert.deepEqual(undeclared(contracts, 'manager', manager), []);
    assert.deepEqual(undeclared(contracts, 'sshkeys', worker), []);
    assert.deepEqual(undeclared(contracts, 'boot', shell), []);
  });
});
