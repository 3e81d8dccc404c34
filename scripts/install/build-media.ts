/**
 * Builds the install media (kernel, Strata installer initramfs, Debian OS image) into a cache dir, for
 * real machines and the lab alike.
 * Idempotent: stages whose inputs did not change are skipped. Needs root.
 *
 *   node_modules/.bin/node scripts/install/build-media.ts [--cache-dir DIR] [--mirror URL] [--force]
 *                                                        [--only kernel,initramfs,rootfs,osimage]
 *                                                        [--sanity '{"minRootfsMiB":0,"minImageMiB":0}']
 *
 * Started by `buildInstallMedia()` (with an IPC channel), it sends its log, progress and manifest as framed
 * messages on that channel and writes nothing to stdout. Run by hand, it prints progress lines on stderr
 * and the manifest (paths, sizes, sha256) as JSON on stdout. Either way the tools it runs never write to
 * its stdout (src/install/media pipes them), so the result channel carries only the result.
 */

import { parseArgs } from 'node:util';
import {
  type BuildMessage,
  type BuildOptions,
  type BuildProgress,
  ensureInstallMedia,
  type MediaStage,
  stopRunningTools,
} from '../../src/install/media/index.ts';

const { values } = parseArgs({
  options: {
    'cache-dir': { type: 'string' },
    mirror: { type: 'string' },
    force: { type: 'boolean', default: false },
    only: { type: 'string' },
    sanity: { type: 'string' },
  },
});

const ipc = typeof process.send === 'function';
const send = (m: BuildMessage) => process.send?.(m);
// The parent (strata lab up, a server) went away, or a signal came (Ctrl-C): end debootstrap & co. (each in
// its own process group) rather than leave them building for nobody.
const onParentGone = () => {
  stopRunningTools();
  process.exit(1);
};
process.once('disconnect', onParentGone);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, onParentGone);

// By hand: a line per stage phase, and at most one every 10 s while a phase lasts.
const printed = new Map<MediaStage, { phase: string; at: number }>();
function plainProgress(p: BuildProgress): void {
  const last = printed.get(p.stage);
  if (last && last.phase === p.phase && Date.now() - last.at < 10_000) return;
  printed.set(p.stage, { phase: p.phase, at: Date.now() });
  const pct = p.percent === undefined ? '' : ` ${Math.floor(p.percent)}%`;
  process.stderr.write(`[build-assets] ${p.stage}${pct} ${p.phase}: ${p.doing}\n`);
}

const t0 = Date.now();
try {
  const { manifest } = await ensureInstallMedia({
    cacheDir: values['cache-dir'],
    mirror: values.mirror,
    force: values.force,
    only: values.only?.split(',') as BuildOptions['only'],
    ...(values.sanity ? { sanity: JSON.parse(values.sanity) as BuildOptions['sanity'] } : {}),
    log: (line) => (ipc ? send({ type: 'log', line }) : process.stderr.write(`[build-assets] ${line}\n`)),
    progress: (progress) => (ipc ? send({ type: 'progress', progress }) : plainProgress(progress)),
  });
  const result = { ...manifest, totalMs: Date.now() - t0 };
  process.off('disconnect', onParentGone);
  if (ipc)
    process.send!({ type: 'manifest', manifest: result } satisfies BuildMessage, () =>
      process.disconnect?.(),
    );
  else process.stdout.write(JSON.stringify(result, null, 2) + '\n');
} catch (e) {
  const message = (e as Error).message;
  process.off('disconnect', onParentGone);
  if (ipc) process.send!({ type: 'error', message } satisfies BuildMessage, () => process.exit(1));
  else {
    process.stderr.write(`[build-assets] error: ${message}\n`);
    process.exit(1);
  }
}
