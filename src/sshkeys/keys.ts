/**
 * SSH key material, made and read the way OpenSSH does: pairs come from OpenSSH's own ssh-keygen (ed25519)
 * rather than a hand-written encoder, fingerprints are printed as `ssh-keygen -l` prints them, and private
 * halves are read only from the store's secret records (for the shell worker).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Store } from '../core/store/types.ts';
import { SECRETS, secretKey } from './protocol.ts';

const run = promisify(execFile);

/** `SHA256:...` as ssh-keygen -l prints it. */
export function fingerprint(publicKey: string): string {
  const b64 = publicKey.trim().split(/\s+/)[1] ?? '';
  return `SHA256:${createHash('sha256').update(Buffer.from(b64, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

export async function generateKeyPair(comment: string): Promise<{ publicKey: string; privateKey: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-key-'));
  try {
    const file = join(dir, 'id');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
    return {
      publicKey: (await readFile(`${file}.pub`, 'utf8')).trim(),
      privateKey: await readFile(file, 'utf8'),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The private half of a managed key, for the shell worker. */
export async function privateKeyOf(ctx: { store: Store }, keyName: string): Promise<string | undefined> {
  const rec = (await ctx.store.getRecord(SECRETS, secretKey(keyName))) as { privateKey?: string } | undefined;
  return rec?.privateKey;
}
