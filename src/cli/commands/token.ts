/**
 * `strata token create|ls|revoke`: API tokens with a role, optionally limited to networks. The secret is
 * printed once, by create, on stdout alone (so `T=$(strata token create ...)` captures just it); the
 * server keeps only its hash, and ls shows everything but the secret.
 */
import { type Command, Option } from 'commander';
import { client, examples, out } from '../common.ts';
import { table } from '../print.ts';

interface TokenInfo {
  name: string;
  role: string;
  networks?: string[];
  createdAt?: string;
  lastUsed?: string;
}

export function registerTokenCommands(program: Command): void {
  const token = program
    .command('token')
    .alias('tokens')
    .description('API tokens: roles viewer, operator, admin; optionally limited to networks (admin only)');

  examples(
    token
      .command('create')
      .description('make a token and print it once (the server keeps only its hash)')
      .argument('<name>', 'a name for it, like ci-reader')
      .addOption(
        new Option('--role <role>', 'what it may do')
          .choices(['viewer', 'operator', 'admin'])
          .default('viewer'),
      )
      .option(
        '--network <name>',
        'limit it to the Nodes and Networks of this network (repeat for more)',
        (v: string, acc: string[] = []) => [...acc, v],
      ),
    [
      'strata token create ci-reader --role viewer',
      'strata token create lab-ops --role operator --network lab',
      'export STRATA_TOKEN=$(strata token create night-shift --role operator)',
    ],
  ).action(async (name: string, o: { role: string; network?: string[] }, cmd: Command) => {
    const r = await client(cmd).request<TokenInfo & { token: string }>(
      'POST',
      '/api/v1/tokens',
      JSON.stringify({ name, role: o.role, ...(o.network ? { networks: o.network } : {}) }),
    );
    process.stderr.write(
      `token/${r.name} created (${r.role}${r.networks ? `, networks ${r.networks.join(', ')}` : ''}); it is shown only now:\n`,
    );
    out(r.token);
  });

  examples(token.command('ls').alias('list').description('list the tokens (never their secrets)'), [
    'strata token ls',
  ]).action(async (_o, cmd: Command) => {
    const r = await client(cmd).request<{ items: TokenInfo[] }>('GET', '/api/v1/tokens');
    out(
      table([
        ['NAME', 'ROLE', 'NETWORKS', 'CREATED', 'LAST USED'],
        ...r.items.map((t) => [
          t.name,
          t.role,
          t.networks?.join(',') ?? '*',
          t.createdAt ?? '-',
          t.lastUsed ?? '-',
        ]),
      ]),
    );
  });

  examples(
    token
      .command('revoke')
      .alias('rm')
      .description('revoke a token: the next request with it is refused')
      .argument('<name>'),
    ['strata token revoke ci-reader'],
  ).action(async (name: string, _o, cmd: Command) => {
    await client(cmd).request('DELETE', `/api/v1/tokens/${encodeURIComponent(name)}`);
    out(`token/${name} revoked`);
  });
}
