/**
 * `edit`, `label` and `annotate`. `edit` opens the object's YAML in $VISUAL/$EDITOR and PUTs it back; on
 * a refused or unparseable edit it opens the file again with the error as comments on top (kubectl's
 * loop), and saving it unchanged gives up. `label`/`annotate` are RFC 7386 merge patches of
 * metadata.labels/annotations (`k=v` sets, `k-` removes with `null`), refusing to overwrite a different
 * value without `--overwrite`, as kubectl does.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parse, stringify } from 'yaml';
import type { Resource } from '../../core/resources/types.ts';
import { CliError } from '../client.ts';
import { client, examples, kindArg, objectPath, out, targets } from '../common.ts';

/** What the user edits: the object without status and bookkeeping (the server keeps those). */
function editable(r: Resource): Record<string, unknown> {
  const { name, labels, annotations, resourceVersion } = r.metadata;
  return {
    apiVersion: r.apiVersion,
    kind: r.kind,
    metadata: {
      name,
      ...(labels ? { labels } : {}),
      ...(annotations ? { annotations } : {}),
      resourceVersion,
    },
    spec: r.spec,
  };
}

const HEADER = [
  '# Please edit the object below. Lines beginning with a "#" will be ignored,',
  '# and an empty file will abort the edit. If an error occurs while saving this file will be',
  '# reopened with the relevant failures.',
  '#',
];

function stripComments(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
}

function runEditor(file: string): void {
  const editor = process.env.VISUAL || process.env.EDITOR || 'vi';
  // Through the shell, so EDITOR may carry arguments ("code --wait"), as git and kubectl allow.
  const r = spawnSync('/bin/sh', ['-c', `${editor} "$1"`, 'strata-edit', file], { stdio: 'inherit' });
  if (r.error) throw new CliError(`error: cannot run the editor "${editor}": ${r.error.message}`);
  if (r.status !== 0)
    throw new CliError(`error: the editor "${editor}" exited with status ${r.status}; nothing saved`);
}

function one(args: string[], verb: string): { plural: string; kind: string; name: string } {
  const ts = targets(args);
  const t = ts[0]!;
  if (ts.length !== 1 || t.names.length !== 1)
    throw new CliError(`error: ${verb} takes one object: KIND NAME or KIND/NAME`);
  return { plural: t.def.plural, kind: t.def.kind, name: t.names[0]! };
}

function registerMetaVerb(program: Command, verb: 'label' | 'annotate'): void {
  const field = verb === 'label' ? 'labels' : 'annotations';
  const done = verb === 'label' ? 'labeled' : 'annotated';
  examples(
    program
      .command(verb)
      .description(`set or remove ${field} of an object (KEY=VALUE sets, KEY- removes)`)
      .argument('<args...>', `KIND NAME KEY=VALUE... or KIND/NAME KEY=VALUE... (KEY- removes)`)
      .option('--overwrite', `replace ${field} that already have a different value`),
    [
      `strata ${verb} node n1 ${verb === 'label' ? 'rack=c' : 'owner=alice'}`,
      `strata ${verb} node/n1 ${verb === 'label' ? 'rack=d --overwrite' : 'owner=bob --overwrite'}`,
      `strata ${verb} node n1 ${verb === 'label' ? 'rack-' : 'owner-'}`,
    ],
  ).action(async (args: string[], o, cmd: Command) => {
    const isChange = (a: string) => /^[^=\s]+=/.test(a) || /^[^=\s]+-$/.test(a);
    const firstChange = args.findIndex(isChange);
    if (firstChange < 0) throw new CliError(`error: at least one KEY=VALUE or KEY- is needed`);
    const { plural, kind, name } = one(args.slice(0, firstChange), verb);
    const changes = args.slice(firstChange);
    const bad = changes.find((a) => !isChange(a));
    if (bad) throw new CliError(`error: "${bad}" is neither KEY=VALUE nor KEY-`);
    const c = client(cmd);
    const cur = (await c.get(plural, name)).metadata[field] ?? {};
    const patch: Record<string, string | null> = {};
    for (const a of changes) {
      if (a.endsWith('-') && !a.includes('=')) {
        patch[a.slice(0, -1)] = null;
        continue;
      }
      const i = a.indexOf('=');
      const [k, v] = [a.slice(0, i), a.slice(i + 1)];
      if (Object.hasOwn(cur, k) && cur[k] !== v && !o.overwrite)
        throw new CliError(`error: '${k}' already has a value (${cur[k]}), and --overwrite is false`);
      patch[k] = v;
    }
    await c.request(
      'PATCH',
      objectPath(kindArg(kind), name),
      JSON.stringify({ metadata: { [field]: patch } }),
      'application/merge-patch+json',
    );
    out(`${kind.toLowerCase()}/${name} ${done}`);
  });
}

export function registerEditCommands(program: Command): void {
  examples(
    program
      .command('edit')
      .description('edit an object in $VISUAL or $EDITOR and save it (reopens with the error when refused)')
      .argument('<kind-or-object...>', 'KIND NAME or KIND/NAME'),
    ['strata edit node n1', 'EDITOR=nano strata edit network/lan'],
  ).action(async (args: string[], _o, cmd: Command) => {
    const { plural, kind, name } = one(args, 'edit');
    const c = client(cmd);
    const live = await c.get(plural, name);
    const original = stringify(editable(live), { lineWidth: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'strata-edit-'));
    const file = join(dir, `${kind.toLowerCase()}-${name}.yaml`);
    try {
      let text = [...HEADER, original].join('\n');
      let lastBody: string | undefined;
      for (;;) {
        writeFileSync(file, text, { mode: 0o600 });
        runEditor(file);
        const body = stripComments(readFileSync(file, 'utf8'));
        if (!body.trim()) {
          out('Edit cancelled, the file was empty.');
          return;
        }
        if (body.trim() === original.trim()) {
          out('Edit cancelled, no changes made.');
          return;
        }
        if (lastBody !== undefined && body === lastBody) {
          // Saved again without fixing the error: keep the user's work and give up, as kubectl does.
          const keep = join(tmpdir(), `strata-edit-${kind.toLowerCase()}-${name}-${process.pid}.yaml`);
          writeFileSync(keep, body, { mode: 0o600 });
          throw new CliError(
            `error: Edit cancelled, no valid changes were saved. A copy of your changes is in ${keep}`,
          );
        }
        lastBody = body;
        let error: string;
        try {
          const doc = parse(body) as Record<string, unknown>;
          if (!doc || typeof doc !== 'object')
            throw new CliError('error: the edited file is not a YAML object');
          await c.request('PUT', objectPath(kindArg(kind), name), JSON.stringify(doc));
          out(`${kind.toLowerCase()}/${name} edited`);
          return;
        } catch (e) {
          if (e instanceof CliError && /cannot connect|not a Strata API|Unauthorized/.test(e.message))
            throw e;
          error = (e as Error).message;
        }
        text = [
          ...HEADER,
          '# The edit was refused:',
          ...error.split('\n').map((l) => `# ${l}`),
          '#',
          body.replace(/^\n+/, ''),
        ].join('\n');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  registerMetaVerb(program, 'label');
  registerMetaVerb(program, 'annotate');
}
