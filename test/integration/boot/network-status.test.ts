/**
 * A Network has a status of its own: its boot worker running, or failing with the reason and the fix, as a
 * user reads it in `strata describe network` and `strata get networks`, plus events on the Network's
 * timeline. A namespace that does not exist and a namespace without its bridge are the two mistakes a
 * newcomer makes first. Namespaces are the test's own (test/helpers/netns.ts); the missing one is a name
 * nobody creates.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createNetns, currentNetns, netnsAvailable } from '../../helpers/netns.ts';
import { startStrata, suiteCleanup, waitFor } from '../../helpers/strata.ts';
import { makeSegment, networkManifest } from './segment.ts';

const avail = netnsAvailable();

describe('Network status', { skip: avail.ok ? false : avail.reason }, () => {
  const t = suiteCleanup();
  const set = createNetns(t);
  let strata: Awaited<ReturnType<typeof startStrata>>;

  const describeNet = async (name: string) => (await strata.cli(['describe', 'network', name])).stdout;

  it('a Network naming a namespace that does not exist shows WorkerReady False with the reason', async () => {
    strata = await startStrata(t, { env: { STRATA_HOST_NETNS: currentNetns() } });
    const missing = `${set.prefix}-missing`;
    const r = await strata.cli(['apply', '-f', '-'], {
      stdin: networkManifest('nowhere', { bridgeNs: missing, prefix: '10.213.46' }),
    });
    assert.equal(r.code, 0, r.stderr);
    const out = await waitFor('a failing worker in describe', async () => {
      const d = await describeNet('nowhere');
      return /phase: Failing/.test(d) ? d : undefined;
    });
    assert.match(out, new RegExp(`network namespace ${missing} \\(spec\\.namespace\\) does not exist`));
    assert.match(out, /type: WorkerReady\n\s+status: "False"\n\s+reason: WorkerFailing/);
    assert.match(out, /WorkerFailing/, 'an event on the Network timeline');
    const get = await strata.cli(['get', 'networks']);
    assert.match(get.stdout, /nowhere\s+10\.213\.46\.0\/24\s+full\s+br0\s+Failing/);
  });

  it('a namespace without its bridge: the status names the missing interface and how to create it', async () => {
    const ns = set.addNs('nobridge');
    const r = await strata.cli(['apply', '-f', '-'], {
      stdin: networkManifest('nobridge', { bridgeNs: ns, prefix: '10.213.47' }),
    });
    assert.equal(r.code, 0, r.stderr);
    const out = await waitFor('a failing worker in describe', async () => {
      const d = await describeNet('nobridge');
      return /phase: Failing/.test(d) ? d : undefined;
    });
    assert.match(
      out,
      new RegExp(`interface br0 \\(spec\\.interface\\) does not exist in network namespace ${ns}`),
    );
    assert.match(out, /ip -n \S+ link add br0 type bridge/);
  });

  it('a healthy segment shows WorkerReady True and a WorkerReady event', async () => {
    const seg = makeSegment(set, '10.213.48', ['c1']);
    const r = await strata.cli(['apply', '-f', '-'], { stdin: networkManifest('healthy', seg) });
    assert.equal(r.code, 0, r.stderr);
    const out = await waitFor(
      'a running worker in describe',
      async () => {
        const d = await describeNet('healthy');
        return /phase: Running/.test(d) ? d : undefined;
      },
      20_000,
    );
    assert.match(out, /type: WorkerReady\n\s+status: "True"/);
    assert.match(out, /WorkerReady\s.*serving DHCP/);
  });
});
