/**
 * `strata config ...` and `strata login`: the client configuration (config.ts) from the command line, as
 * kubectl config does. `login` checks the token against the server before anything is saved, so a context
 * never holds a token that does not work; `view` shows tokens only with `--raw`.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { ApiClient, CliError } from '../client.ts';
import { examples, out } from '../common.ts';
import {
  configPath,
  contextNameFor,
  loadConfig,
  normalizeServer,
  redactContext,
  saveConfig,
  upsertContext,
} from '../config.ts';
import { table } from '../print.ts';

/** Asks for the token on a terminal without echoing it. */
async function promptToken(server: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  process.stderr.write(`Token for ${server}: `);
  muted = true;
  const answer = await new Promise<string>((r) => rl.question('', r));
  rl.close();
  process.stderr.write('\n');
  return answer.trim();
}

export function registerConfigCommands(program: Command): void {
  const config = program
    .command('config')
    .description(`manage client contexts (server and token) in ${configPath()}`);

  examples(
    config
      .command('view')
      .description('show the client configuration (tokens redacted unless --raw)')
      .option('--raw', 'show tokens too'),
    ['strata config view', 'strata config view --raw'],
  ).action((o) => {
    const cfg = loadConfig();
    const shown = o.raw ? cfg : { ...cfg, contexts: cfg.contexts.map(redactContext) };
    out(
      stringify({ apiVersion: 'strata.dev/v1alpha1', kind: 'Config', ...shown }, { lineWidth: 0 }).trimEnd(),
    );
  });

  examples(config.command('get-contexts').description('list the contexts; * marks the current one'), [
    'strata config get-contexts',
  ]).action(() => {
    const cfg = loadConfig();
    if (!cfg.contexts.length) {
      process.stderr.write(`No contexts in ${configPath()} (strata up or strata login SERVER makes one).\n`);
      return;
    }
    out(
      table([
        ['CURRENT', 'NAME', 'SERVER', 'TOKEN'],
        ...cfg.contexts.map((c) => [
          c.name === cfg['current-context'] ? '*' : '',
          c.name,
          c.server,
          c.token ? 'yes' : 'no',
        ]),
      ]),
    );
  });

  examples(config.command('current-context').description('print the current context'), [
    'strata config current-context',
  ]).action(() => {
    const cur = loadConfig()['current-context'];
    if (!cur) throw new CliError(`error: no current context in ${configPath()}`);
    out(cur);
  });

  examples(config.command('use-context').description('make NAME the current context').argument('<name>'), [
    'strata config use-context 127.0.0.1:7420',
  ]).action((name: string) => {
    const file = configPath();
    const cfg = loadConfig(file);
    if (!cfg.contexts.some((c) => c.name === name))
      throw new CliError(
        `error: no context "${name}" in ${file} (known: ${cfg.contexts.map((c) => c.name).join(', ') || 'none'})`,
      );
    cfg['current-context'] = name;
    saveConfig(cfg, file);
    out(`Switched to context "${name}".`);
  });

  examples(config.command('delete-context').description('remove the context NAME').argument('<name>'), [
    'strata config delete-context old-lab',
  ]).action((name: string) => {
    const file = configPath();
    const cfg = loadConfig(file);
    const before = cfg.contexts.length;
    cfg.contexts = cfg.contexts.filter((c) => c.name !== name);
    if (cfg.contexts.length === before) throw new CliError(`error: no context "${name}" in ${file}`);
    if (cfg['current-context'] === name) delete cfg['current-context'];
    saveConfig(cfg, file);
    out(`Deleted context "${name}" from ${file}.`);
  });

  examples(
    program
      .command('login')
      .description('check a token against a server and save both as a context (and make it current)')
      .argument('<server>', 'HOST:PORT or URL of the Strata API')
      .option('--name <context>', 'context name (default: HOST:PORT)'),
    [
      'strata login 10.0.0.5:7420 --token "$TOKEN"',
      'STRATA_TOKEN=... strata login https://strata.example:7420 --name site-a',
      'strata login 10.0.0.5:7420        # asks for the token on a terminal',
    ],
  ).action(async (serverArg: string, o, cmd: Command) => {
    const server = normalizeServer(serverArg);
    const g = cmd.optsWithGlobals<{ token?: string }>();
    let token = g.token ?? process.env.STRATA_TOKEN;
    let source = g.token ? 'the --token flag' : '$STRATA_TOKEN';
    if (!token) {
      if (!process.stdin.isTTY)
        throw new CliError(
          'error: no token: pass --token TOKEN or set STRATA_TOKEN (or run on a terminal to be asked for it)',
        );
      token = await promptToken(server);
      source = 'the prompt';
      if (!token) throw new CliError('error: no token given; nothing saved');
    }
    const file = configPath();
    const c = new ApiClient({
      server,
      serverSource: 'the login command',
      token,
      tokenSource: source,
      lookedIn: [source],
      configFile: file,
    });
    // GET /api/v1 needs a valid token and answers only on a Strata server.
    const res = await c.request<{ kind?: string }>('GET', '/api/v1');
    if (res.kind !== 'APIResourceList')
      throw new CliError(
        `error: not a Strata API at ${server}: GET /api/v1 answered something else; nothing saved`,
      );
    const name = o.name ?? contextNameFor(server);
    upsertContext({ name, server, token }, file);
    out(`Logged in to ${server}; context "${name}" saved in ${file} and made current.`);
  });
}
