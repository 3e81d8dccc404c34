/**
 * The `strata` command: global flags and one file per command group under `commands/`. `up`/`manager`/
 * `worker` start the platform; the kubectl-like verbs are thin calls to the HTTP API.
 */
import { Command, Option } from 'commander';
import { VERSION } from '../version.ts';
import { CliError } from './client.ts';
import { registerHardwareCommands } from './commands/hardware.ts';
import { registerLabCommands } from './commands/lab.ts';
import { registerLadderCommand } from './commands/ladder.ts';
import { registerResourceCommands } from './commands/resources.ts';
import { registerServerCommands } from './commands/server.ts';
import { registerSshCommand } from './commands/ssh.ts';

export function buildCli(): Command {
  const program = new Command('strata')
    .description('Strata: from bare metal to a running service mesh, one declarative ladder')
    .version(VERSION)
    .addOption(new Option('--server <url>', 'API address').env('STRATA_SERVER'))
    .addOption(new Option('--token <token>', 'API bearer token').env('STRATA_TOKEN'))
    .addOption(new Option('--data-dir <dir>', 'data directory').env('STRATA_DATA_DIR').default('.strata'))
    .showHelpAfterError();

  registerServerCommands(program);
  registerResourceCommands(program);
  registerHardwareCommands(program);
  registerSshCommand(program);
  registerLabCommands(program);
  registerLadderCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (e) {
    if (e instanceof CliError) {
      process.stderr.write(e.message + '\n');
      process.exitCode = e.exitCode;
      return;
    }
    process.stderr.write(`error: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
