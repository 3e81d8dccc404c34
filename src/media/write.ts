/**
 * Writes a boot image to a stick (`strata media write FILE /dev/sdX`). Writing to the wrong disk destroys
 * it, so the target must be a whole disk that the kernel marks removable (/sys/block/NAME/removable = 1)
 * and that has nothing mounted; `force` skips the removable check (a card reader that reports a fixed
 * disk, a loop device, a file), never the mounted one. The image is copied in large chunks with progress,
 * then flushed (fsync) so pulling the stick after "done" is safe.
 */
import { constants } from 'node:fs';
import { open, readFile, realpath, stat } from 'node:fs/promises';
import { basename } from 'node:path';

export class MediaWriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MediaWriteError';
  }
}

export interface WriteOptions {
  force?: boolean;
  onProgress?: (written: number, total: number) => void;
  /** For tests: where sysfs and the mount table are. */
  sysRoot?: string;
  mountsFile?: string;
}

const CHUNK = 4 * 1024 * 1024;

async function readText(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** Why `device` must not be written (undefined when it may). */
export async function writeRefusal(device: string, o: WriteOptions = {}): Promise<string | undefined> {
  const sys = o.sysRoot ?? '/sys';
  const st = await stat(device).catch(() => undefined);
  if (!st) return `${device} does not exist`;
  const real = await realpath(device);
  const mounts = (await readText(o.mountsFile ?? '/proc/mounts')) ?? '';
  const name = basename(real);
  const mounted = mounts
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((src) => src === real || (src.startsWith(real) && /^p?\d+$/.test(src.slice(real.length))));
  if (mounted.length)
    return `${device} is in use: ${mounted.join(', ')} mounted (unmount first; --force does not override this)`;
  if (!st.isBlockDevice())
    return o.force
      ? undefined
      : `${device} is not a block device (give the whole stick, e.g. /dev/sdb; or --force)`;
  const removable = await readText(`${sys}/block/${name}/removable`);
  if (removable === undefined) {
    if (await readText(`${sys}/class/block/${name}/partition`))
      return `${device} is a partition: give the whole disk (e.g. ${real.replace(/p?\d+$/, '')})`;
    if (!o.force)
      return `${device}: cannot tell whether it is removable (no ${sys}/block/${name}); use --force if sure`;
    return undefined;
  }
  if (removable !== '1' && !o.force)
    return `${device} is not a removable disk (${sys}/block/${name}/removable is ${removable}): refusing to overwrite it; use --force if you are sure`;
  return undefined;
}

/** Copies `image` onto `device` after checking it may be written; resolves with the bytes written. */
export async function writeMedia(image: string, device: string, o: WriteOptions = {}): Promise<number> {
  const src = await stat(image).catch(() => undefined);
  if (!src?.isFile()) throw new MediaWriteError(`${image} is not an image file`);
  const why = await writeRefusal(device, o);
  if (why) throw new MediaWriteError(why);
  const dst = await stat(device);
  const input = await open(image, 'r');
  const output = await open(device, dst.isBlockDevice() ? constants.O_WRONLY : 'w');
  try {
    if (dst.isBlockDevice()) {
      // a disk smaller than the image fails here, before anything is written
      const size =
        Number(
          (await readText(`${o.sysRoot ?? '/sys'}/class/block/${basename(await realpath(device))}/size`)) ??
            0,
        ) * 512;
      if (size && size < src.size)
        throw new MediaWriteError(`${device} holds ${size} bytes, the image needs ${src.size}`);
    }
    const buf = Buffer.allocUnsafe(CHUNK);
    let done = 0;
    o.onProgress?.(0, src.size);
    while (done < src.size) {
      const { bytesRead } = await input.read(buf, 0, CHUNK, done);
      if (!bytesRead) break;
      let off = 0;
      while (off < bytesRead) off += (await output.write(buf, off, bytesRead - off, done + off)).bytesWritten;
      done += bytesRead;
      o.onProgress?.(done, src.size);
    }
    await output.sync();
    return done;
  } finally {
    await input.close();
    await output.close();
  }
}
