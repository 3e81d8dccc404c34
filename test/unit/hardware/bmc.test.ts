/**
 * The BMC pieces that need no BMC: a Node's `spec.bmc` refused with the field and the fix, the call
 * machinery (retries only for what may pass, backoff, the per-BMC concurrency limit, every call logged),
 * and the Node that `strata bmc discover` proposes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import '../../../src/core/kinds/index.ts';
import { proposedNode } from '../../../src/cli/commands/hardware.ts';
import { StrataError } from '../../../src/core/resources/errors.ts';
import { loadManifest } from '../../../src/core/resources/manifest.ts';
import { BmcError, BmcSession } from '../../../src/hardware/bmc.ts';

const node = (bmc: string, hw = 'redfish') =>
  `apiVersion: strata.dev/v1alpha1\nkind: Node\nmetadata: {name: n1}\nspec:\n  providers: {hardware: ${hw}}\n${bmc ? `  bmc: ${bmc}\n` : ''}`;

function issues(text: string): string[] {
  try {
    loadManifest(text);
  } catch (e) {
    assert.ok(e instanceof StrataError, String(e));
    return e.details!.map((d) => `${d.path}: ${d.message}`);
  }
  return [];
}

describe('spec.bmc', () => {
  it('accepts a pinned Redfish BMC and normalises the fingerprint', () => {
    const fp = 'AB:'.repeat(31) + 'AB';
    const [r] = loadManifest(
      node(
        `{protocol: redfish, address: "https://10.0.0.5:8443", credentialsSecret: rack1, fingerprint: "${fp}"}`,
      ),
    );
    assert.equal((r!.spec as { bmc: { fingerprint: string } }).bmc.fingerprint, 'ab'.repeat(32));
  });

  it('names the field and the fix', () => {
    assert.deepEqual(issues(node('')), [
      'spec.bmc: hardware provider "redfish" needs spec.bmc: {protocol: redfish, address: ..., credentialsSecret: ...}',
    ]);
    assert.match(
      issues(node('{protocol: redfish, address: 10.0.0.5, credentialsSecret: a, fingerprint: abc}'))[0]!,
      /^spec\.bmc\.fingerprint: expected the SHA-256 fingerprint/,
    );
    assert.match(
      issues(
        node(
          '{protocol: redfish, address: 10.0.0.5, credentialsSecret: a, caCert: "-----BEGIN CERTIFICATE-----", insecureSkipVerify: true}',
        ),
      )[0]!,
      /^spec\.bmc\.insecureSkipVerify: set only one of caCert, fingerprint, insecureSkipVerify/,
    );
    assert.match(
      issues(node('{protocol: ipmi, address: "https://x", credentialsSecret: a}', 'ipmi'))[0]!,
      /^spec\.bmc\.address: an IPMI BMC address is host or host:port/,
    );
    assert.match(
      issues(node('{protocol: ipmi, address: x, credentialsSecret: a}', 'redfish'))[0]!,
      /^spec\.bmc\.protocol: bmc\.protocol is "ipmi" but providers\.hardware is "redfish"/,
    );
    assert.match(
      issues(node('{protocol: redfish, address: "admin:pw@x", credentialsSecret: a}'))[0]!,
      /^spec\.bmc\.address: expected a host, host:port or https:\/\/host:port \(no path, no credentials\)/,
    );
    assert.match(issues(node('{protocol: redfish, address: x, password: a}'))[0]!, /^spec\.bmc/);
  });
});

describe('BMC calls', () => {
  it('retries transient failures with growing backoff and logs every attempt', async () => {
    const s = new BmcSession('t1', { attempts: 3, backoffMs: 50 });
    const at: number[] = [];
    const v = await s.call('GET /x', async () => {
      at.push(performance.now());
      if (at.length < 3) throw new BmcError(502, 'BmcServerError', 'busy', true);
      return { value: 'ok', status: 200 };
    });
    assert.equal(v, 'ok');
    assert.deepEqual(
      s.calls.map((c) => [c.attempt, c.status ?? c.error]),
      [
        [1, 'busy'],
        [2, 'busy'],
        [3, 200],
      ],
    );
    assert.ok(
      at[1]! - at[0]! >= 45 && at[2]! - at[1]! >= 95,
      `backoff ${at[1]! - at[0]!} then ${at[2]! - at[1]!}`,
    );
  });

  it('does not retry what will not pass (bad credentials, a wrong pin)', async () => {
    const s = new BmcSession('t2', { attempts: 3, backoffMs: 1 });
    let n = 0;
    await assert.rejects(
      s.call('GET /x', async () => {
        n++;
        throw new BmcError(502, 'BmcUnauthorized', 'refused');
      }),
      { reason: 'BmcUnauthorized' },
    );
    assert.equal(n, 1);
  });

  it('cuts a hanging attempt at its timeout as BmcTimeout', async () => {
    const s = new BmcSession('t3', { attempts: 1, timeoutMs: 100 });
    await assert.rejects(
      s.call(
        'GET /hang',
        (signal) =>
          new Promise((_r, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
      ),
      { reason: 'BmcTimeout', status: 504 },
    );
  });

  it('runs at most `concurrency` calls at once against one BMC', async () => {
    let active = 0;
    let most = 0;
    const one = () =>
      new BmcSession('same-bmc', { concurrency: 2 }).call('GET /x', async () => {
        most = Math.max(most, ++active);
        await new Promise((r) => setTimeout(r, 20));
        active--;
        return { value: 1 };
      });
    await Promise.all([one(), one(), one(), one(), one()]);
    assert.equal(most, 2);
  });
});

describe('strata bmc discover', () => {
  it('proposes a Node with the MACs, UUID and the pin it was given', () => {
    const n = proposedNode(
      'https://10.0.0.5:8443',
      'rack1',
      { id: '1', inventory: { readAt: 'x', uuid: 'u-1', nics: [{ id: 'a', mac: '52:54:00:00:00:01' }] } },
      { fingerprint: 'ab' },
      false,
    ) as { metadata: { name: string }; spec: Record<string, unknown> };
    assert.equal(n.metadata.name, '10-0-0-5');
    assert.deepEqual(n.spec.macAddresses, ['52:54:00:00:00:01']);
    assert.deepEqual(n.spec.bmc, {
      protocol: 'redfish',
      address: 'https://10.0.0.5:8443',
      credentialsSecret: 'rack1',
      systemId: '1',
      fingerprint: 'ab',
    });
  });
});
