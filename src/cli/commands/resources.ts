/**
 * The kubectl-like resource verbs: apply, get, describe, delete and events, thin calls to the HTTP API.
 */
import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import type { Resource, StrataEvent } from '../../core/resources/types.ts';
import { CliError } from '../client.ts';
import { client, kindArg } from '../common.ts';
import { describe, formatEvent, printResources } from '../print.ts';

export function registerResourceCommands(program: Command): void {
  program
    .command('apply')
    .description('create or update resources from YAML/JSON files (all or nothing)')
    .requiredOption('-f, --filename <file...>', 'manifest file(s), or - for standard input')
    .option('--dry-run', 'validate only')
    .action(async (o, cmd: Command) => {
      const files = (o.filename as string[]).map((f) => {
        try {
          return { name: f === '-' ? '<stdin>' : f, text: readFileSync(f === '-' ? 0 : f, 'utf8') };
        } catch (e) {
          throw new CliError(
            `error: cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
          );
        }
      });
      const out = await client(cmd).request<{ items: { kind: string; name: string; action: string }[] }>(
        'POST',
        `/api/v1/apply${o.dryRun ? '?dryRun=true' : ''}`,
        JSON.stringify({ files }),
      );
      for (const i of out.items)
        process.stdout.write(
          `${i.kind.toLowerCase()}/${i.name} ${i.action}${o.dryRun ? ' (dry run)' : ''}\n`,
        );
    });

  program
    .command('get')
    .description('list resources of a kind, or one by name')
    .argument('<kind>')
    .argument('[name]')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['table', 'wide', 'json', 'yaml', 'name'])
        .default('table'),
    )
    .option('-l, --selector <labels>', 'label selector key=value[,key=value]')
    .action(async (kind: string, name: string | undefined, o, cmd: Command) => {
      const def = kindArg(kind);
      const c = client(cmd);
      const items = name
        ? [await c.request<Resource>('GET', `/api/v1/${def.plural}/${encodeURIComponent(name)}`)]
        : (
            await c.request<{ items: Resource[] }>(
              'GET',
              `/api/v1/${def.plural}${o.selector ? `?labelSelector=${encodeURIComponent(o.selector)}` : ''}`,
            )
          ).items;
      if (!items.length && (o.output === 'table' || o.output === 'wide')) {
        process.stderr.write(`No ${def.plural} found.\n`);
        return;
      }
      process.stdout.write(printResources(def, items, o.output, Boolean(name)) + '\n');
    });

  program
    .command('describe')
    .description('show a resource in detail with its recent events')
    .argument('<kind>')
    .argument('<name>')
    .action(async (kind: string, name: string, _o, cmd: Command) => {
      const def = kindArg(kind);
      const c = client(cmd);
      const r = await c.request<Resource>('GET', `/api/v1/${def.plural}/${encodeURIComponent(name)}`);
      const ev = await c.request<{ items: StrataEvent[] }>(
        'GET',
        `/api/v1/${def.plural}/${encodeURIComponent(name)}/events`,
      );
      process.stdout.write(describe(r, ev.items) + '\n');
    });

  program
    .command('delete')
    .description('delete a resource (a node first walks back down its ladder)')
    .argument('<kind>')
    .argument('<name>')
    .action(async (kind: string, name: string, _o, cmd: Command) => {
      const def = kindArg(kind);
      const out = await client(cmd).request<{ details: { pending: boolean } }>(
        'DELETE',
        `/api/v1/${def.plural}/${encodeURIComponent(name)}`,
      );
      process.stdout.write(
        `${def.kind.toLowerCase()}/${name} ${out.details.pending ? 'deletion started' : 'deleted'}\n`,
      );
    });

  program
    .command('events')
    .description("a resource's timeline, e.g. strata events node n1 --follow")
    .argument('<kind>')
    .argument('<name>')
    .option('-f, --follow', 'keep printing new events')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (kind: string, name: string, o, cmd: Command) => {
      const def = kindArg(kind);
      const c = client(cmd);
      const print = (e: StrataEvent) =>
        process.stdout.write((o.output === 'json' ? JSON.stringify(e) : formatEvent(e)) + '\n');
      const ev = await c.request<{ items: StrataEvent[] }>(
        'GET',
        `/api/v1/${def.plural}/${encodeURIComponent(name)}/events`,
      );
      ev.items.forEach(print);
      if (!o.follow) return;
      const after = ev.items.at(-1)?.id ?? 0;
      for await (const m of c.stream(
        `/api/v1/stream?kind=${def.kind}&name=${encodeURIComponent(name)}&after=${after}`,
      )) {
        if (m.event === 'timeline') print(JSON.parse(m.data));
      }
    });
}
