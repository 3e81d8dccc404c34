/**
 * Strata's managers in the test's own process (SQLite in a temporary directory, in-process transport, no
 * workers), for tests that speak the managers' wire contract directly: what a segment's boot worker
 * relays. Stopped in the suite's `after`.
 */
import { execFileSync } from 'node:child_process';
import type { SSHKeyResource } from '../../src/core/kinds/sshkey.ts';
import type { Layer } from '../../src/core/layer.ts';
import { createLogger } from '../../src/core/log.ts';
import { type Platform, startPlatform } from '../../src/platform.ts';
import { MANAGED_KEY } from '../../src/sshkeys/index.ts';
import type { Cleanup } from './services.ts';
import { tempDir, waitFor } from './strata.ts';

export async function startManagers(
  t: Cleanup,
  layers: Layer[],
  prefix: string,
  dataDir = tempDir(t, prefix),
): Promise<Platform> {
  const p = await startPlatform({
    dataDir,
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

/** `strata apply` through the API of a platform running in this process; fails the test on a refusal. */
export async function applyDocs(p: Platform, token: string, docs: unknown[]): Promise<void> {
  const res = await fetch(`http://${p.address!.host}:${p.address!.port}/api/v1/apply`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      files: [{ name: 'test.yaml', text: JSON.stringify({ kind: 'List', items: docs }) }],
    }),
  });
  if (res.status !== 200) throw new Error(`apply refused (${res.status}): ${await res.text()}`);
}

/** Strata's managed key, once generated: what the install step puts into a node's authorized_keys. */
export async function managedPublicKey(p: Platform): Promise<string> {
  return waitFor('the managed key', async () => {
    const k = await p.resources.get<SSHKeyResource>('SSHKey', MANAGED_KEY);
    return (k?.status as { publicKey?: string } | undefined)?.publicKey;
  });
}

/** Whether a command is on PATH (for a test's skip reason). */
export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
