/**
 * `strata ladder`: the ladder table (src/ladder.ts) as this build of Strata knows it: every state, its
 * seed name, the layer owning the step into it and the step per provider, with the states not implemented
 * yet named as such. It reads the table locally, like `--version`, so it needs no server.
 */
import type { Command } from 'commander';
import { formatLadder, LADDER } from '../../ladder.ts';

export function registerLadderCommand(program: Command): void {
  program
    .command('ladder')
    .description(
      'print the ladder: each state, the layer and the step per provider that moves a node into it',
    )
    .option('-o, --output <format>', 'table or json', 'table')
    .action((o: { output: string }) => {
      if (o.output === 'json') {
        const rows = LADDER.map(({ by, ...r }) => ({ ...r, ...(typeof by === 'string' ? { by } : {}) }));
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      } else process.stdout.write(`${formatLadder()}\n`);
    });
}
