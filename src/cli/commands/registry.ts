/**
 * `strata registry`: the global artifact registry from the command line — push files or whole directories,
 * list, pull (verified) and garbage-collect. A thin shell over the registry's HTTP protocol
 * (src/registry/protocol.ts): the CLI hashes a file before it uploads it and the server hashes it again and
 * refuses a mismatch, so what lands under a digest is what was on the user's disk.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { StrataError } from '../../core/resources/errors.ts';
import { RegistryClient, RegistryHttpError } from '../../registry/client.ts';
import { DigestStream, mustName, mustVersion, parseRef } from '../../registry/digest.ts';
import { pushOciLayout, readBuiltImages } from '../../registry/oci-push.ts';
import { mediaTypeFor, REGISTRY_API_BASE } from '../../registry/protocol.ts';
import { CliError } from '../client.ts';
import { client } from '../common.ts';
import { table } from '../print.ts';
import { fetchFor } from '../tls.ts';

/** The global registry of the Strata API the global flags point at, with the same token. */
export function registryClient(cmd: Command): RegistryClient {
  const api = client(cmd);
  const auth = api.headers().authorization;
  return new RegistryClient({
    url: api.server + REGISTRY_API_BASE,
    fetch: fetchFor(api.server, api.conn.tls),
    ...(auth ? { token: auth.slice('Bearer '.length) } : {}),
  });
}

/** Registry and validation errors as the CLI prints every server error. */
export async function cliErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof RegistryHttpError) {
      throw new CliError(
        e.status === 0
          ? `${e.message}: is "strata up" running? (--server / STRATA_SERVER)`
          : `Error from server (${e.reason}): ${e.message}`,
      );
    }
    if (e instanceof StrataError) throw new CliError(`error: ${e.message}`);
    throw e;
  }
}

async function hashFile(path: string): Promise<{ digest: string; size: number }> {
  const h = new DigestStream();
  await pipeline(createReadStream(path), h, new PassThrough().resume());
  return { digest: h.digest!, size: h.size };
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

export function humanSize(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

export function registerRegistryCommands(program: Command): void {
  const reg = program
    .command('registry')
    .description('the global artifact registry (content-addressed, SHA-256): push, ls, pull, rm, gc');

  reg
    .command('push')
    .description('upload a file, or every file under a directory, and name it NAME:VERSION')
    .argument('<path>', 'a file or a directory')
    .option(
      '--name <name>',
      "artifact name (a directory: the prefix of each file's relative path); default the file name",
    )
    .option('--version <version>', 'artifact version', 'latest')
    .option('--media-type <type>', 'media type (default: from the file name)')
    .action(async (path: string, o: { name?: string; version: string; mediaType?: string }, cmd: Command) =>
      cliErrors(async () => {
        const st = await stat(path).catch(() => {
          throw new CliError(`error: ${path}: no such file or directory`);
        });
        const files = st.isDirectory() ? await filesUnder(path) : [path];
        if (!files.length) throw new CliError(`error: ${path}: the directory holds no files`);
        const version = mustVersion(o.version, '--version');
        const jobs = files.map((f) => {
          const rel = st.isDirectory() ? relative(path, f).split(sep).join('/') : basename(f);
          const name = st.isDirectory() ? (o.name ? `${o.name}/${rel}` : rel) : (o.name ?? rel);
          return { file: f, name: mustName(name, st.isDirectory() ? `name of ${f}` : '--name') };
        });
        const c = registryClient(cmd);
        for (const j of jobs) {
          const { digest, size } = await hashFile(j.file);
          if ((await c.statBlob(digest)) === undefined)
            await c.pushBlob(digest, createReadStream(j.file), size);
          const ref = await c.tag(j.name, version, {
            digest,
            mediaType: o.mediaType ?? mediaTypeFor(j.file),
          });
          process.stdout.write(`pushed ${ref.name}:${ref.version} ${ref.digest} ${ref.size}\n`);
        }
      }),
    );

  reg
    .command('push-image')
    .description(
      "push a container image from an OCI layout (umoci, skopeo oci:) to the registry's /v2/; given the " +
        'directory scripts/build/images.sh prints and no IMAGE, push every image it built',
    )
    .argument('<layout>', "LAYOUT_DIR or LAYOUT_DIR:REF (REF: the image's name in the layout)")
    .argument('[image]', 'REPOSITORY:TAG, like strata/web:1.35.0')
    .option('--prefix <repo>', 'repository prefix for the images of an images.json', 'strata')
    .action(async (layoutArg: string, image: string | undefined, o: { prefix: string }, cmd: Command) =>
      cliErrors(async () => {
        const api = client(cmd);
        const auth = api.headers().authorization;
        const push = async (layout: string, layoutRef: string | undefined, img: string) => {
          const i = img.lastIndexOf(':');
          if (i <= 0)
            throw new CliError(`error: image "${img}": expected REPOSITORY:TAG like strata/web:1.35.0`);
          await stat(join(layout, 'index.json')).catch(() => {
            throw new CliError(`error: ${layout}: not an OCI image layout (no index.json)`);
          });
          const r = await pushOciLayout({
            layout,
            ...(layoutRef ? { layoutRef } : {}),
            server: api.server,
            repo: img.slice(0, i),
            tag: img.slice(i + 1),
            fetch: fetchFor(api.server, api.conn.tls),
            ...(auth ? { token: auth.slice('Bearer '.length) } : {}),
          });
          const host = new URL(api.server).host;
          process.stdout.write(
            `pushed ${host}/${img} ${r.digest} (${r.uploaded} of ${r.blobs} blobs uploaded)\n`,
          );
        };
        if (!image) {
          const built = await readBuiltImages(layoutArg);
          if (!built)
            throw new CliError(
              `error: ${layoutArg} has no images.json: name the image to push as REPOSITORY:TAG`,
            );
          for (const b of built) await push(b.layout, b.tag, `${o.prefix}/${b.name}:${b.tag}`);
          return;
        }
        const m = /^(.*?)(?::([A-Za-z0-9_][A-Za-z0-9._-]*))?$/.exec(layoutArg)!;
        const whole = m[2] === undefined || (await stat(layoutArg).catch(() => undefined)) !== undefined;
        await push(whole ? layoutArg : m[1]!, whole ? undefined : m[2], image);
      }),
    );

  reg
    .command('ls')
    .alias('list')
    .description('every named artifact: NAME VERSION DIGEST SIZE')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (o: { output: string }, cmd: Command) =>
      cliErrors(async () => {
        const items = await registryClient(cmd).listRefs();
        if (o.output === 'json') {
          process.stdout.write(JSON.stringify({ kind: 'ArtifactList', items }, null, 2) + '\n');
          return;
        }
        if (!items.length) {
          process.stderr.write('No artifacts.\n');
          return;
        }
        process.stdout.write(
          table([
            ['NAME', 'VERSION', 'DIGEST', 'SIZE'],
            ...items.map((r) => [r.name, r.version, r.digest, r.size]),
          ]) + '\n',
        );
      }),
    );

  reg
    .command('pull')
    .description('download NAME:VERSION to a file, verified against its digest')
    .argument('<ref>', 'NAME:VERSION')
    .requiredOption('-o, --output <file>', 'where to write it')
    .action(async (refArg: string, o: { output: string }, cmd: Command) =>
      cliErrors(async () => {
        const { name, version } = parseRef(refArg);
        const c = registryClient(cmd);
        const ref = await c.getRef(name, version);
        const blob = await c.openBlob(ref.digest);
        const tmp = `${o.output}.part`;
        try {
          await pipeline(blob.stream, new DigestStream(ref.digest), createWriteStream(tmp));
          await rename(tmp, o.output);
        } finally {
          await rm(tmp, { force: true });
        }
        process.stdout.write(`pulled ${name}:${version} ${ref.digest} ${ref.size} -> ${o.output}\n`);
      }),
    );

  reg
    .command('rm')
    .description('remove the name NAME:VERSION (its blob stays until gc, if nothing else names it)')
    .argument('<ref>', 'NAME:VERSION')
    .action(async (refArg: string, _o, cmd: Command) =>
      cliErrors(async () => {
        const { name, version } = parseRef(refArg);
        await registryClient(cmd).deleteRef(name, version);
        process.stdout.write(`removed ${name}:${version}\n`);
      }),
    );

  reg
    .command('gc')
    .description('remove the blobs no reference points to, and print what was freed')
    .option(
      '--min-age <duration>',
      'spare blobs younger than this (uploads in flight): 0, 30s, 10m, 1h',
      '10m',
    )
    .action(async (o: { minAge: string }, cmd: Command) =>
      cliErrors(async () => {
        const r = await registryClient(cmd).gc(o.minAge);
        for (const b of r.freed) process.stdout.write(`freed ${b.digest} ${b.size}\n`);
        process.stdout.write(
          `gc: freed ${r.freed.length} blob(s), ${r.bytes} bytes (${humanSize(r.bytes)}); ${r.kept} kept\n`,
        );
      }),
    );
}
