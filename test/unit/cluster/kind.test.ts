/**
 * The Cluster kind as a user meets it in `strata apply`: a minimal manifest gets its defaults, and each
 * mistake is refused with the field's path and what to write instead.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ClusterSpec } from '../../../src/cluster/kind.ts';
import '../../../src/cluster/kind.ts';
import { loadManifest, validateDocument } from '../../../src/core/resources/manifest.ts';

const doc = (spec: Record<string, unknown>) => ({
  apiVersion: 'strata.dev/v1alpha1',
  kind: 'Cluster',
  metadata: { name: 'lab' },
  spec,
});
const issues = (spec: Record<string, unknown>) =>
  validateDocument(doc(spec), 'cluster.yaml', 0).issues.map((i) => `${i.path}: ${i.message}`);
const CP = { selector: { matchLabels: { role: 'control-plane' } } };

describe('Cluster kind', () => {
  it('accepts a minimal cluster and fills in the defaults', () => {
    const r = validateDocument(doc({ controlPlane: CP }), undefined, 0);
    assert.deepEqual(r.issues, []);
    const s = r.resource!.spec as ClusterSpec;
    assert.equal(s.distribution, 'kubernetes');
    assert.equal(s.version, 'v1.34.4');
    assert.equal(s.podCIDR, '10.244.0.0/16');
    assert.equal(s.serviceCIDR, '10.96.0.0/12');
    assert.equal(s.cni, 'bridge');
    assert.equal(s.datastore, 'etcd');
    assert.equal(s.controlPlane.count, 1);
  });

  it('names the field and the fix for each mistake', () => {
    const bad = (spec: Record<string, unknown>, re: RegExp) => {
      const got = issues(spec);
      assert.ok(
        got.some((m) => re.test(m)),
        `expected ${re} in ${JSON.stringify(got)}`,
      );
    };
    bad({}, /^spec\.controlPlane: /);
    bad(
      { controlPlane: { selector: { matchLabels: {} } } },
      /^spec\.controlPlane\.selector\.matchLabels: is empty.*role: control-plane/,
    );
    bad(
      { controlPlane: CP, distribution: 'k0s' },
      /^spec\.distribution: expected one of "kubernetes", "k3s"/,
    );
    bad(
      { controlPlane: CP, cni: 'kube-router' },
      /^spec\.registry: is needed with cni: kube-router: .*like 10\.77\.0\.1:7420/,
    );
    bad(
      { controlPlane: CP, cni: 'kube-router', registry: 'http://10.77.0.1:7420' },
      /^spec\.registry: expected Strata's registry as image names start with it, HOST or HOST:PORT/,
    );
    bad(
      { controlPlane: CP, version: '1.34' },
      /^spec\.version: expected a Kubernetes version like v1\.34\.4/,
    );
    bad(
      { controlPlane: CP, podCIDR: '10.96.0.0/16' },
      /^spec\.serviceCIDR: 10\.96\.0\.0\/12 overlaps spec\.podCIDR 10\.96\.0\.0\/16/,
    );
    bad({ controlPlane: CP, podCIDR: '10.244.0.0/26' }, /^spec\.podCIDR: prefix \/26 is outside/);
    bad({ controlPlane: { ...CP, count: 2 } }, /^spec\.controlPlane\.count: expected 1 or 3/);
    bad(
      { controlPlane: { ...CP, count: 3 }, datastore: 'kine' },
      /^spec\.datastore: kine keeps its data in one SQLite file/,
    );
    bad(
      { controlPlane: CP, workers: { selector: { matchLabels: {} } } },
      /^spec\.workers\.selector\.matchLabels: is empty/,
    );
    bad({ controlPlane: CP, cni: 'calico' }, /^spec\.cni: expected one of "bridge", "kube-router"/);
    bad(
      { controlPlane: CP, endpoint: { host: '10.0.0.1', port: 0 } },
      /^spec\.endpoint\.port: expected a TCP port/,
    );
  });

  it('accepts examples/cluster.yaml', () => {
    const text = readFileSync(join(import.meta.dirname, '../../../examples/cluster.yaml'), 'utf8');
    const [c] = loadManifest(text, 'cluster.yaml');
    assert.equal(`${c!.kind}/${c!.metadata.name}`, 'Cluster/lab');
    assert.deepEqual((c!.spec as ClusterSpec).workers, { selector: { matchLabels: { role: 'worker' } } });
  });
});
