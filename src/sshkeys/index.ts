/**
 * The SSH key layer: the seed's SSH key manager and worker. SSHKey resources are either imported (a public
 * key) or generated: the manager (manager.ts, a core controller) asks an `sshkeys` worker (worker.ts) over
 * a durable queue to generate a pair with OpenSSH's ssh-keygen (keys.ts), and keeps the private half in the
 * store's secret records (protocol.ts), never in a resource, a log or an API response. Strata's own
 * managed key is how the shell layer reaches installed nodes.
 */
import type { Layer } from '../core/layer.ts';
import { startSshkeysManager } from './manager.ts';
import { startSshkeysWorker } from './worker.ts';

export { fingerprint, generateKeyPair, privateKeyOf } from './keys.ts';
export { reconcileKey, storeGenerated } from './manager.ts';
export { MANAGED_KEY, SECRETS } from './protocol.ts';

export const sshkeysLayer: Layer = {
  name: 'sshkeys',
  roles: ['sshkeys'],
  manager: (ctx) => startSshkeysManager(ctx),
  worker: (ctx) => startSshkeysWorker(ctx),
};
