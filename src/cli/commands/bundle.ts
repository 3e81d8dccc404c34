/**
 * `strata bundle export|import`: the air-gap path. Export writes everything the global registry holds,
 * plus the lab/install assets built on this machine, into one tar with a manifest of digests; import
 * uploads it into another Strata (verified by that registry) and puts the assets into its asset cache.
 * The bundle code (tar, the asset builders' paths) is loaded when a bundle command runs, not at every
 * `strata` start.
 */
import type { Command } from 'commander';
import { DEFAULT_CACHE_DIR } from '../../install/media/paths.ts';
import { VERSION } from '../../version.ts';
import { CliError } from '../client.ts';
import { cliErrors, humanSize, registryClient } from './registry.ts';

async function bundleErrors<T>(fn: (b: typeof import('../../registry/bundle.ts')) => Promise<T>): Promise<T> {
  const b = await import('../../registry/bundle.ts');
  try {
    return await cliErrors(() => fn(b));
  } catch (e) {
    if (e instanceof b.BundleError) throw new CliError(`error: ${e.message}`);
    throw e;
  }
}

export function registerBundleCommands(program: Command): void {
  const bundle = program
    .command('bundle')
    .description('air-gap bundles: every artifact a site needs, in one file');
  bundle
    .command('export')
    .description('write every registry artifact and the lab/install assets, with a manifest of digests')
    .requiredOption('--to <file>', 'the bundle to write (a tar)')
    .option('--assets-dir <dir>', 'lab/install assets to include when present', DEFAULT_CACHE_DIR)
    .option('--no-assets', 'leave the lab/install assets out')
    .action(async (o: { to: string; assetsDir: string; assets: boolean }, cmd: Command) =>
      bundleErrors(async ({ exportBundle }) => {
        const m = await exportBundle({
          client: registryClient(cmd),
          to: o.to,
          assetsDir: o.assets ? o.assetsDir : undefined,
          strataVersion: VERSION,
        });
        const bytes = m.blobs.reduce((n, b) => n + b.size, 0) + m.assets.reduce((n, a) => n + a.size, 0);
        process.stdout.write(
          `exported ${m.artifacts.length} artifact(s), ${m.blobs.length} blob(s), ${m.assets.length} asset(s), ${humanSize(bytes)} -> ${o.to}\n`,
        );
      }),
    );
  bundle
    .command('import')
    .description('load a bundle into this Strata: blobs (verified), then references, then assets')
    .argument('<file>', 'a bundle written by "strata bundle export"')
    .option('--assets-dir <dir>', 'where the lab/install assets go', DEFAULT_CACHE_DIR)
    .option('--no-assets', 'skip the lab/install assets')
    .action(async (file: string, o: { assetsDir: string; assets: boolean }, cmd: Command) =>
      bundleErrors(async ({ importBundle }) => {
        const r = await importBundle({
          client: registryClient(cmd),
          file,
          assetsDir: o.assets ? o.assetsDir : undefined,
        });
        process.stdout.write(
          `imported ${r.manifest.artifacts.length} artifact(s): ${r.pushed} blob(s) uploaded, ${r.present} already there, ${r.assets} asset(s)\n`,
        );
      }),
    );
}
