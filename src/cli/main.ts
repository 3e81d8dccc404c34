/**
 * The `strata` command: global flags and one file per command group under `commands/`. `up`/`manager`/
 * `worker` start the platform; the kubectl-like verbs are thin calls to the HTTP API.
 */
import { Command, Option } from 'commander';
import { VERSION } from '../version.ts';
import { CliError } from './client.ts';
import { registerBundleCommands } from './commands/bundle.ts';
import { registerHardwareCommands } from './commands/hardware.ts';
import { registerLabCommands } from './commands/lab.ts';
import { registerLadderCommand } from './commands/ladder.ts';
import { registerRegistryCommands } from './commands/registry.ts';
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
  registerRegistryCommands(program);
  registerBundleCommands(program);
  return program;
}

/**
 * Commander lets the program's own flags (`--version`) be written after a subcommand, so it would take the
 * `--version V` of `strata registry push` as "print Strata's version". A `--version` that follows a
 * subcommand and has a value is the subcommand's: pass it on as `--version=V`, which only the subcommand
 * accepts.
 */
export function subcommandVersionFlag(argv: string[]): string[] {
  const out = argv.slice(0, 2);
  let sawCommand = false;
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-') && !['--server', '--token', '--data-dir'].includes(argv[i - 1]!))
      sawCommand = true;
    if (sawCommand && a === '--version' && i + 1 < argv.length && !argv[i + 1]!.startsWith('-')) {
      out.push(`--version=${argv[++i]}`);
    } else out.push(a);
  }
  return out;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(subcommandVersionFlag(argv));
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
