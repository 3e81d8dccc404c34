/**
 * `strata config ...` and `strata login`: the client configuration (config.ts) from the command line, as
 * kubectl config does. `login` checks the token against the server before anything is saved, so a context
 * never holds a token that does not work; `view` shows tokens only with `--raw`. For an https:// server,
 * login first settles how its certificate is trusted (shown with its fingerprint, then pinned when the user
 * says so, or a CA file, or explicitly none), and only then sends the token.
 */
import { readFileSync } from 'node:fs';
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
import { peerCertificate, type TlsTrust } from '../tls.ts';

/** Asks a yes/no question on the terminal (no is the default). */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const answer = await new Promise<string>((r) => rl.question(question, r));
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}

interface TrustFlags {
  certificateAuthority?: string;
  certificateFingerprint?: string;
  insecureSkipTlsVerify?: boolean;
}

/**
 * How an https:// server's certificate is to be trusted, decided before any token is sent: explicitly
 * not at all, by a CA file, by the system's CAs when they vouch for it, or by pinning the certificate it
 * presents once its fingerprint was shown and confirmed (on the terminal or with --certificate-fingerprint).
 */
async function settleTrust(server: string, o: TrustFlags): Promise<TlsTrust | undefined> {
  const given = [o.certificateAuthority, o.certificateFingerprint, o.insecureSkipTlsVerify].filter(Boolean);
  if (!server.startsWith('https:')) {
    if (given.length)
      throw new CliError(`error: ${server} is plain HTTP: certificate options need an https:// server URL`);
    return undefined;
  }
  if (given.length > 1)
    throw new CliError(
      'error: choose one of --certificate-authority, --certificate-fingerprint and --insecure-skip-tls-verify',
    );
  if (o.insecureSkipTlsVerify) {
    process.stderr.write(
      `warning: the certificate of ${server} will not be checked (--insecure-skip-tls-verify)\n`,
    );
    return { insecure: true };
  }
  if (o.certificateAuthority) {
    try {
      return { ca: readFileSync(o.certificateAuthority, 'utf8') };
    } catch (e) {
      throw new CliError(`error: --certificate-authority ${o.certificateAuthority}: ${(e as Error).message}`);
    }
  }
  let peer: Awaited<ReturnType<typeof peerCertificate>>;
  try {
    peer = await peerCertificate(server);
  } catch (e) {
    throw new CliError(`error: cannot reach ${server} over TLS: ${(e as Error).message}; nothing saved`);
  }
  process.stderr.write(
    `Certificate of ${server}:\n  subject:  ${peer.subject}\n  issuer:   ${peer.issuer}\n` +
      `  expires:  ${peer.validTo}\n  SHA-256:  ${peer.fingerprint}\n`,
  );
  const pin = { ca: peer.pem, fingerprint: peer.fingerprint };
  if (o.certificateFingerprint) {
    const want = o.certificateFingerprint.trim().toUpperCase();
    if (want.replaceAll(':', '') !== peer.fingerprint.replaceAll(':', '').toUpperCase())
      throw new CliError(
        `error: ${server} presented SHA-256 ${peer.fingerprint}, not the --certificate-fingerprint ${o.certificateFingerprint}: nothing saved, no token sent`,
      );
    return pin;
  }
  if (!peer.untrustedBecause) return undefined; // the system's CAs vouch for it
  if (!process.stdin.isTTY)
    throw new CliError(
      `error: the certificate of ${server} is not signed by a CA this machine trusts (${peer.untrustedBecause}). ` +
        'Compare the SHA-256 above with the one strata up printed, then run again with ' +
        `--certificate-fingerprint ${peer.fingerprint} to pin it, or --certificate-authority FILE, or --insecure-skip-tls-verify. Nothing saved, no token sent.`,
    );
  if (!(await confirm('Is this the fingerprint strata up printed? Pin this certificate [y/N]: ')))
    throw new CliError('error: certificate not pinned; nothing saved, no token sent');
  return pin;
}

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
      .option('--name <context>', 'context name (default: HOST:PORT)')
      .option('--certificate-authority <file>', 'trust the https:// server through this CA certificate (PEM)')
      .option('--certificate-fingerprint <sha256>', 'pin the certificate that has this SHA-256 fingerprint')
      .option(
        '--insecure-skip-tls-verify',
        'do not check the server certificate at all (not for production)',
      ),
    [
      'strata login 10.0.0.5:7420 --token "$TOKEN"',
      'STRATA_TOKEN=... strata login https://strata.example:7420 --name site-a',
      'strata login https://10.0.0.5:7420 --certificate-fingerprint AB:CD:...   # as strata up printed it',
      'strata login 10.0.0.5:7420        # asks for the token on a terminal',
    ],
  ).action(async (serverArg: string, o, cmd: Command) => {
    const server = normalizeServer(serverArg);
    const trust = await settleTrust(server, o);
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
      ...(trust ? { tls: trust } : {}),
    });
    // GET /api/v1 needs a valid token and answers only on a Strata server.
    const res = await c.request<{ kind?: string }>('GET', '/api/v1');
    if (res.kind !== 'APIResourceList')
      throw new CliError(
        `error: not a Strata API at ${server}: GET /api/v1 answered something else; nothing saved`,
      );
    const name = o.name ?? contextNameFor(server);
    upsertContext(
      {
        name,
        server,
        token,
        ...(trust?.ca ? { certificateAuthority: trust.ca } : {}),
        ...(trust?.fingerprint ? { certificateFingerprint: trust.fingerprint } : {}),
        ...(trust?.insecure ? { insecureSkipTlsVerify: true } : {}),
      },
      file,
    );
    out(`Logged in to ${server}; context "${name}" saved in ${file} and made current.`);
  });
}
