/**
 * `wait --for=...`: poll objects until a condition holds, like kubectl wait. Polling (not a watch) keeps it
 * simple and indifferent to server restarts; on timeout it exits non-zero saying what it waited for and
 * what it saw last, which is what a script's log needs.
 */
import type { Command } from 'commander';
import type { Resource } from '../../core/resources/types.ts';
import { CliError } from '../client.ts';
import { client, examples, out, parseDuration, targets } from '../common.ts';
import { evaluate, relaxed, show } from '../jsonpath.ts';

interface Condition {
  describe: string;
  /** What was seen, or undefined while the object is missing. */
  seen: (r: Resource | undefined) => string;
  met: (r: Resource | undefined) => boolean;
}

/** `jsonpath={.status.state}=4`, `jsonpath={.status.phase}` (exists), `condition=Ready`, `delete`. */
export function parseFor(spec: string): Condition {
  if (spec === 'delete')
    return { describe: 'deletion', seen: (r) => (r ? 'the object still exists' : 'gone'), met: (r) => !r };
  if (spec.startsWith('condition=')) {
    const [type, want = 'True'] = spec.slice('condition='.length).split('=') as [string, string?];
    const status = (r: Resource | undefined) =>
      ((r?.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []).find(
        (c) => c.type.toLowerCase() === type.toLowerCase(),
      )?.status;
    return {
      describe: `condition ${type}=${want}`,
      seen: (r) => (r ? `${type}=${status(r) ?? '<none>'}` : 'the object does not exist'),
      met: (r) => status(r)?.toLowerCase() === want.toLowerCase(),
    };
  }
  if (spec.startsWith('jsonpath=')) {
    const rest = spec.slice('jsonpath='.length);
    let path: string;
    let want: string | undefined;
    if (rest.startsWith('{')) {
      const end = rest.indexOf('}');
      if (end < 0) throw new CliError(`error: --for=${spec}: unclosed "{"`);
      path = rest.slice(0, end + 1);
      const tail = rest.slice(end + 1);
      if (tail && !tail.startsWith('='))
        throw new CliError(
          `error: --for=${spec}: expected jsonpath={PATH}=VALUE, e.g. jsonpath={.status.state}=4`,
        );
      want = tail ? tail.slice(1) : undefined;
    } else {
      const i = rest.lastIndexOf('=');
      [path, want] = i > 0 ? [rest.slice(0, i), rest.slice(i + 1)] : [rest, undefined];
    }
    const p = relaxed(path);
    const value = (r: Resource | undefined) => (r ? evaluate(p, r).map(show) : []);
    return {
      describe: want === undefined ? `${p} to exist` : `${p}=${want}`,
      seen: (r) => (r ? `${p}=${value(r).join(' ') || '<none>'}` : 'the object does not exist'),
      met: (r) => {
        const v = value(r);
        return want === undefined ? v.length > 0 : v.length > 0 && v.join(' ') === want;
      },
    };
  }
  throw new CliError(
    `error: --for=${spec}: expected jsonpath={PATH}=VALUE, condition=NAME or delete (e.g. --for=jsonpath='{.status.state}'=4)`,
  );
}

export function registerWaitCommand(program: Command): void {
  examples(
    program
      .command('wait')
      .description('wait until objects meet a condition (exit 1 on timeout, saying what was seen last)')
      .argument('<kind-or-object...>', 'KIND NAME... or KIND/NAME...')
      .requiredOption('--for <condition>', 'jsonpath={PATH}=VALUE, condition=NAME[=VALUE] or delete')
      .option('--timeout <duration>', 'how long to wait, e.g. 30s, 10m', '30s')
      .option('-l, --selector <selector>', 'with a kind only: wait for every object matching it'),
    [
      "strata wait --for=jsonpath='{.status.state}'=4 --timeout=10m node/n1",
      'strata wait --for=jsonpath={.status.phase}=Ready nodes -l rack=a',
      'strata wait --for=delete node/n2 --timeout=5m',
    ],
  ).action(async (args: string[], o, cmd: Command) => {
    const cond = parseFor(o.for);
    const timeoutMs = parseDuration(o.timeout, '--timeout');
    const c = client(cmd);
    const objs: { plural: string; kind: string; name: string }[] = [];
    for (const t of targets(args)) {
      const names = t.names.length
        ? t.names
        : (await c.list(t.def.plural, o.selector)).items.map((r) => r.metadata.name);
      if (!t.names.length && !o.selector)
        throw new CliError(
          'error: name the objects to wait for (KIND NAME or KIND/NAME), or give -l SELECTOR',
        );
      for (const n of names) objs.push({ plural: t.def.plural, kind: t.def.kind, name: n });
    }
    if (!objs.length) throw new CliError('error: no matching resources found');
    const deadline = Date.now() + timeoutMs;
    for (const obj of objs) {
      const id = `${obj.kind.toLowerCase()}/${obj.name}`;
      let seen = '';
      let last = '';
      for (;;) {
        let r: Resource | undefined;
        let reached = true;
        try {
          r = await c.get(obj.plural, obj.name);
        } catch (e) {
          if (!(e instanceof CliError)) throw e;
          if (/cannot connect to the Strata API/.test(e.message)) reached = false;
          else if (!/^Error from server \(NotFound\)/.test(e.message)) throw e;
        }
        if (reached) {
          seen = cond.seen(r);
          last = seen;
          if (cond.met(r)) {
            out(`${id} condition met`);
            break;
          }
          if (!r && cond.describe !== 'deletion')
            throw new CliError(
              `Error from server (NotFound): ${obj.kind.toLowerCase()} "${obj.name}" not found`,
            );
        } else last = `the server at ${c.server} was unreachable${seen ? ` (before that: ${seen})` : ''}`;
        if (Date.now() >= deadline)
          throw new CliError(
            `error: timed out after ${o.timeout} waiting for ${cond.describe} on ${id}; last seen: ${last}`,
          );
        await new Promise((res) => setTimeout(res, 500));
      }
    }
  });
}
