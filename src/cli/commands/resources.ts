/**
 * The kubectl-like read and delete verbs: get (several kinds or names, -w, every output format), describe
 * (one, several or all of a kind), delete (names, -f files or directories, -l selector) and events. Thin
 * calls to the HTTP API; printing is print.ts, watching is watch.ts.
 */
import type { Command } from 'commander';
import type { KindDef } from '../../core/resources/kinds.ts';
import type { Resource, StrataEvent } from '../../core/resources/types.ts';
import { type ApiClient, CliError } from '../client.ts';
import { client, examples, kindArg, objectPath, out, parseDuration, targets } from '../common.ts';
import { manifestObjects, readManifestFiles } from '../files.ts';
import { evaluate, relaxed } from '../jsonpath.ts';
import { checkOutput, describe, formatEvent, nameOf, printResources, table, tableRows } from '../print.ts';
import { follow, watchResources } from '../watch.ts';

/** Sorts by a kubectl JSONPath like `.status.state` or `{.metadata.name}`: numbers as numbers. */
function sortBy(items: Resource[], path: string): Resource[] {
  const p = relaxed(path);
  const key = (r: Resource) => evaluate(p, r)[0];
  return [...items].sort((a, b) => {
    const x = key(a);
    const y = key(b);
    if (x === undefined) return y === undefined ? 0 : 1;
    if (y === undefined) return -1;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x).localeCompare(String(y));
  });
}

/** Gets each named object, or lists the kind; NotFound errors are collected so the rest still prints. */
async function fetchTargets(
  c: ApiClient,
  ts: { def: KindDef; names: string[] }[],
  selector: string | undefined,
): Promise<{ groups: { def: KindDef; items: Resource[] }[]; errors: string[] }> {
  const groups: { def: KindDef; items: Resource[] }[] = [];
  const errors: string[] = [];
  for (const t of ts) {
    if (!t.names.length) {
      groups.push({ def: t.def, items: (await c.list(t.def.plural, selector)).items });
      continue;
    }
    const items: Resource[] = [];
    for (const n of t.names) {
      try {
        items.push(await c.get(t.def.plural, n));
      } catch (e) {
        if (e instanceof CliError && /^Error from server \(NotFound\)/.test(e.message))
          errors.push(e.message);
        else throw e;
      }
    }
    groups.push({ def: t.def, items });
  }
  return { groups, errors };
}

export function registerResourceCommands(program: Command): void {
  examples(
    program
      .command('get')
      .description('list resources of one or more kinds, or some by name')
      .argument('<kind-or-object...>', 'KIND [NAME...], KIND1,KIND2 or KIND/NAME...')
      .option(
        '-o, --output <format>',
        'table, wide, json, yaml, name, jsonpath=TEMPLATE or custom-columns=SPEC',
        'table',
      )
      .option('-l, --selector <selector>', 'label selector, e.g. rack=a,role!=db or "env in (prod,lab)"')
      .option('-w, --watch', 'after listing, print every change as it happens')
      .option('--no-headers', 'leave out the header row of tables')
      .option('--show-labels', 'add a LABELS column')
      .option('--sort-by <jsonpath>', 'sort by a field, e.g. .status.state or {.metadata.name}')
      .option('--reconnect-timeout <duration>', 'with -w: give up after this long without the server', '60s'),
    [
      'strata get nodes',
      'strata get node/n1 -o yaml',
      'strata get nodes,networks',
      'strata get nodes -l "rack in (a,b),role!=db" --show-labels --sort-by .status.state',
      'strata get nodes -o jsonpath=\'{range .items[*]}{.metadata.name}{"\\t"}{.status.state}{"\\n"}{end}\'',
      'strata get nodes -o custom-columns=NAME:.metadata.name,STATE:.status.state',
      'strata get nodes -w',
    ],
  ).action(async (args: string[], o, cmd: Command) => {
    checkOutput(o.output);
    const ts = targets(args);
    const c = client(cmd);
    const opts = {
      output: o.output as string,
      noHeaders: o.headers === false,
      showLabels: Boolean(o.showLabels),
      withKind: ts.length > 1,
    };
    if (o.watch) {
      const t = ts[0]!;
      if (ts.length > 1 || t.names.length > 1)
        throw new CliError('error: -w watches one kind, or one object: strata get KIND [NAME] -w');
      const single = t.names.length === 1;
      const widths: number[] = [];
      let headerShown = false;
      const json = o.output === 'json' || o.output === 'yaml' || o.output.startsWith('jsonpath=');
      await watchResources(c, {
        plural: t.def.plural,
        kind: t.def.kind,
        ...(single ? { name: t.names[0]! } : {}),
        ...(o.selector ? { selector: o.selector } : {}),
        giveUpMs: parseDuration(o.reconnectTimeout, '--reconnect-timeout'),
        printList: (items) => {
          if (!items.length && !json && o.output !== 'name') return;
          if (json) for (const r of items) out(printResources(t.def, [r], { ...opts, single: true }));
          else {
            out(printResources(t.def, sortBy(items, o.sortBy ?? '.metadata.name'), { ...opts, widths }));
            headerShown = true;
          }
        },
        print: (r) => {
          if (json || o.output === 'name') out(printResources(t.def, [r], { ...opts, single: true }));
          else {
            // The header comes with the first row, as kubectl does when the list was empty.
            out(table(tableRows(t.def, [r], opts, !headerShown && !opts.noHeaders), widths));
            headerShown = true;
          }
        },
      });
      return;
    }
    const { groups, errors } = await fetchTargets(c, ts, o.selector);
    if (o.sortBy) for (const g of groups) g.items = sortBy(g.items, o.sortBy);
    const all = groups.flatMap((g) => g.items);
    const single = ts.length === 1 && ts[0]!.names.length === 1 && args.length <= 2;
    const tabular = o.output === 'table' || o.output === 'wide' || o.output.startsWith('custom-columns=');
    if (!tabular) {
      if (o.output === 'name') out(groups.flatMap((g) => g.items.map((r) => nameOf(g.def, r))).join('\n'));
      else if (all.length || !single) out(printResources(groups[0]!.def, all, { ...opts, single }));
    } else if (!all.length) {
      if (!errors.length)
        process.stderr.write(ts.length === 1 ? `No ${ts[0]!.def.plural} found.\n` : 'No resources found.\n');
    } else {
      out(
        groups
          .filter((g) => g.items.length)
          .map((g) => printResources(g.def, g.items, opts))
          .join('\n\n'),
      );
    }
    if (errors.length) throw new CliError(errors.join('\n'));
  });

  examples(
    program
      .command('describe')
      .description('show resources in detail with their recent events (all of a kind when no name is given)')
      .argument('<kind-or-object...>', 'KIND [NAME...] or KIND/NAME...')
      .option('-l, --selector <selector>', 'with a kind only: describe the objects matching this selector'),
    [
      'strata describe node n1',
      'strata describe node/n1',
      'strata describe nodes',
      'strata describe nodes -l rack=a',
    ],
  ).action(async (args: string[], o, cmd: Command) => {
    const c = client(cmd);
    const { groups, errors } = await fetchTargets(c, targets(args), o.selector);
    const blocks: string[] = [];
    for (const g of groups) {
      for (const r of g.items) {
        const ev = await c.request<{ items: StrataEvent[] }>(
          'GET',
          `${objectPath(g.def, r.metadata.name)}/events`,
        );
        blocks.push(describe(r, ev.items));
      }
    }
    if (!blocks.length && !errors.length) process.stderr.write('No resources found.\n');
    out(blocks.join('\n\n'));
    if (errors.length) throw new CliError(errors.join('\n'));
  });

  examples(
    program
      .command('delete')
      .description('delete resources (a node first walks back down its ladder)')
      .argument('[kind-or-object...]', 'KIND NAME..., KIND/NAME... or KIND -l SELECTOR')
      .option('-f, --filename <path...>', 'delete what these files or directories describe')
      .option('-R, --recursive', 'with -f DIR: include subdirectories')
      .option('-l, --selector <selector>', 'delete every object of the kind matching this selector')
      .option('--ignore-not-found', 'an object that is already gone is not an error')
      .option('--force', 'delete a Network, Profile or SSHKey even while Nodes still use it'),
    [
      'strata delete node n1',
      'strata delete node/n1 network/lan',
      'strata delete -f site.yaml',
      'strata delete -f manifests/ -R',
      'strata delete nodes -l rack=b',
    ],
  ).action(async (args: string[], o, cmd: Command) => {
    const c = client(cmd);
    const victims: { def: KindDef; name: string }[] = [];
    if (o.filename) {
      if (args.length) throw new CliError('error: give either -f FILE or KIND NAME, not both');
      for (const m of manifestObjects(readManifestFiles(o.filename, o.recursive)))
        victims.push({ def: kindArg(m.kind), name: m.name });
    } else {
      const ts = targets(args);
      for (const t of ts) {
        if (t.names.length) {
          if (o.selector) throw new CliError('error: give either names or -l SELECTOR, not both');
          for (const n of t.names) victims.push({ def: t.def, name: n });
        } else if (o.selector) {
          for (const r of (await c.list(t.def.plural, o.selector)).items)
            victims.push({ def: t.def, name: r.metadata.name });
        } else
          throw new CliError(
            `error: name what to delete: strata delete ${t.def.kind.toLowerCase()} NAME, or -l SELECTOR, or -f FILE`,
          );
      }
      if (o.selector && !victims.length) process.stderr.write('No resources found.\n');
    }
    const errors: string[] = [];
    for (const v of victims) {
      try {
        const res = await c.request<{ details?: { pending?: boolean } }>(
          'DELETE',
          `${objectPath(v.def, v.name)}${o.force ? '?force=true' : ''}`,
        );
        out(`${v.def.kind.toLowerCase()}/${v.name} ${res.details?.pending ? 'deletion started' : 'deleted'}`);
      } catch (e) {
        if (!(e instanceof CliError)) throw e;
        if (o.ignoreNotFound && /^Error from server \(NotFound\)/.test(e.message)) continue;
        errors.push(e.message);
      }
    }
    if (errors.length) throw new CliError(errors.join('\n'));
  });

  examples(
    program
      .command('events')
      .description("a resource's timeline, e.g. strata events node n1 --follow")
      .argument('<kind-or-object...>', 'KIND NAME or KIND/NAME')
      .option('-f, --follow', 'keep printing new events (reconnects when the server restarts)')
      .option('-o, --output <format>', 'text or json', 'text')
      .option(
        '--reconnect-timeout <duration>',
        'with --follow: give up after this long without the server',
        '60s',
      ),
    ['strata events node n1', 'strata events node/n1 --follow', 'strata events node n1 -o json'],
  ).action(async (args: string[], o, cmd: Command) => {
    const ts = targets(args);
    const t = ts[0]!;
    if (ts.length !== 1 || t.names.length !== 1)
      throw new CliError('error: events shows one object: KIND NAME');
    const name = t.names[0]!;
    const def = t.def;
    const c = client(cmd);
    let after = 0;
    const print = (e: StrataEvent) => {
      if (e.id !== undefined) {
        if (e.id <= after) return;
        after = e.id;
      }
      out(o.output === 'json' ? JSON.stringify(e) : formatEvent(e));
    };
    const ev = await c.request<{ items: StrataEvent[] }>('GET', `${objectPath(def, name)}/events`);
    ev.items.forEach(print);
    if (!o.follow) return;
    await follow(c, {
      giveUpMs: parseDuration(o.reconnectTimeout, '--reconnect-timeout'),
      path: () => `/api/v1/stream?kind=${def.kind}&name=${encodeURIComponent(name)}&after=${after}`,
      onMessage: (m) => {
        if (m.event === 'timeline') print(JSON.parse(m.data) as StrataEvent);
      },
    });
  });
}
