/** The small parsers behind kubectl habits: watch label selectors, wait --for, explain, and text logs. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import '../../../src/core/kinds/index.ts';
import { explain } from '../../../src/cli/commands/explain.ts';
import { parseFor } from '../../../src/cli/commands/wait.ts';
import { createLogger, formatText, setLogFormat } from '../../../src/core/log.ts';
import { matchesSelector, parseSelector } from '../../../src/core/resources/selector.ts';
import type { Resource } from '../../../src/core/resources/types.ts';

describe('label selectors in watches (Kubernetes grammar)', () => {
  const l = { rack: 'a', role: 'db' };
  const m = (s: string) => matchesSelector(l, parseSelector(s));
  it('equality, inequality, sets and existence', () => {
    assert.ok(m('rack=a,role==db'));
    assert.ok(!m('rack!=a'));
    assert.ok(m('rack in (a, b)'));
    assert.ok(!m('rack notin (a,b)'));
    assert.ok(m('role,!zone'));
    assert.ok(!m('!role'));
  });
});

describe('wait --for', () => {
  const node = (state?: number) =>
    ({ kind: 'Node', metadata: { name: 'n1' }, spec: {}, status: { state } }) as unknown as Resource;
  it('jsonpath={PATH}=VALUE compares the printed value and says what it saw', () => {
    const c = parseFor('jsonpath={.status.state}=4');
    assert.ok(c.met(node(4)));
    assert.ok(!c.met(node(3)));
    assert.equal(c.seen(node(3)), '.status.state=3');
    assert.equal(c.describe, '.status.state=4');
  });
  it('delete, and a clear refusal of anything else', () => {
    assert.ok(parseFor('delete').met(undefined));
    assert.throws(() => parseFor('ready'), /expected jsonpath=\{PATH\}=VALUE, condition=NAME or delete/);
  });
});

describe('explain', () => {
  it('names the kind, its fields and their types; an unknown field is an error pointing at the parent', () => {
    const top = explain('node');
    assert.match(top, /^KIND:\s+Node$/m);
    assert.match(top, /^ {2}spec\t<Object>/m);
    const hw = explain('node.spec.providers.hardware');
    assert.match(hw, /^FIELD: hardware <string>$/m);
    assert.match(hw, /One of: human, lab, redfish, ipmi, none/);
    assert.throws(
      () => explain('node.spec.nope'),
      /field "spec.nope" does not exist in Node \(see strata explain node\.spec\)/,
    );
  });
});

describe('text log lines', () => {
  it('time level component message key=value, secrets redacted, control characters escaped', () => {
    const lines: string[] = [];
    setLogFormat('text');
    try {
      createLogger({ component: 'dhcp' }, (l) => lines.push(l)).warn('odd vendor class', {
        vendorClass: 'PXE\x1b[2J',
        token: 'hunter2',
        mac: '52:54:00:aa:00:01',
      });
    } finally {
      setLogFormat('json');
    }
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} WARN {2}dhcp odd vendor class /);
    assert.match(lines[0]!, / mac=52:54:00:aa:00:01/);
    assert.match(lines[0]!, / token=\[REDACTED\]/);
    assert.ok(!lines[0]!.includes('hunter2'));
    assert.ok(!lines[0]!.includes('\x1b'));
    assert.equal(
      formatText({ time: '2026-01-01T10:00:00.000Z', level: 'info', msg: 'up' }),
      '10:00:00.000 INFO  - up',
    );
  });

  it('the JSON format redacts the same secrets', () => {
    const lines: string[] = [];
    setLogFormat('json');
    createLogger({}, (l) => lines.push(l)).info('x', { authorization: 'Bearer abc' });
    assert.equal(JSON.parse(lines[0]!).authorization, '[REDACTED]');
  });
});

describe('help', () => {
  it('every command has examples and shows the global flags', async () => {
    const { buildCli } = await import('../../../src/cli/main.ts');
    const missing: string[] = [];
    const walk = (c: import('commander').Command, path: string) => {
      for (const sub of c.commands) {
        const name = `${path} ${sub.name()}`;
        const parts: string[] = [];
        sub.configureOutput({ writeOut: (s) => parts.push(s), writeErr: (s) => parts.push(s) });
        sub.outputHelp();
        const text = parts.join('');
        if (!/^Examples:$/m.test(text) || !/^Global Options:$/m.test(text) || !text.includes('--server'))
          missing.push(name);
        walk(sub, name);
      }
    };
    walk(buildCli(), 'strata');
    assert.deepEqual(missing, []);
  });
});

describe('events are printed terminal-safe', () => {
  it('a forged message or source cannot carry escape codes', async () => {
    const { formatEvent } = await import('../../../src/cli/print.ts');
    const line = formatEvent({
      time: '2026-01-01T00:00:00.000Z',
      type: 'Normal',
      kind: 'Node',
      name: 'n1',
      reason: 'DHCPDiscover',
      message: 'vendor class PXEClient\x1b]0;owned\x07\x1b[2J',
      source: 'dhcp\r',
    } as import('../../../src/core/resources/types.ts').StrataEvent);
    assert.ok(!/[\x00-\x08\x0a-\x1f\x7f-\x9f]/.test(line), line);
    assert.match(line, /PXEClient\\x1b\]0;owned\\x07\\x1b\[2J/);
  });
});

describe('field descriptions', () => {
  it('every spec field of every kind has one, so explain documents it', async () => {
    const { allKinds } = await import('../../../src/core/resources/kinds.ts');
    const { inspect } = await import('../../../src/cli/commands/explain.ts');
    const missing: string[] = [];
    const walk = (f: ReturnType<typeof inspect>, path: string) => {
      for (const [k, z] of Object.entries(f.fields ?? {})) {
        const child = inspect(z);
        if (!child.description) missing.push(`${path}.${k}`);
        walk(child, `${path}.${k}`);
      }
    };
    for (const k of allKinds()) walk(inspect(k.spec as never), `${k.kind.toLowerCase()}.spec`);
    assert.deepEqual(missing, [], 'add .describe() to these fields');
  });
});
