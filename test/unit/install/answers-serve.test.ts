import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashToken, INSTALLED_TOKENS } from '../../../src/boot/tokens.ts';
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

describe('answers route glue', () => {
  it('serves the kickstart with URLs of the relaying network and stores the report token hash', async () => {
    const { ctx, records } = fakeCtx();
    const events: string[] = [];
    const r = await answerFileResponse(ctx, {
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
    assert.deepEqual(records, [
      { collection: INSTALLED_TOKENS, key: 'node-1', value: { hash: hashToken(token) } },
    ]);
    assert.deepEqual(events, ['InstallAnswerFile']);
  });

  it('an invalid input is a 422 naming the field, and no token is issued', async () => {
    const { ctx, records } = fakeCtx();
    const r = await answerFileResponse(ctx, {
      node: node('bad_host'),
      profile,
      what: 'kickstart',
      network: 'lab',
      sshAuthorizedKeys: [],
    });
    assert.equal(r.status, 422);
    assert.match(r.body, /^node\.hostname: "bad_host" is not a DNS name/);
    assert.deepEqual(records, []);
  });

  it('cloud-init meta-data, and 409 without a profile', async () => {
    const { ctx } = fakeCtx();
    const ubuntu = { ...profile, spec: { ...profile.spec, os: { family: 'ubuntu', release: 'noble' } } };
    const base = { node: node('node-1'), network: 'lab', sshAuthorizedKeys: [] };
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
