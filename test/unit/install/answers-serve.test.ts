import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodeResource } from '../../../src/core/kinds/node.ts';
import type { ProfileResource } from '../../../src/core/kinds/profile.ts';
import type { ManagerContext } from '../../../src/core/layer.ts';
import { answerFileResponse } from '../../../src/install/answers/serve.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJylnDhT3/DsP9cPQ1MrFb5TIzCCwQLmfY8ebdLDIY1S op@lab';

function fakeCtx() {
  const records: { collection: string; key: string; value: unknown }[] = [];
  const ctx = {
    resources: {
      get: async (kind: string, name: string) =>
        kind === 'Network' && name === 'lab'
          ? { spec: { serverAddress: '10.213.0.1', boot: { httpPort: 7421 } } }
          : undefined,
    },
    store: {
      putRecords: async (collection: string, rs: { key: string; value: unknown }[]) => {
        for (const r of rs) records.push({ collection, ...r });
      },
    },
  } as unknown as Pick<ManagerContext, 'resources' | 'store'>;
  return { ctx, records };
}

const node = (hostname: string) =>
  ({
    metadata: { name: 'node-1' },
    spec: { hostname, macAddresses: ['52:54:00:12:34:56'] },
  }) as unknown as NodeResource;

const profile = {
  metadata: { name: 'fedora' },
  spec: {
    os: { family: 'fedora', release: '40' },
    vars: {},
    preRebootScript: '',
    postRebootScript: 'echo hi\n',
  },
} as unknown as ProfileResource;

/** The attempt's installed-report token as the manager hands it in; counts how often it was asked for. */
function minter() {
  const m = {
    calls: 0,
    installedToken: async () => {
      m.calls++;
      return 'attempt-token-1';
    },
  };
  return m;
}

describe('answers route glue', () => {
  it("serves the kickstart with URLs of the relaying network and the attempt's report token", async () => {
    const { ctx, records } = fakeCtx();
    const events: string[] = [];
    const m = minter();
    const r = await answerFileResponse(ctx, {
      installedToken: m.installedToken,
      node: node('node-1'),
      profile,
      what: 'kickstart',
      network: 'lab',
      sshAuthorizedKeys: [KEY],
      record: (reason) => events.push(reason),
    });
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /^url --url='http:\/\/10\.213\.0\.1:7421\/mirror\/fedora\/40'$/m);
    const token = /Bearer ([A-Za-z0-9_-]+)/.exec(r.body)?.[1];
    assert.ok(token);
    assert.equal(token, 'attempt-token-1');
    assert.equal(m.calls, 1);
    assert.deepEqual(records, [], 'the manager, not the answer file, stores the attempt');
    assert.deepEqual(events, ['InstallAnswerFile']);
  });

  it('an invalid input is a 422 naming the field, and no token is issued', async () => {
    const { ctx, records } = fakeCtx();
    const m = minter();
    const r = await answerFileResponse(ctx, {
      installedToken: m.installedToken,
      node: node('bad_host'),
      profile,
      what: 'kickstart',
      network: 'lab',
      sshAuthorizedKeys: [],
    });
    assert.equal(r.status, 422);
    assert.match(r.body, /^node\.hostname: "bad_host" is not a DNS name/);
    assert.deepEqual(records, []);
    assert.equal(m.calls, 0);
  });

  it('cloud-init meta-data, and 409 without a profile', async () => {
    const { ctx } = fakeCtx();
    const ubuntu = { ...profile, spec: { ...profile.spec, os: { family: 'ubuntu', release: 'noble' } } };
    const base = { node: node('node-1'), network: 'lab', sshAuthorizedKeys: [], ...minter() };
    const md = await answerFileResponse(ctx, {
      ...base,
      profile: ubuntu as ProfileResource,
      what: 'cloud-init/meta-data',
    });
    assert.equal(md.body, 'instance-id: "strata-node-1"\nlocal-hostname: "node-1"\n');
    const none = await answerFileResponse(ctx, { ...base, profile: undefined, what: 'preseed' });
    assert.equal(none.status, 409);
  });
});
