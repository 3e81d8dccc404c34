/**
 * Pushes an image from an OCI image layout (what umoci and `skopeo copy ... oci:` write) to a registry's
 * `/v2/` endpoints, so `strata registry push-image` needs no skopeo on the admin's machine. It speaks the
 * same OCI Distribution protocol as any client (oci.ts is the server side): each blob is checked with HEAD
 * and uploaded monolithically (`POST .../blobs/uploads/?digest=`) only when missing, an index's manifests
 * are pushed by digest before the index, and the top manifest last, by tag, so a tag never names content
 * that is not there. Blobs are hashed while they are read from the layout, and the server refuses a
 * mismatch (DIGEST_INVALID), so a damaged layout cannot land under its digest.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { StrataError } from '../core/resources/errors.ts';
import { hexOf, isDigest, sha256Digest } from './digest.ts';
import { isRepoName, isTag, MANIFEST_TYPES, OCI_INDEX, OCI_MANIFEST } from './oci-spec.ts';

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  annotations?: Record<string, string>;
}

export interface PushImageOptions {
  /** The OCI layout directory. */
  layout: string;
  /** Which image in the layout (its `org.opencontainers.image.ref.name`); optional when there is one. */
  layoutRef?: string;
  /** `http://host:port` of the registry. */
  server: string;
  repo: string;
  tag: string;
  token?: string;
  fetch?: typeof fetch;
  onBlob?: (digest: string, size: number, uploaded: boolean) => void;
}

const REF_NAME = 'org.opencontainers.image.ref.name';

/** An image scripts/build/images.sh built: its name, tag and OCI layout directory. */
export interface BuiltImage {
  name: string;
  tag: string;
  layout: string;
}

/**
 * The images listed in `<dir>/images.json` (what scripts/build/images.sh writes beside its layouts), with
 * their layouts as absolute paths; undefined when the directory has no such list.
 */
export async function readBuiltImages(dir: string): Promise<BuiltImage[] | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, 'images.json'), 'utf8');
  } catch {
    return undefined;
  }
  const list = (JSON.parse(text) as { images?: BuiltImage[] }).images ?? [];
  return list.map((i) => ({ name: i.name, tag: i.tag, layout: join(dir, i.layout) }));
}

/** Picks the image in `index.json` named `ref` (or the only one). */
export function pickManifest(index: { manifests?: Descriptor[] }, ref?: string): Descriptor {
  const all = Array.isArray(index.manifests) ? index.manifests : [];
  const found = ref ? all.filter((m) => m.annotations?.[REF_NAME] === ref) : all;
  if (found.length !== 1) {
    const names = all.map((m) => m.annotations?.[REF_NAME] ?? m.digest).join(', ');
    throw new StrataError(
      400,
      'BadRequest',
      ref
        ? `the layout has no image named "${ref}" (it has: ${names || 'none'})`
        : `the layout holds ${all.length} images (${names || 'none'}): name one as LAYOUT:REF`,
    );
  }
  return found[0]!;
}

export async function pushOciLayout(
  o: PushImageOptions,
): Promise<{ digest: string; blobs: number; uploaded: number }> {
  if (!isRepoName(o.repo))
    throw new StrataError(400, 'BadRequest', `repository "${o.repo}": lower-case parts like strata/web`);
  if (!isTag(o.tag)) throw new StrataError(400, 'BadRequest', `tag "${o.tag}": letters, digits, . _ -`);
  const doFetch = o.fetch ?? fetch;
  const base = `${o.server.replace(/\/+$/, '')}/v2/${o.repo}`;
  const auth: Record<string, string> = o.token ? { authorization: `Bearer ${o.token}` } : {};
  const blobFile = (d: string) => join(o.layout, 'blobs', 'sha256', hexOf(d));
  let blobs = 0;
  let uploaded = 0;

  const fail = async (what: string, res: Response) => {
    const text = await res.text().catch(() => '');
    let msg = text.slice(0, 300);
    try {
      const e = (JSON.parse(text) as { errors?: { code: string; message: string }[] }).errors?.[0];
      if (e) msg = `${e.code}: ${e.message}`;
    } catch {}
    throw new StrataError(res.status, 'RegistryError', `${what}: HTTP ${res.status} ${msg}`);
  };

  const pushBlob = async (d: Descriptor) => {
    if (!isDigest(d.digest))
      throw new StrataError(400, 'BadRequest', `layout names a non-sha256 blob ${d.digest}`);
    blobs++;
    const head = await doFetch(`${base}/blobs/${d.digest}`, { method: 'HEAD', headers: auth });
    if (head.ok) {
      o.onBlob?.(d.digest, Number(head.headers.get('content-length') ?? 0), false);
      return;
    }
    const size = (await stat(blobFile(d.digest))).size;
    const res = await doFetch(`${base}/blobs/uploads/?digest=${d.digest}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: Readable.toWeb(createReadStream(blobFile(d.digest))) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    if (res.status !== 201) await fail(`uploading blob ${d.digest}`, res);
    await res.body?.cancel();
    uploaded++;
    o.onBlob?.(d.digest, size, true);
  };

  const pushManifest = async (d: Descriptor, ref: string): Promise<void> => {
    const body = await readFile(blobFile(d.digest));
    if (sha256Digest(body) !== d.digest)
      throw new StrataError(400, 'BadRequest', `layout blob ${d.digest} does not match its digest`);
    const doc = JSON.parse(body.toString('utf8')) as {
      mediaType?: string;
      config?: Descriptor;
      layers?: Descriptor[];
      manifests?: Descriptor[];
    };
    const mediaType = d.mediaType ?? doc.mediaType ?? (doc.manifests ? OCI_INDEX : OCI_MANIFEST);
    if (!MANIFEST_TYPES.includes(mediaType))
      throw new StrataError(
        400,
        'BadRequest',
        `layout entry ${d.digest} is a ${mediaType}, not an image manifest`,
      );
    if (doc.manifests) for (const m of doc.manifests) await pushManifest(m, m.digest);
    for (const b of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) await pushBlob(b);
    const res = await doFetch(`${base}/manifests/${ref}`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': mediaType },
      body,
    });
    if (res.status !== 201) await fail(`pushing manifest ${o.repo}:${ref}`, res);
    await res.body?.cancel();
  };

  const index = JSON.parse(await readFile(join(o.layout, 'index.json'), 'utf8')) as {
    manifests?: Descriptor[];
  };
  const top = pickManifest(index, o.layoutRef);
  await pushManifest(top, o.tag);
  return { digest: top.digest, blobs, uploaded };
}
