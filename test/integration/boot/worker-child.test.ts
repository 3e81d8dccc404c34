/**
 * The boot worker child process (`src/boot/main.ts`) against a parent made here: this test process bridges
 * the child's stdio to an in-process transport and answers the few subjects a worker asks (its config, its
 * leases), so it can misbehave on purpose — never confirm a lease batch, or stop reading the pipe — in ways
 * a real manager does only under load. Whatever the parent does, the worker must leave promptly and free the
 * segment's ports. Runs inside a test-owned namespace with busybox udhcpc as the client.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it, type TestContext } from 'node:test';
import type { BootConfig, Lease } from '../../../src/boot/protocol.ts';
import { subjects } from '../../../src/boot/protocol.ts';
import { InprocTransport } from '../../../src/core/transport/inproc.ts';
import { createNetns, netnsAvailable } from '../../helpers/netns.ts';
import { waitFor } from '../../helpers/strata.ts';
import { makeSegment, namespacePids, segmentSpec, spawnWorkerChild, udhcpc } from './segment.ts';

const avail = netnsAvailable();

interface Parent {
  persistCalls: number;
  stderr(): string;
  exited: Promise<number | null>;
  child: import('node:child_process').ChildProcess;
}

/** Starts the worker child in the segment's namespace with a parent whose lease writes never complete. */
async function startChild(t: TestContext, prefix: string, opts: { persist: 'hang' | 'ok' }) {
  const set = createNetns(t);
  const seg = makeSegment(set, prefix, ['c1']);
  const dataDir = mkdtempSync(join(tmpdir(), 'boot-reliability-child-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const parent = new InprocTransport();
  const spec = segmentSpec(seg, {
    pool: { start: `${prefix}.100`, end: `${prefix}.120` },
    dns: { zone: 'child.test' },
  });
  const cfg: BootConfig = { network: 'child', spec, reservations: [], knownMacs: [], hosts: [], relays: [] };
  const state = { persistCalls: 0 };
  await parent.serve(subjects.config, async () => cfg);
  await parent.serve(subjects.leasesLoad, async (): Promise<Lease[]> => []);
  await parent.serve(subjects.leasesPersist, async () => {
    state.persistCalls++;
    if (opts.persist === 'hang') return new Promise(() => {});
    return { ok: true };
  });
  const w = await spawnWorkerChild(t, set, seg, parent, 'child', dataDir);
  const p: Parent = {
    get persistCalls() {
      return state.persistCalls;
    },
    ...w,
  };
  return { set, seg, p };
}

it('SIGTERM while a lease batch is never confirmed: the worker exits promptly and frees its ports', {
  skip: avail.ok ? false : avail.reason,
}, async (t) => {
  const { set, seg, p } = await startChild(t, '10.213.44', { persist: 'hang' });
  // The client's REQUEST waits on a lease batch the parent never confirms (no ACK, udhcpc gives up).
  await udhcpc(set, seg.clients.c1!, 2, 1);
  assert.ok(p.persistCalls >= 1, 'the worker tried to save the lease');
  p.child.kill('SIGTERM');
  // A stuck batch must not keep the worker: it gives up on it well inside the supervisor's 5 s grace.
  await waitFor('the worker to exit', () => namespacePids(seg.bridgeNs).length === 0, 3500, 50);
  assert.equal(await p.exited, 0, p.stderr());
});

it('the parent stops reading the pipe: the worker notices on its next write and exits', {
  skip: avail.ok ? false : avail.reason,
}, async (t) => {
  const { set, seg, p } = await startChild(t, '10.213.45', { persist: 'ok' });
  // The parent's end of the child's stdout goes away (as when the parent dies) while stdin stays open.
  p.child.stdout!.destroy();
  // A DHCP exchange makes the worker write a report: EPIPE. That is the parent going, too.
  await udhcpc(set, seg.clients.c1!, 1, 1);
  await waitFor('the worker to exit', () => namespacePids(seg.bridgeNs).length === 0, 3500, 50);
  assert.equal(await p.exited, 0, p.stderr());
});
