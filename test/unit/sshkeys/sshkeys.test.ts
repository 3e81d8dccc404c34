/**
 * The sshkeys layer in one process on a real store and the in-process transport, with OpenSSH's own
 * ssh-keygen: an imported key gets the fingerprint ssh-keygen prints; `generate: true` has the worker make an
 * ed25519 pair whose private half lands in the secrets collection only; the pair is not replaced on resync;
 * deleting the key removes its secret. The manager's decisions also one by one, with no worker: which
 * SSHKey gets a job (and only one), and which worker reports it keeps or drops.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EventHub } from '../../../src/core/events.ts';
import { Router } from '../../../src/core/http.ts';
import type { SSHKeyResource } from '../../../src/core/kinds/sshkey.ts';
import '../../../src/core/kinds/index.ts';
import { LadderEngine } from '../../../src/core/ladder/engine.ts';
import type { Stoppable } from '../../../src/core/layer.ts';
import { silentLogger } from '../../../src/core/log.ts';
import { ResourceService } from '../../../src/core/resources/service.ts';
import { API_VERSION } from '../../../src/core/resources/types.ts';
import { SqliteStore } from '../../../src/core/store/sqlite.ts';
import { InprocTransport } from '../../../src/core/transport/inproc.ts';
import {
  fingerprint,
  privateKeyOf,
  reconcileKey,
  SECRETS,
  sshkeysLayer,
  storeGenerated,
} from '../../../src/sshkeys/index.ts';
import { type GenerateJob, subjects } from '../../../src/sshkeys/protocol.ts';
import { memoryCore } from '../../helpers/core.ts';

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'seams-sshkeys-'));
  const store = new SqliteStore(':memory:');
  const transport = new InprocTransport();
  const hub = new EventHub(store, silentLogger);
  const resources = new ResourceService(store, hub);
  const core = { store, transport, hub, resources, log: silentLogger };
  const engine = new LadderEngine(core, { table: [], steps: [] });
  const stops: Stoppable[] = [];
  stops.push(
    (await sshkeysLayer.worker!(
      { transport, log: silentLogger, dataDir: dir, id: 'sshkeys-test' },
      'sshkeys',
    ))!,
    (await sshkeysLayer.manager!({
      ...core,
      engine,
      router: new Router(),
      dataDir: dir,
      layers: [sshkeysLayer],
    }))!,
  );
  t.after(async () => {
    for (const s of stops.reverse()) await s.stop();
    await hub.flush();
    await transport.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const key = (name: string) => resources.get<SSHKeyResource>('SSHKey', name);
  return { store, resources, key, dir };
}

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false | ''>,
  ms = 10_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('sshkeys', () => {
  it('an imported key gets the fingerprint ssh-keygen prints', async (t) => {
    const s = await setup(t);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'imp', '-f', join(s.dir, 'imp')]);
    const pub = execFileSync('cat', [join(s.dir, 'imp.pub')], { encoding: 'utf8' }).trim();
    const printed = execFileSync('ssh-keygen', ['-lf', join(s.dir, 'imp.pub')], { encoding: 'utf8' });
    await s.resources.apply([
      { apiVersion: API_VERSION, kind: 'SSHKey', metadata: { name: 'imp' }, spec: { publicKey: pub } },
    ]);
    const k = await until(
      'fingerprint',
      async () => (await s.key('imp'))?.status?.fingerprint && s.key('imp'),
    );
    assert.equal(k?.status?.fingerprint, printed.split(' ')[1]);
    assert.equal(fingerprint(pub), printed.split(' ')[1]);
    assert.equal(await privateKeyOf(s, 'imp'), undefined, 'an imported key has no private half here');
  });

  it('generates a pair in the worker, keeps the private half in secrets, and forgets it on delete', async (t) => {
    const s = await setup(t);
    await s.resources.apply([
      {
        apiVersion: API_VERSION,
        kind: 'SSHKey',
        metadata: { name: 'gen' },
        spec: { generate: true, type: 'ed25519', comment: 'gen@test' },
      },
    ]);
    const k = await until('generated', async () => (await s.key('gen'))?.status?.publicKey && s.key('gen'));
    assert.match(k!.status!.publicKey!, /^ssh-ed25519 \S+ gen@test$/);
    assert.doesNotMatch(JSON.stringify(k), /PRIVATE KEY/, 'the resource holds no private half');
    const priv = await privateKeyOf(s, 'gen');
    assert.match(priv ?? '', /^-----BEGIN OPENSSH PRIVATE KEY-----/);
    // The private half matches the public one, as ssh-keygen -y derives it.
    writeFileSync(join(s.dir, 'gen'), priv!, { mode: 0o600 });
    const derived = execFileSync('ssh-keygen', ['-y', '-f', join(s.dir, 'gen')], { encoding: 'utf8' });
    assert.equal(derived.trim().split(' ')[1], k!.status!.publicKey!.split(' ')[1]);

    // A change to the key (a resync, a label) does not make a new pair.
    await s.resources.apply([
      {
        apiVersion: API_VERSION,
        kind: 'SSHKey',
        metadata: { name: 'gen', labels: { touched: 'yes' } },
        spec: { generate: true, type: 'ed25519', comment: 'gen@test' },
      },
    ]);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await s.key('gen'))?.status?.publicKey, k!.status!.publicKey);

    await s.resources.delete('SSHKey', 'gen');
    await until('secret removed', async () => !(await s.store.getRecord(SECRETS, 'sshkey/gen')));
  });
});

describe('sshkeys manager decisions (no worker)', () => {
  const ED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOqVL4iLWDs6Hk5pTm2CwBEmAU6d3hKMvOXyYEkd4bbK';
  function bare(t: { after(fn: () => Promise<void>): void }) {
    const { store, transport, hub, resources, events } = memoryCore(t);
    const ctx = { store, transport, hub, resources };
    const jobs = async () => {
      const got: GenerateJob[] = [];
      const sub = await transport.consume<GenerateJob>(subjects.generate, async (j) => void got.push(j.data));
      await new Promise((r) => setTimeout(r, 50));
      await sub.unsubscribe();
      return got;
    };
    const add = async (name: string, spec: Record<string, unknown>) => {
      await resources.apply([{ apiVersion: API_VERSION, kind: 'SSHKey', metadata: { name }, spec }]);
      return (await resources.get<SSHKeyResource>('SSHKey', name))!;
    };
    return { ctx, jobs, add, events, store, resources };
  }

  it('asks for one pair per key that wants one, however often it reconciles', async (t) => {
    const s = bare(t);
    const k = await s.add('gen', { generate: true, type: 'ed25519' });
    await reconcileKey(s.ctx, 'gen');
    await reconcileKey(s.ctx, 'gen');
    assert.deepEqual(await s.jobs(), [{ name: 'gen', uid: k.metadata.uid, comment: 'strata-gen' }]);
  });

  it('asks for nothing for an imported key, and fills in its fingerprint', async (t) => {
    const s = bare(t);
    await s.add('imp', { publicKey: ED });
    await reconcileKey(s.ctx, 'imp');
    assert.deepEqual(await s.jobs(), []);
    const k = await s.resources.get<SSHKeyResource>('SSHKey', 'imp');
    assert.equal(k?.status?.fingerprint, fingerprint(ED));
    assert.equal(k?.status?.ready, true);
  });

  it('keeps the first pair a worker reports and drops reports for a replaced key or a second pair', async (t) => {
    const s = bare(t);
    const k = await s.add('gen', { generate: true, type: 'ed25519' });
    const pair = (n: number) => ({ publicKey: `${ED.slice(0, -4)}AAA${n}`, privateKey: `PRIVATE ${n}` });
    await storeGenerated(s.ctx, { name: 'gen', uid: 'another-uid', ...pair(1) });
    assert.equal(await privateKeyOf(s.ctx, 'gen'), undefined, 'a report for a replaced key is dropped');
    await storeGenerated(s.ctx, { name: 'gen', uid: k.metadata.uid!, ...pair(2) });
    await storeGenerated(s.ctx, { name: 'gen', uid: k.metadata.uid!, ...pair(3) });
    assert.equal(await privateKeyOf(s.ctx, 'gen'), 'PRIVATE 2');
    const st = (await s.resources.get<SSHKeyResource>('SSHKey', 'gen'))?.status;
    assert.equal(st?.publicKey, pair(2).publicKey);
    assert.equal(st?.privateKeyRef, 'secret:sshkey/gen');
    assert.doesNotMatch(JSON.stringify(st), /PRIVATE/);
    await s.ctx.hub.flush();
    assert.deepEqual(
      s.events.filter((e) => e.name === 'gen').map((e) => e.reason),
      ['Generated'],
    );
    await storeGenerated(s.ctx, { name: 'gone', uid: 'x', ...pair(4) });
    assert.equal(await privateKeyOf(s.ctx, 'gone'), undefined, 'a report for a deleted key is dropped');
  });

  it("removes a deleted key's private half", async (t) => {
    const s = bare(t);
    await s.store.putRecords(SECRETS, [{ key: 'sshkey/old', value: { privateKey: 'PRIVATE' } }]);
    await reconcileKey(s.ctx, 'old');
    assert.equal(await privateKeyOf(s.ctx, 'old'), undefined);
  });
});
