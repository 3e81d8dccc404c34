/**
 * Air-gap bundles: one tar file that carries every artifact a site needs, so a site with no link to the
 * outside (or to the global registry) can be filled from a USB stick. Layout:
 *
 *   manifest.json           what is inside: every reference, every blob with its digest and size, the assets
 *   blobs/sha256/<hex>      each blob once, whatever number of references point at it
 *   assets/<path>           lab/install assets (kernel, installer initramfs, OS image, their stamps)
 *
 * The manifest comes first so an import knows what to expect before any bytes. Every blob is verified
 * three times: read from the registry on export, by the receiving registry on import (it refuses a
 * mismatch), and assets on import here. References are written only after all their blobs are in, so a
 * torn import never leaves a name pointing at nothing. Built on tar-stream (streaming, no temp copies).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract, pack as tarPack } from 'tar-stream';
import type { RegistryClient } from './client.ts';
import { DigestStream, hexOf, isDigest, mustName, mustVersion } from './digest.ts';
import { MANIFEST_TYPES, manifestChildren } from './oci-spec.ts';
import type { ArtifactRef } from './store.ts';

export const BUNDLE_KIND = 'StrataBundle';
export const BUNDLE_FORMAT = 1;

export interface BundleAsset {
  /** Relative to the assets directory, `/`-separated. */
  path: string;
  digest: string;
  size: number;
}

export interface BundleManifest {
  kind: typeof BUNDLE_KIND;
  formatVersion: number;
  createdAt: string;
  strataVersion: string;
  artifacts: ArtifactRef[];
  blobs: { digest: string; size: number }[];
  assets: BundleAsset[];
}

async function digestOfFile(path: string): Promise<{ digest: string; size: number }> {
  const h = new DigestStream();
  await pipeline(createReadStream(path), h, new PassThrough().resume());
  return { digest: h.digest!, size: h.size };
}

/** The regular files directly in `dir` (not half-written `.tmp`/`.part` ones); none when it is absent. */
export async function listAssets(dir: string | undefined): Promise<BundleAsset[]> {
  if (!dir) return [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: BundleAsset[] = [];
  for (const name of names.sort()) {
    if (/\.(tmp|part)$/.test(name) || name.startsWith('.')) continue;
    const st = await stat(join(dir, name));
    if (!st.isFile()) continue;
    out.push({ path: name, ...(await digestOfFile(join(dir, name))) });
  }
  return out;
}

/** Writes one tar entry from a stream and waits until tar-stream has taken all of it. */
async function addEntry(
  pack: ReturnType<typeof tarPack>,
  name: string,
  size: number,
  body: Readable,
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const entry = pack.entry({ name, size, mode: 0o644, mtime: new Date(0) }, (err) =>
      err ? reject(err) : resolve(),
    );
    pipeline(body, entry).catch(reject);
  });
}

/**
 * Adds what container images need besides their manifests (configs, layers, an index's manifests; see
 * oci.ts) to `blobs`, so a bundle carries whole images.
 */
async function addImageBlobs(
  client: RegistryClient,
  refs: ArtifactRef[],
  blobs: Map<string, number>,
): Promise<void> {
  const todo = refs.filter((r) => MANIFEST_TYPES.includes(r.mediaType)).map((r) => r.digest);
  const read = new Set<string>();
  for (let d = todo.pop(); d; d = todo.pop()) {
    if (read.has(d)) continue;
    read.add(d);
    const parts: Buffer[] = [];
    for await (const c of (await client.openBlob(d)).stream) parts.push(c as Buffer);
    const { blobs: children, manifests } = manifestChildren(Buffer.concat(parts));
    for (const child of [...children, ...manifests]) {
      if (blobs.has(child)) continue;
      const size = await client.statBlob(child);
      // Non-distributable layers and a subject pushed elsewhere are not here: the image names them only.
      if (size === undefined) continue;
      blobs.set(child, size);
    }
    todo.push(...manifests);
  }
}

export async function exportBundle(o: {
  client: RegistryClient;
  to: string;
  assetsDir?: string | undefined;
  strataVersion: string;
}): Promise<BundleManifest> {
  const artifacts = await o.client.listRefs();
  const blobs = new Map<string, number>();
  for (const a of artifacts) blobs.set(a.digest, a.size);
  await addImageBlobs(o.client, artifacts, blobs);
  const manifest: BundleManifest = {
    kind: BUNDLE_KIND,
    formatVersion: BUNDLE_FORMAT,
    createdAt: new Date().toISOString(),
    strataVersion: o.strataVersion,
    artifacts,
    blobs: [...blobs]
      .map(([digest, size]) => ({ digest, size }))
      .sort((a, b) => a.digest.localeCompare(b.digest)),
    assets: await listAssets(o.assetsDir),
  };
  const tmp = `${o.to}.part`;
  const pack = tarPack();
  const written = pipeline(pack, createWriteStream(tmp));
  try {
    const json = Buffer.from(JSON.stringify(manifest, null, 1) + '\n');
    await addEntry(pack, 'manifest.json', json.length, Readable.from([json]));
    for (const b of manifest.blobs) {
      const blob = await o.client.openBlob(b.digest);
      const check = new DigestStream(b.digest);
      blob.stream.on('error', (e) => check.destroy(e));
      await addEntry(pack, `blobs/sha256/${hexOf(b.digest)}`, b.size, blob.stream.pipe(check));
    }
    for (const a of manifest.assets) {
      const check = new DigestStream(a.digest);
      await addEntry(
        pack,
        `assets/${a.path}`,
        a.size,
        createReadStream(join(o.assetsDir!, a.path)).pipe(check),
      );
    }
    pack.finalize();
    await written;
    await rename(tmp, o.to);
  } catch (e) {
    pack.destroy();
    await written.catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  return manifest;
}

export class BundleError extends Error {}

async function drain(s: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of s);
}

function checkManifest(m: BundleManifest): BundleManifest {
  if (m?.kind !== BUNDLE_KIND || m.formatVersion !== BUNDLE_FORMAT) {
    throw new BundleError(
      `manifest.json: not a Strata bundle of format ${BUNDLE_FORMAT} (kind "${m?.kind}", formatVersion ${m?.formatVersion})`,
    );
  }
  for (const [i, a] of m.artifacts.entries()) {
    mustName(a.name, `manifest.json artifacts[${i}].name`);
    mustVersion(a.version, `manifest.json artifacts[${i}].version`);
    if (!isDigest(a.digest))
      throw new BundleError(`manifest.json artifacts[${i}].digest: invalid digest "${a.digest}"`);
  }
  for (const [i, a] of m.assets.entries()) {
    const p = normalize(a.path);
    if (p.startsWith('..') || p.startsWith(sep) || p !== a.path || !isDigest(a.digest)) {
      throw new BundleError(`manifest.json assets[${i}]: unsafe path "${a.path}" or invalid digest`);
    }
  }
  return m;
}

export interface ImportResult {
  manifest: BundleManifest;
  /** Blobs uploaded, and those the registry already had. */
  pushed: number;
  present: number;
  assets: number;
}

export async function importBundle(o: {
  client: RegistryClient;
  file: string;
  assetsDir?: string | undefined;
}): Promise<ImportResult> {
  const extract = tarExtract();
  const reading = pipeline(createReadStream(o.file), extract);
  let manifest: BundleManifest | undefined;
  const seen = new Set<string>();
  let pushed = 0;
  let present = 0;
  let assets = 0;
  try {
    for await (const entry of extract) {
      const name = entry.header.name;
      if (!manifest) {
        if (name !== 'manifest.json')
          throw new BundleError(`${o.file}: the first entry is "${name}", not manifest.json`);
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        try {
          manifest = checkManifest(JSON.parse(Buffer.concat(chunks).toString('utf8')) as BundleManifest);
        } catch (e) {
          if (e instanceof BundleError) throw e;
          throw new BundleError(`manifest.json: ${(e as Error).message}`);
        }
        continue;
      }
      if (name.startsWith('blobs/sha256/')) {
        const digest = `sha256:${name.slice('blobs/sha256/'.length)}`;
        const want = manifest.blobs.find((b) => b.digest === digest);
        if (!want) throw new BundleError(`${name}: not listed in manifest.json`);
        if ((await o.client.statBlob(digest)) !== undefined) {
          await drain(entry);
          present++;
        } else {
          await o.client.pushBlob(
            digest,
            Readable.from(entry, { objectMode: false }),
            entry.header.size ?? want.size,
          );
          pushed++;
        }
        seen.add(digest);
      } else if (name.startsWith('assets/') && o.assetsDir) {
        const a = manifest.assets.find((x) => `assets/${x.path}` === name);
        if (!a) throw new BundleError(`${name}: not listed in manifest.json`);
        const target = join(o.assetsDir, a.path);
        const tmp = `${target}.part`;
        await mkdir(dirname(target), { recursive: true });
        try {
          await pipeline(
            Readable.from(entry, { objectMode: false }),
            new DigestStream(a.digest),
            createWriteStream(tmp),
          );
          await rename(tmp, target);
        } finally {
          await rm(tmp, { force: true });
        }
        assets++;
      } else {
        await drain(entry);
      }
    }
    await reading;
  } catch (e) {
    extract.destroy();
    await reading.catch(() => {});
    throw e;
  }
  if (!manifest) throw new BundleError(`${o.file}: empty archive, no manifest.json`);
  for (const b of manifest.blobs) {
    if (!seen.has(b.digest) && (await o.client.statBlob(b.digest)) === undefined) {
      throw new BundleError(
        `${o.file}: blob ${b.digest} is listed in manifest.json but missing from the archive`,
      );
    }
  }
  for (const a of manifest.artifacts) {
    await o.client.tag(a.name, a.version, {
      digest: a.digest,
      mediaType: a.mediaType,
      createdAt: a.createdAt,
    });
  }
  return { manifest, pushed, present, assets };
}
