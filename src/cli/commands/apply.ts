/**
 * `apply` and `diff`. Both send the files to the server's apply endpoint (JSON `{files}` by content type),
 * so what is shown is what the server would store, not a client-side guess: `apply --dry-run=server` prints
 * created/configured/unchanged, and `diff` compares each live object with the dry run's object as a unified
 * diff (exit 0 no differences, 1 differences, 2 an error, as kubectl diff).
 */
import type { Command } from 'commander';
import { createTwoFilesPatch } from 'diff';
import { stringify } from 'yaml';
import type { Resource } from '../../core/resources/types.ts';
import { CliError } from '../client.ts';
import { client, examples, kindArg, out } from '../common.ts';
import { readManifestFiles } from '../files.ts';
import { safeText } from '../safe.ts';

interface ApplyItem {
  kind: string;
  name: string;
  action: string;
  object?: Resource;
}

/** The parts of an object a user wrote or that apply changes; bookkeeping and status are left out. */
function comparable(r: Resource | undefined): string {
  if (!r) return '';
  const { resourceVersion: _rv, generation: _g, uid: _u, creationTimestamp: _c, ...meta } = r.metadata;
  return stringify(
    { apiVersion: r.apiVersion, kind: r.kind, metadata: meta, spec: r.spec },
    { lineWidth: 0 },
  );
}

export function registerApplyCommands(program: Command): void {
  examples(
    program
      .command('apply')
      .description('create or update resources from YAML/JSON files or directories (all or nothing)')
      .requiredOption('-f, --filename <path...>', 'manifest file(s) or directories, or - for standard input')
      .option('-R, --recursive', 'with -f DIR: include subdirectories')
      .option(
        '--dry-run [mode]',
        'server: show what would change (created/configured/unchanged), write nothing',
      ),
    [
      'strata apply -f site.yaml',
      'strata apply -f manifests/ -R',
      'cat node.yaml | strata apply -f -',
      'strata apply -f site.yaml --dry-run=server',
    ],
  ).action(async (o, cmd: Command) => {
    const dry = o.dryRun === undefined ? undefined : o.dryRun === true ? 'server' : String(o.dryRun);
    if (dry !== undefined && dry !== 'server' && dry !== 'none')
      throw new CliError(
        `error: --dry-run "${dry}": only --dry-run=server is supported (the server checks everything)`,
      );
    const dryRun = dry === 'server';
    const files = readManifestFiles(o.filename, o.recursive);
    const res = await client(cmd).request<{ items: ApplyItem[] }>(
      'POST',
      `/api/v1/apply${dryRun ? '?dryRun=true' : ''}`,
      JSON.stringify({ files }),
    );
    for (const i of res.items)
      out(safeText(`${i.kind.toLowerCase()}/${i.name} ${i.action}${dryRun ? ' (server dry run)' : ''}`));
  });

  examples(
    program
      .command('diff')
      .description('show how the live objects differ from what apply -f would store (exit 1 when they do)')
      .requiredOption('-f, --filename <path...>', 'manifest file(s) or directories, or - for standard input')
      .option('-R, --recursive', 'with -f DIR: include subdirectories'),
    ['strata diff -f site.yaml', 'strata diff -f manifests/ -R && echo "nothing to change"'],
  ).action(async (o, cmd: Command) => {
    try {
      const c = client(cmd);
      const files = readManifestFiles(o.filename, o.recursive);
      const res = await c.request<{ items: ApplyItem[] }>(
        'POST',
        '/api/v1/apply?dryRun=true',
        JSON.stringify({ files }),
      );
      let differs = false;
      for (const i of res.items) {
        if (!i.object)
          throw new CliError(
            `error: the server's dry-run apply returned no objects: it is older than this client (needs the ApplyResult items' "object")`,
          );
        const def = kindArg(i.kind);
        let live: Resource | undefined;
        try {
          live = await c.get(def.plural, i.name);
        } catch (e) {
          if (!(e instanceof CliError && /^Error from server \(NotFound\)/.test(e.message))) throw e;
        }
        const a = comparable(live);
        const b = comparable(i.object);
        if (a === b) continue;
        differs = true;
        const id = `${def.kind.toLowerCase()}/${i.name}`;
        out(
          safeText(
            createTwoFilesPatch(live ? `live/${id}` : '/dev/null', `merged/${id}`, a, b, '', '', {
              context: 3,
            }),
          ),
        );
      }
      if (differs) process.exitCode = 1;
    } catch (e) {
      if (e instanceof CliError) throw new CliError(e.message, 2);
      throw e;
    }
  });
}
