/**
 * Builds the lab's boot assets (kernel, Strata installer initramfs, Debian OS image) into a cache dir.
 * Idempotent: stages whose inputs did not change are skipped. Needs root.
 *
 *   node_modules/.bin/node scripts/lab/build-assets.ts [--cache-dir DIR] [--mirror URL] [--force]
 *                                                     [--only kernel,initramfs,rootfs,osimage]
 *
 * Prints the manifest (paths, sizes, sha256) as JSON on stdout.
 */

import { parseArgs } from 'node:util';
import { type BuildOptions, ensureLabAssets } from '../../src/lab/assets.ts';

const { values } = parseArgs({
  options: {
    'cache-dir': { type: 'string' },
    mirror: { type: 'string' },
    force: { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});

const t0 = Date.now();
const { manifest } = ensureLabAssets({
  cacheDir: values['cache-dir'],
  mirror: values.mirror,
  force: values.force,
  only: values.only?.split(',') as BuildOptions['only'],
});
process.stdout.write(JSON.stringify({ ...manifest, totalMs: Date.now() - t0 }, null, 2) + '\n');
