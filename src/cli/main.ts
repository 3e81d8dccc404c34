/**
 * The `strata` command: global flags and one file per command group under `commands/`. `up`/`manager`/
 * `worker` start the platform; the kubectl-like verbs are thin calls to the HTTP API.
 *
 * Help and errors behave as kubectl's: every subcommand's help shows its examples and the global flags; a
 * typo prints the error and one line pointing at `--help`, not the whole help; output cut short by a
 * closed pipe (`strata get nodes | head -1`) ends quietly instead of crashing on EPIPE.
 */
import { Command, Option } from 'commander';
import { VERSION } from '../version.ts';
import { CliError } from './client.ts';
import { registerApplyCommands } from './commands/apply.ts';
import { registerBundleCommands } from './commands/bundle.ts';
import { registerConfigCommands } from './commands/config.ts';
import { registerEditCommands } from './commands/edit.ts';
import { registerExplainCommand } from './commands/explain.ts';
import { registerHardwareCommands } from './commands/hardware.ts';
import { registerKubeconfigCommand } from './commands/kubeconfig.ts';
import { registerLabCommands } from './commands/lab.ts';
import { registerLadderCommand } from './commands/ladder.ts';
import { registerMediaCommands } from './commands/media.ts';
import { registerRegistryCommands } from './commands/registry.ts';
import { registerResourceCommands } from './commands/resources.ts';
import { registerServerCommands } from './commands/server.ts';
import { registerSshCommand } from './commands/ssh.ts';
import { registerTokenCommands } from './commands/token.ts';
import { registerVersionCommands } from './commands/version.ts';
import { registerWaitCommand } from './commands/wait.ts';
import { examples } from './common.ts';
import { guardOutput } from './safe.ts';

/**
 * Examples for the commands whose files do not add their own (kept here so those files, which other
 * work changes, stay untouched). Every command's help ends with examples, as kubectl's does.
 */
const MORE_EXAMPLES: Record<string, string[]> = {
  'strata manager': ['strata manager --nats nats://127.0.0.1:4222 --database postgres://strata@db/strata'],
  'strata worker': ['strata worker --nats nats://10.0.0.1:4222 --roles sshkeys'],
  'strata workorder': ['strata workorders', 'strata workorder done n1 --by alice'],
  'strata workorder list': ['strata workorder list'],
  'strata workorder done': ['strata workorder done n1', 'strata workorder done n1 --by alice'],
  'strata power': ['strata power n1 status', 'strata power n1 cycle', 'strata power n1 pxe-once'],
  'strata bmc': [
    'strata bmc secret rack1-bmc --username admin < pw.txt',
    'strata bmc discover 10.0.0.5 --secret rack1-bmc',
  ],
  'strata bmc secret': ['strata bmc secret rack1-bmc --username admin --password-file pw.txt'],
  'strata bmc discover': [
    'strata bmc discover https://10.0.0.5:8443 --secret rack1-bmc --fingerprint 3f:9a:...',
  ],
  'strata ssh': ['strata ssh n1', 'strata ssh n1 -- uname -a', 'strata ssh n1 -l debian'],
  'strata lab': ['strata lab up --nodes 2 --firmware mixed', 'strata lab status', 'strata lab down'],
  'strata lab up': ['strata lab up', 'strata lab up --nodes 3 --firmware mixed --target 4'],
  'strata lab status': ['strata lab status'],
  'strata lab down': ['strata lab down'],
  'strata ladder': ['strata ladder', 'strata ladder -o json'],
  'strata registry': [
    'strata registry push ./agent --name tools/agent --version 1.2.0',
    'strata registry ls',
  ],
  'strata registry push': [
    'strata registry push ./agent --name tools/agent --version 1.2.0',
    'strata registry push ./site-files --name site-a --version 7',
  ],
  'strata registry ls': ['strata registry ls', 'strata registry ls -o json'],
  'strata registry push-image': [
    'strata registry push-image /var/cache/strata/images/1/web:1.35.0 strata/web:1.35.0',
    'strata registry push-image $(bash scripts/build/images.sh)   # every image built, as strata/NAME:TAG',
  ],
  'strata registry pull': ['strata registry pull tools/agent:1.2.0 -o agent'],
  'strata registry rm': ['strata registry rm tools/agent:1.1.0'],
  'strata registry gc': ['strata registry gc', 'strata registry gc --min-age 1h'],
  'strata bundle': ['strata bundle export --to site.bundle.tar', 'strata bundle import site.bundle.tar'],
  'strata bundle export': [
    'strata bundle export --to site.bundle.tar',
    'strata bundle export --to s.tar --no-assets',
  ],
  'strata bundle import': ['strata bundle import site.bundle.tar'],
  'strata token': ['strata token create ci-reader --role viewer', 'strata token ls'],
  'strata config': [
    'strata config get-contexts',
    'strata config use-context 127.0.0.1:7420',
    'strata config view',
  ],
};

/** Commands whose output is not filtered by guardOutput: server logs, the lab's progress bars, ssh. */
const OWN_TERMINAL = new Set(['up', 'manager', 'worker', 'lab', 'ssh']);

function fullName(c: Command): string {
  const names: string[] = [];
  for (let x: Command | null = c; x; x = x.parent) names.unshift(x.name());
  return names.join(' ');
}

export function buildCli(): Command {
  const program = new Command('strata')
    .description('Strata: from bare metal to a running service mesh, one declarative ladder')
    .version(VERSION)
    .configureHelp({ showGlobalOptions: true })
    .addOption(new Option('--server <host:port>', 'API address: HOST:PORT or URL (env STRATA_SERVER)'))
    .addOption(new Option('--token <token>', 'API bearer token (env STRATA_TOKEN)'))
    .addOption(new Option('--context <name>', 'use this context of the client config (env STRATA_CONTEXT)'))
    .addOption(new Option('--data-dir <dir>', 'data directory').env('STRATA_DATA_DIR').default('.strata'));

  registerServerCommands(program);
  registerResourceCommands(program);
  registerApplyCommands(program);
  registerEditCommands(program);
  registerWaitCommand(program);
  registerExplainCommand(program);
  registerConfigCommands(program);
  registerVersionCommands(program);
  registerHardwareCommands(program);
  registerSshCommand(program);
  registerKubeconfigCommand(program);
  registerLabCommands(program);
  registerMediaCommands(program);
  registerLadderCommand(program);
  registerRegistryCommands(program);
  registerBundleCommands(program);
  registerTokenCommands(program);

  program.hook('preAction', (_root, action) => {
    let top: Command = action;
    while (top.parent && top.parent !== program) top = top.parent;
    if (!OWN_TERMINAL.has(top.name())) {
      guardOutput(process.stdout);
      guardOutput(process.stderr);
    }
  });

  const walk = (c: Command) => {
    c.showHelpAfterError(`Run '${fullName(c)} --help' for usage.`);
    const more = MORE_EXAMPLES[fullName(c)];
    if (more) examples(c, more);
    c.commands.forEach(walk);
  };
  walk(program);
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

/** A reader that went away (`| head`) is not an error: stop writing and exit quietly. */
function quietOnEpipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

export async function main(argv: string[]): Promise<void> {
  quietOnEpipe(process.stdout);
  quietOnEpipe(process.stderr);
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
