/**
 * Several Strata instances on one machine must not hurt each other's lab. A lab network made by someone
 * else (a real namespace and bridge, LabNetwork.create; no QEMU) and recorded with the real owner mechanism
 * (claimLab: this test process, another data dir) must survive:
 * - a SIGTERM of an instance that never ran `lab up` (this used to delete the lab namespace);
 * - `strata lab up` of another instance, refused before any work with a message naming the owner;
 * - `strata lab down` of another instance.
 * Its owner's `strata lab down` (here the local teardown of the CLI, the API being gone) removes it.
 * The namespace has a name of its own (STRATA_LAB_NETNS), never the machine's `strata-lab`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LabNetwork, labDown, listNetns } from '../../../src/lab/network.ts';
import { claimLab, forgetLab, ownerFile, readLabOwner } from '../../../src/lab/owner.ts';
import { runCli, startStrata, suiteCleanup, tempDir } from '../../helpers/strata.ts';

describe('lab ownership: an instance tears down only the lab it made', () => {
  const t = suiteCleanup();
  const netns = `lfr-${randomBytes(4).toString('hex')}`;
  const ownerDataDir = tempDir(t, 'lab-first-run-owner-');
  const cache = tempDir(t, 'lab-first-run-cache-');
  const env = { STRATA_LAB_NETNS: netns, STRATA_LAB_CACHE: cache };

  before(async () => {
    await LabNetwork.create({ name: netns, stateDir: join(ownerDataDir, 'lab'), radvd: false });
    claimLab(netns, ownerDataDir);
  });
  after(async () => {
    await labDown({ name: netns, stateDir: join(ownerDataDir, 'lab'), purge: true });
    if (readLabOwner(netns)?.pid === process.pid) forgetLab(netns);
  });

  it('a SIGTERM of an instance that never ran lab up leaves the lab alone', async () => {
    const a = await startStrata(t, { env });
    await a.stop();
    assert.equal(a.child.signalCode ?? a.child.exitCode, 0, a.stderr());
    assert.ok((await listNetns()).includes(netns), 'the lab namespace survives');
    assert.equal(readLabOwner(netns)?.pid, process.pid, 'its owner record too');
  });

  it('lab up of another instance is refused before any work, naming the owner', async () => {
    const b = await startStrata(t, { env });
    const r = await b.cli(['lab', 'up', '--nodes', '1'], { env });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`lab namespace ${netns} belongs to another Strata instance`));
    assert.match(r.stderr, new RegExp(`pid ${process.pid}, data dir ${ownerDataDir}`));
    assert.deepEqual(readdirSync(cache), [], 'no asset build started');
    // the API refuses it too, whoever calls it
    const api = await b.api('POST', '/api/v1/lab/up', { nodes: 1 });
    assert.equal(api.status, 409, api.text);
    assert.match(api.text, new RegExp(`pid ${process.pid}`));
    assert.deepEqual(readdirSync(cache), [], 'no asset build started');

    const down = await b.cli(['lab', 'down'], { env });
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stderr, /belongs to another Strata instance .*: left alone/);
    await b.stop();
    assert.ok((await listNetns()).includes(netns), 'the lab namespace survives');
  });

  it("its owner's lab down removes it", async () => {
    const r = await runCli(['--data-dir', ownerDataDir, 'lab', 'down'], {
      server: 'http://127.0.0.1:9',
      env,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /lab is down/);
    assert.ok(!(await listNetns()).includes(netns), 'the namespace is gone');
    assert.ok(!existsSync(ownerFile(netns)), 'and its owner record');
    assert.ok(!existsSync(join(ownerDataDir, 'lab', netns)), 'and its state');
  });

  it('lab down with no lab anywhere is a quiet success', async () => {
    const c = await startStrata(t, { env });
    const r = await c.cli(['lab', 'down'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /lab is down/);
    assert.doesNotMatch(r.stderr, /left alone/);
  });
});
