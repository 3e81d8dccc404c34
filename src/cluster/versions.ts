/**
 * Which Kubernetes versions a Cluster may move to. The versions there are are whatever bundles Strata's
 * registry holds (`kubernetes/kubelet:v1.35.0` and the other binaries a member needs; `k3s/k3s:...` on
 * k3s), and Kubernetes upgrades one minor version at a time (its version-skew policy: a kubelet may not
 * be newer than the API server, and an API server is upgraded minor by minor). Changing a Cluster's
 * `spec.version` to anything else is refused at the API with the field and the fix named, before any node
 * is touched; a new Cluster may name a version not pushed yet (its nodes wait, saying what to push).
 * Also: whether a kubelet's reported version is a given version (k3s reports `v1.34.4+k3s1`).
 */

import type { Before } from '../core/resources/admission.ts';
import type { FieldIssue } from '../core/resources/errors.ts';
import { REFS_COLLECTION, refKey } from '../registry/protocol.ts';
import { neededArtifacts } from './bundle.ts';
import type { ClusterResource } from './kind.ts';

/** `v1.35.0` → [1, 35, 0], or undefined. */
export function parseVersion(v: string | undefined): [number, number, number] | undefined {
  const m = /^v(\d+)\.(\d+)\.(\d+)(?:[+-].*)?$/.exec(v ?? '');
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** Whether a kubelet reporting `reported` runs `version` (`v1.34.4+k3s1` runs v1.34.4). */
export const runsVersion = (reported: string | undefined, version: string): boolean =>
  reported === version || !!reported?.startsWith(`${version}+`);

/** The registry references (`name:version`) a Cluster at `version` needs for every role, and which exist. */
export function neededRefs(c: ClusterResource, version: string): string[] {
  const at = { ...c, spec: { ...c.spec, version } };
  const names = new Set([
    ...neededArtifacts(at, 'control-plane').binaries,
    ...neededArtifacts(at, 'worker').binaries,
  ]);
  return [...names].map((n) => refKey(n, version));
}

/** The versions of a distribution's main binary the registry holds, sorted. */
export function versionsIn(refKeys: string[], c: ClusterResource): string[] {
  const main = c.spec.distribution === 'k3s' ? 'k3s/k3s' : 'kubernetes/kubelet';
  return refKeys
    .filter((k) => k.startsWith(`${main}:`))
    .map((k) => k.slice(main.length + 1))
    .filter((v) => parseVersion(v))
    .sort((a, b) => {
      const [x, y] = [parseVersion(a)!, parseVersion(b)!];
      return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
    });
}

/** Why a Cluster cannot move from `from` to `to` (skew policy, registry), as field issues; [] when it can. */
export function versionIssues(
  c: ClusterResource,
  from: string,
  to: string,
  refKeys: string[],
  at: (path: string) => Omit<FieldIssue, 'message'>,
): FieldIssue[] {
  const out: FieldIssue[] = [];
  const a = parseVersion(from);
  const b = parseVersion(to);
  if (a && b && a[0] === b[0] && b[1] > a[1] + 1)
    out.push({
      ...at('spec.version'),
      message: `${to} skips v${b[0]}.${a[1] + 1}: Kubernetes is upgraded one minor version at a time, so set a v${b[0]}.${a[1] + 1}.x version first (the cluster runs ${from})`,
    });
  const have = new Set(refKeys);
  const missing = neededRefs(c, to).filter((k) => !have.has(k));
  if (missing.length) {
    const there = versionsIn(refKeys, c);
    const push =
      c.spec.distribution === 'k3s'
        ? `push k3s ${to}'s air-gap files (k3s/k3s, k3s/install.sh, k3s/k3s-airgap-images-amd64.tar.zst) with "strata registry push"`
        : `build it (STRATA_K8S_VERSION=${to} bash scripts/build/kubernetes.sh) and push it ("strata registry push /var/cache/strata/kubernetes/${to} --name kubernetes --version ${to}")`;
    out.push({
      ...at('spec.version'),
      message: `${to} is not in Strata's registry (no ${missing.join(', ')}): ${push} first, or keep a version it has (${there.length ? there.join(', ') : 'none'})`,
    });
  }
  return out;
}

/** The admission check: a Cluster whose stored spec.version changes must be allowed to move there. */
export async function admitVersions(items: ClusterResource[], before: Before): Promise<FieldIssue[]> {
  const out: FieldIssue[] = [];
  let refKeys: string[] | undefined;
  for (const c of items) {
    const old = (await before.get('Cluster', c.metadata.name)) as ClusterResource | undefined;
    const from = old?.spec.version;
    const to = c.spec.version;
    if (!from || !to || from === to) continue;
    refKeys ??= (await before.records(REFS_COLLECTION)).map((r) => r.key);
    out.push(
      ...versionIssues(c, from, to, refKeys, (path) => ({ resource: `Cluster/${c.metadata.name}`, path })),
    );
  }
  return out;
}
