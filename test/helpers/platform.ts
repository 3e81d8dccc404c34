/**
 * Strata's managers in the test's own process (SQLite in a temporary directory, in-process transport, no
 * workers), for tests that speak the managers' wire contract directly: what a segment's boot worker
 * relays. Stopped in the suite's `after`.
 */
import type { Layer } from '../../src/core/layer.ts';
import { createLogger } from '../../src/core/log.ts';
import { type Platform, startPlatform } from '../../src/platform.ts';
import type { Cleanup } from './services.ts';
import { tempDir } from './strata.ts';

export async function startManagers(t: Cleanup, layers: Layer[], prefix: string): Promise<Platform> {
  const p = await startPlatform({
    dataDir: tempDir(t, prefix),
    listen: '127.0.0.1:0',
    manager: true,
    roles: [],
    layers,
    token: `${prefix}admin-token`,
    log: createLogger({}, () => {}),
  });
  t.after(() => p.stop());
  return p;
}
