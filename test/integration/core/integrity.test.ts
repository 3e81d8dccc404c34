/**
 * Integrity refused at apply, create, replace and patch, each with the field and the fix: one MAC per
 * node, one reserved address per network, inside its subnet and outside its dynamic pool, only hardware
 * providers this server has, and no target state above the highest state the ladder has steps for (the
 * limit comes from the registered steps, so it rises as layers add them). Nothing of a refused apply is
 * written.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { highestImplementedState } from '../../../src/core/ladder/table.ts';
import { LADDER } from '../../../src/ladder.ts';
import { LAYERS } from '../../../src/layers.ts';
import { startApi, type TestApi } from '../../helpers/api.ts';
import { postgresSkipReason, withPostgres } from '../../helpers/services.ts';
import { suiteCleanup } from '../../helpers/strata.ts';

const NETWORK = `
apiVersion: strata.dev/v1alpha1
kind: Network
metadata: { name: rack }
spec:
  interface: eth0
  subnet: 10.7.0.0/24
  serverAddress: 10.7.0.1
  gateway: 10.7.0.254
  pool: { start: 10.7.0.100, end: 10.7.0.199 }
`;

const node = (name: string, spec: Record<string, unknown>) =>
  JSON.stringify({ apiVersion: 'strata.dev/v1alpha1', kind: 'Node', metadata: { name }, spec });

for (const driver of [
  { name: 'sqlite', skip: undefined as string | undefined },
  { name: 'postgres', skip: await postgresSkipReason() },
]) {
  describe(`integrity on ${driver.name}`, { skip: driver.skip, concurrency: 1 }, () => {
    const t = suiteCleanup();
    let api: TestApi;
    const apply = (...docs: string[]) => api.call('POST', '/api/v1/apply', docs.join('\n---\n'));
    const refused = async (
      what: Promise<{ status: number; json: { reason: string; message: string } }>,
      ...patterns: RegExp[]
    ) => {
      const r = await what;
      assert.equal(r.status, 422, JSON.stringify(r.json));
      assert.equal(r.json.reason, 'Invalid');
      for (const p of patterns) assert.match(r.json.message, p);
      return r.json.message;
    };

    it('starts with a network and a node', async () => {
      const db = driver.name === 'postgres' ? await withPostgres(t) : undefined;
      api = await startApi(t, db ? { database: db.url } : {});
      const r = await apply(
        NETWORK,
        node('a', { macAddresses: ['52:54:00:07:00:01'], ipAddress: '10.7.0.10', network: 'rack' }),
      );
      assert.equal(r.status, 200, r.text);
    });

    it('refuses a MAC another node has, in another apply or in the same one', async () => {
      await refused(
        apply(node('b', { macAddresses: ['52-54-00-07-00-01'] })),
        /Node\/b: spec\.macAddresses\[0\]: MAC 52:54:00:07:00:01 is already used by node "a"/,
        /remove it from one of them/,
      );
      const msg = await refused(
        apply(
          node('c', { macAddresses: ['52:54:00:07:00:09'] }),
          node('d', { macAddresses: ['52:54:00:07:00:09'] }),
        ),
        /Node\/c: spec\.macAddresses\[0\]: .* node "d"/,
        /Node\/d: spec\.macAddresses\[0\]: .* node "c"/,
      );
      assert.match(msg, /^2 errors/);
      for (const n of ['b', 'c', 'd'])
        assert.equal((await api.call('GET', `/api/v1/nodes/${n}`)).status, 404);
      // Re-applying a node with its own MAC is fine; so is moving a MAC between nodes in one apply.
      const ok = await apply(
        node('a', { macAddresses: ['52:54:00:07:00:02'], ipAddress: '10.7.0.10', network: 'rack' }),
        node('b', { macAddresses: ['52:54:00:07:00:01'] }),
      );
      assert.equal(ok.status, 200, ok.text);
      await refused(
        api.call('POST', '/api/v1/nodes', JSON.parse(node('e', { macAddresses: ['52:54:00:07:00:01'] }))),
        /already used by node "b"/,
      );
      await refused(
        api.call(
          'PATCH',
          '/api/v1/nodes/b',
          { spec: { macAddresses: ['52:54:00:07:00:02'] } },
          {
            contentType: 'application/merge-patch+json',
          },
        ),
        /already used by node "a"/,
      );
    });

    it('refuses a duplicate address on one network, one outside its subnet or inside its pool', async () => {
      await refused(
        apply(node('ip-dup', { ipAddress: '10.7.0.10', network: 'rack' })),
        /spec\.ipAddress: 10\.7\.0\.10 is already reserved for node "a" on network "rack"/,
      );
      await refused(
        apply(node('ip-out', { ipAddress: '10.8.0.10', network: 'rack' })),
        /spec\.ipAddress: 10\.8\.0\.10 is outside subnet 10\.7\.0\.0\/24 of network "rack": choose an address in 10\.7\.0\.0\/24/,
      );
      await refused(
        apply(node('ip-pool', { ipAddress: '10.7.0.150', network: 'rack' })),
        /spec\.ipAddress: 10\.7\.0\.150 is inside the dynamic pool 10\.7\.0\.100-10\.7\.0\.199 of network "rack": a reserved address must lie outside the pool/,
      );
      await refused(apply(node('ip-gw', { ipAddress: '10.7.0.254', network: 'rack' })), /is the gateway/);
      // Without a named network, the only network is the node's network (as the boot layer resolves it).
      await refused(apply(node('ip-implicit', { ipAddress: '10.7.0.120' })), /inside the dynamic pool/);
      const ok = await apply(node('ip-ok', { ipAddress: '10.7.0.11', network: 'rack' }));
      assert.equal(ok.status, 200, ok.text);
    });

    it('refuses a Network change that strands an address a node reserves', async () => {
      const narrowed = NETWORK.replace('10.7.0.100, end: 10.7.0.199', '10.7.0.5, end: 10.7.0.50');
      await refused(
        apply(narrowed),
        /Network\/rack: spec: node "a" reserves 10\.7\.0\.10, which is inside the dynamic pool 10\.7\.0\.5-10\.7\.0\.50 of network "rack": .*change that node's spec\.ipAddress first/,
      );
      const moved = NETWORK.replace('subnet: 10.7.0.0/24', 'subnet: 10.7.1.0/24').replace(
        /10\.7\.0\./g,
        '10.7.1.',
      );
      await refused(apply(moved), /node "a" reserves 10\.7\.0\.10, which is outside subnet 10\.7\.1\.0\/24/);
      assert.equal((await apply(NETWORK)).status, 200, 'an unchanged network is fine');
    });

    it('refuses a hardware provider this server does not have, listing those it has', async (t) => {
      // A server without the lab layer (a site manager with no QEMU) has no `lab` provider.
      const bare = await startApi(t, { layers: LAYERS.filter((l) => l.name !== 'lab') });
      await refused(
        bare.call('POST', '/api/v1/apply', node('vm', { providers: { hardware: 'lab' } })),
        /spec\.providers\.hardware: hardware provider "lab" is not available on this server: available are human, ipmi, none, redfish/,
      );
    });

    it('a BMC provider needs its BMC: spec.bmc is named with what it must hold', async () => {
      await refused(
        apply(node('bmc', { providers: { hardware: 'redfish' } })),
        /spec\.bmc: hardware provider "redfish" needs spec\.bmc/,
      );
    });

    it('refuses a targetState above the highest state with steps, naming it; the limit follows the steps', async () => {
      const top = api.platform.engine!.highestImplementedState();
      assert.equal(top, 6, 'states 1..6 have steps today');
      await refused(
        apply(node('high', { targetState: top + 1 })),
        new RegExp(
          `spec\\.targetState: state ${top + 1} \\(layer-n cluster node\\) has no steps on this server yet: the highest state a node can reach is ${top} \\(layer-1 cluster node\\); set targetState to 0\\.\\.${top}`,
        ),
      );
      assert.equal((await apply(node('high', { targetState: top }))).status, 200);
      // A layer that adds a step for the next state raises the limit.
      const next = LADDER.map((r) => (r.state === top + 1 ? { ...r, steps: { '*': 'test.next' } } : r));
      assert.equal(highestImplementedState(next), top + 1);
    });
  });
}
