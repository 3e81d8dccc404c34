/**
 * Helpers the command groups share: resolving a kind argument and building the API client from the
 * global flags.
 */
import type { Command } from 'commander';
import '../core/kinds/index.ts';
import { allKinds, type KindDef, resolveKind } from '../core/resources/kinds.ts';
import { ApiClient, CliError } from './client.ts';

export function kindArg(name: string): KindDef {
  const def = resolveKind(name);
  if (!def) {
    throw new CliError(
      `error: the server doesn't have a resource type "${name}" (known: ${allKinds()
        .map((k) => k.plural)
        .join(', ')})`,
    );
  }
  return def;
}

export function client(cmd: Command): ApiClient {
  const o = cmd.optsWithGlobals<{ server?: string; token?: string; dataDir?: string }>();
  return new ApiClient({
    ...(o.server ? { server: o.server } : {}),
    ...(o.token ? { token: o.token } : {}),
    ...(o.dataDir ? { dataDir: o.dataDir } : {}),
  });
}
