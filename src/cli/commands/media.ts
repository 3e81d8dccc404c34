/**
 * `strata media build` and `strata media write`: boot media from the command line. `build` asks the API
 * for a build (the media worker makes it, src/media), follows its progress, downloads each image and checks
 * it against the SHA-256 the server recorded, then renames it into place: an error at any point (no such
 * network, an output that cannot be written, a missing tool on the server) leaves no file behind.
 * `write` copies an image onto a removable disk (src/media/write.ts), with progress.
 */
import { createWriteStream } from 'node:fs';
import { access, constants, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { MediaFormat } from '../../media/build.ts';
import type { MediaBuild } from '../../media/protocol.ts';
import { MediaWriteError, writeMedia } from '../../media/write.ts';
import { DigestStream } from '../../registry/digest.ts';
import { CliError } from '../client.ts';
import { client, examples } from '../common.ts';
import { ProgressView } from '../progress.ts';
import { fetchFor } from '../tls.ts';

const EXT: Record<MediaFormat, string> = { iso: '.iso', usb: '.img' };

/** Where each format goes: FILE itself for one format; FILE's stem plus .iso and .img for both. */
export function outputsFor(
  out: string,
  format: 'iso' | 'usb' | 'both',
): Partial<Record<MediaFormat, string>> {
  if (format !== 'both') return { [format]: out };
  const stem = out.replace(/\.(iso|img)$/, '');
  return { iso: stem + EXT.iso, usb: stem + EXT.usb };
}

/** Fails early, before any build, when `file` cannot be written. */
async function checkWritable(file: string): Promise<void> {
  if ((await stat(file).catch(() => undefined))?.isDirectory())
    throw new CliError(`error: -o ${file} is a directory: give a file name`);
  try {
    await access(dirname(file), constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(
      `error: cannot write -o ${file}: ${code === 'ENOENT' ? 'its directory does not exist' : 'its directory is not writable'}`,
    );
  }
}

export function registerMediaCommands(program: Command): void {
  const media = program.command('media').description('boot media: ISO and USB images that chain to Strata');
  examples(
    media
      .command('build')
      .description('build an ISO or USB image whose iPXE reaches this network’s HTTP boot')
      .requiredOption('--network <name>', 'the Network the machine boots on')
      .option('--node <name>', 'the Node the medium is for')
      .option('--format <format>', 'iso (hybrid: CD and USB), usb (disk image) or both', 'iso')
      .requiredOption('-o, --output <file>', 'the image file (for both: FILE.iso and FILE.img)')
      .option('--static <addr>', 'static address for networks without DHCP: ADDRESS/PREFIX/GATEWAY[/DNS]'),
    [
      'strata media build --network lan --format iso -o strata-lan.iso',
      'strata media build --network dc1 --node rack1-07 --format usb -o rack1-07.img --static 10.0.7.17/24/10.0.7.1/10.0.7.1',
    ],
  ).action(
    async (
      o: { network: string; node?: string; format: string; output: string; static?: string },
      cmd: Command,
    ) => {
      if (!['iso', 'usb', 'both'].includes(o.format))
        throw new CliError(`error: --format ${o.format}: expected iso, usb or both`);
      const outputs = outputsFor(o.output, o.format as 'iso' | 'usb' | 'both');
      for (const f of Object.values(outputs)) await checkWritable(f);
      const api = client(cmd);
      let b = await api.request<MediaBuild>(
        'POST',
        '/api/v1/media/builds',
        JSON.stringify({
          network: o.network,
          format: o.format,
          ...(o.node ? { node: o.node } : {}),
          ...(o.static ? { static: o.static } : {}),
        }),
      );
      const view = new ProgressView({ out: process.stderr });
      try {
        while (b.phase === 'Building') {
          // the step is the phase, so a log (no terminal) gets a line per step
          view.update('build', { label: 'build', percent: b.percent, phase: b.doing, doing: b.doing });
          await sleep(250);
          b = await api.request<MediaBuild>('GET', `/api/v1/media/builds/${b.id}`);
        }
        if (b.phase !== 'Succeeded') {
          view.end('build', `failed: ${b.error}`, true);
          throw new CliError(`error: media build failed: ${b.error}`);
        }
        view.end('build', 'built');
        process.stdout.write(`media build ${b.id} for network ${b.network} (${b.address})\n`);
        const doFetch = fetchFor(api.server, api.conn.tls);
        for (const img of b.images) {
          const file = outputs[img.format]!;
          await download(doFetch, api.server + img.download, api.headers(), file, img.sha256, img.size, view);
          process.stdout.write(`${file}: ${img.format}, ${img.size} bytes, sha256 ${img.sha256}\n`);
        }
      } finally {
        view.close();
      }
    },
  );

  media
    .command('write')
    .description('write an image to a removable disk (refuses fixed disks unless --force)')
    .argument('<image>', 'the image file (from strata media build)')
    .argument('<device>', 'the whole disk, e.g. /dev/sdb')
    .option('--force', 'write even to a disk the kernel does not mark removable (never a mounted one)')
    .action(async (image: string, device: string, o: { force?: boolean }) => {
      const view = new ProgressView({ out: process.stderr });
      try {
        const n = await writeMedia(image, device, {
          ...(o.force ? { force: true } : {}),
          onProgress: (done, total) =>
            view.update('write', {
              label: basename(device),
              percent: total ? Math.floor((done / total) * 100) : 100,
              phase: 'writing',
              doing: `${(done / 1048576).toFixed(1)} of ${(total / 1048576).toFixed(1)} MiB`,
            }),
        });
        view.end('write', 'written and flushed');
        process.stdout.write(`wrote ${n} bytes of ${image} to ${device}\n`);
      } catch (e) {
        if (e instanceof MediaWriteError) throw new CliError(`error: ${e.message}`);
        throw e;
      } finally {
        view.close();
      }
    });
}

/** Downloads to a temporary file beside `file`, checks the SHA-256, then renames it into place. */
async function download(
  doFetch: typeof fetch,
  url: string,
  headers: Record<string, string>,
  file: string,
  sha256: string,
  size: number,
  view: ProgressView,
): Promise<void> {
  const dir = await mkdtemp(join(dirname(file), `.${basename(file)}.partial-`));
  const tmp = join(dir, 'image');
  try {
    const res = await doFetch(url, { headers });
    if (!res.ok || !res.body)
      throw new CliError(`error: download ${url}: HTTP ${res.status} ${await res.text()}`);
    let got = 0;
    const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
    body.on('data', (c: Buffer) => {
      got += c.length;
      view.update(file, {
        label: 'download',
        percent: Math.floor((got / size) * 100),
        doing: basename(file),
      });
    });
    await pipeline(body, new DigestStream(`sha256:${sha256}`), createWriteStream(tmp));
    await rename(tmp, file);
    view.end(file, `${basename(file)} verified`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
