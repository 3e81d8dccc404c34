/**
 * The OCI Distribution Specification's names, as both sides use them: media types, where the endpoints
 * are mounted, how tags and manifests are kept as references, the repository and tag grammar, and what a
 * manifest points to. Pure (no server, no metrics), so a client such as `strata registry push-image`
 * loads only this and not the routes in oci.ts.
 */
import { isDigest } from './digest.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MANIFEST_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];

/** Where the manager serves the endpoints (the specification fixes `/v2/` at the root). */
export const OCI_PREFIX = '/v2';
/** Where a site's local registry serves them (containerd's hosts.toml mirror entry with override_path). */
export const LOCAL_OCI_PREFIX = '/registry/v2';

/** Reference names: `oci/REPO:TAG` for tags, `oci-manifests/REPO:HEX` for every manifest in REPO. */
export const tagRefName = (repo: string) => `oci/${repo}`;
export const manifestRefName = (repo: string) => `oci-manifests/${repo}`;

/** The spec's repository name grammar (path components of lower-case alphanumerics and separators). */
const REPO_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
export function isRepoName(s: string): boolean {
  return s.length <= 255 && REPO_RE.test(s);
}

export function isTag(s: string): boolean {
  return TAG_RE.test(s);
}

/**
 * The digests a manifest points to: `blobs` (an image manifest's config and layers) and `manifests` (an
 * index's entries and a `subject`, themselves manifests). Pure; unparsable JSON points to nothing.
 */
export function manifestChildren(body: Buffer | string): { blobs: string[]; manifests: string[] } {
  type Desc = { digest?: unknown } | undefined;
  let m: { config?: Desc; layers?: Desc[]; manifests?: Desc[]; subject?: Desc };
  try {
    m = JSON.parse(body.toString()) as typeof m;
  } catch {
    return { blobs: [], manifests: [] };
  }
  if (!m || typeof m !== 'object') return { blobs: [], manifests: [] };
  const digests = (ds: Desc[]) =>
    ds.map((d) => d?.digest).filter((d): d is string => typeof d === 'string' && isDigest(d));
  const list = (v: unknown) => (Array.isArray(v) ? (v as Desc[]) : []);
  return {
    blobs: digests([m.config, ...list(m.layers)]),
    manifests: digests([...list(m.manifests), m.subject]),
  };
}
