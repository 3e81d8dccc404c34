/**
 * What a user sees when a manifest is wrong: `strata apply` exits 1 and the message names the file, the
 * resource (Kind/name), the field path and what was expected, and a refused apply writes nothing at all
 * (all or nothing, across documents and files). Runs `strata up` and the CLI as real processes.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { type StrataServer, startStrata, suiteCleanup, tempDir } from '../../helpers/strata.ts';

const H = 'apiVersion: strata.dev/v1alpha1';
const node = (name: string, spec = '{}') => `${H}\nkind: Node\nmetadata: { name: ${name} }\nspec: ${spec}\n`;
const network = (name: string, spec: Record<string, unknown>) =>
  `${H}\nkind: Network\nmetadata: { name: ${name} }\nspec: ${JSON.stringify({
    interface: 'eth0',
    subnet: '10.30.0.0/24',
    serverAddress: '10.30.0.1',
    pool: { start: '10.30.0.100', end: '10.30.0.150' },
    ...spec,
  })}\n`;

interface Case {
  title: string;
  file: string;
  text: string;
  /** Each must match the error output. */
  expect: RegExp[];
}

const cases: Case[] = [
  {
    title: 'unknown kind',
    file: 'widget.yaml',
    text: `${H}\nkind: Widget\nmetadata: { name: w1 }\nspec: {}\n`,
    expect: [
      /^Error from server \(Invalid\): widget\.yaml: Widget\/w1: kind: unknown kind "Widget": expected one of .*Node.*Network.*Profile.*SSHKey/m,
    ],
  },
  {
    title: 'missing metadata.name (in the 2nd document)',
    file: 'noname.yaml',
    text: `${node('fine')}---\n${H}\nkind: Node\nmetadata: { labels: { rack: a } }\nspec: {}\n`,
    expect: [/noname\.yaml: Node\/#2: metadata\.name: expected a name/],
  },
  {
    title: 'mistyped field (targetState: "high")',
    file: 'typed.yaml',
    text: node('t1', '{ targetState: high }'),
    expect: [/typed\.yaml: Node\/t1: spec\.targetState: expected a state number 0\.\.9/],
  },
  {
    title: 'targetState out of range (12)',
    file: 'range.yaml',
    text: node('t2', '{ targetState: 12 }'),
    expect: [/range\.yaml: Node\/t2: spec\.targetState: expected a state number 0\.\.9/],
  },
  {
    title: 'invalid MAC address',
    file: 'mac.yaml',
    text: node('m1', '{ macAddresses: ["52:54:00:00:00:01", "52:54:00:zz:00:02"] }'),
    expect: [
      /mac\.yaml: Node\/m1: spec\.macAddresses\[1\]: invalid MAC address "52:54:00:zz:00:02": expected six hex octets like 52:54:00:12:34:56/,
    ],
  },
  {
    title: 'invalid CIDR',
    file: 'cidr.yaml',
    text: network('c1', { subnet: '10.30.0.0/33' }),
    expect: [
      /cidr\.yaml: Network\/c1: spec\.subnet: invalid CIDR "10\.30\.0\.0\/33": expected an IPv4 network like/,
    ],
  },
  {
    title: 'invalid IP address',
    file: 'ip.yaml',
    text: network('i1', { gateway: '10.30.0.256' }),
    expect: [
      /ip\.yaml: Network\/i1: spec\.gateway: invalid IPv4 address "10\.30\.0\.256": expected dotted quad like 10\.0\.0\.1/,
    ],
  },
  {
    title: 'pool outside the subnet',
    file: 'pool.yaml',
    text: network('p1', { pool: { start: '10.30.0.100', end: '10.30.1.20' } }),
    expect: [/pool\.yaml: Network\/p1: spec\.pool\.end: 10\.30\.1\.20 is outside subnet 10\.30\.0\.0\/24/],
  },
  {
    title: 'unknown field in spec (and in a nested object)',
    file: 'unknown.yaml',
    text: node('u1', '{ colour: red, providers: { hardware: human, power: on } }'),
    expect: [
      /^Error from server \(Invalid\): 2 errors:$/m,
      /unknown\.yaml: Node\/u1: spec: unknown field\(s\) "colour"/,
      /unknown\.yaml: Node\/u1: spec\.providers: unknown field\(s\) "power"/,
    ],
  },
  {
    title: 'invalid YAML',
    file: 'broken.yaml',
    text: `${H}\nkind: Node\nmetadata: { name: b1\nspec: {}\n`,
    expect: [/broken\.yaml: document 1: not valid YAML\/JSON: .* at line \d+, column \d+/],
  },
  {
    title: 'duplicate name in one multi-document file',
    file: 'dup.yaml',
    text: `${node('d1')}---\n${node('d2')}---\n${node('d1', '{ targetState: 1 }')}`,
    expect: [
      /dup\.yaml: Node\/d1: metadata\.name: duplicate name: Node\/d1 is also defined in dup\.yaml document 1/,
    ],
  },
];

describe('strata apply refuses bad input, names where and what, and writes nothing', {
  concurrency: 1,
}, () => {
  const cleanup = suiteCleanup();
  let s: StrataServer;
  let dir: string;
  const apply = (...files: string[]) => s.cli(['apply', ...files.flatMap((f) => ['-f', f])], { cwd: dir });

  before(async () => {
    dir = tempDir(cleanup);
    s = await startStrata(cleanup);
  });

  describe('each refused with exit code 1 and a precise message', { concurrency: 2 }, () => {
    for (const c of cases) {
      it(c.title, async () => {
        writeFileSync(join(dir, c.file), c.text);
        const r = await apply(c.file);
        assert.equal(r.code, 1, `exit code; stdout: ${r.stdout}`);
        assert.equal(r.stdout, '', 'nothing reported as applied');
        for (const re of c.expect) assert.match(r.stderr, re);
      });
    }

    it('duplicate name across two -f files', async () => {
      writeFileSync(join(dir, 'first.yaml'), node('twice'));
      writeFileSync(join(dir, 'second.yaml'), `${node('other')}---\n${node('twice', '{ targetState: 1 }')}`);
      const r = await apply('first.yaml', 'second.yaml');
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /second\.yaml: Node\/twice: metadata\.name: duplicate name: Node\/twice is also defined in first\.yaml document 1/,
      );
    });

    it('a file that does not exist', async () => {
      const r = await apply('missing.yaml');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^error: cannot read missing\.yaml: ENOENT$/m);
    });
  });

  it('nothing of the refused manifests was written', async () => {
    for (const kind of ['nodes', 'networks']) {
      const r = await s.api('GET', `/api/v1/${kind}`);
      assert.deepEqual((r.json as { items: unknown[] }).items, [], `${kind} stay empty`);
    }
  });

  it('all or nothing: a 3-document apply whose 3rd document is bad writes none of them', async () => {
    writeFileSync(
      join(dir, 'three.yaml'),
      `${node('a1')}---\n${node('a2')}---\n${node('a3', '{ targetState: 12 }')}`,
    );
    const r = await apply('three.yaml');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /three\.yaml: Node\/a3: spec\.targetState: expected a state number 0\.\.9/);
    const get = await s.cli(['get', 'nodes']);
    assert.equal(get.code, 0);
    assert.equal(get.stdout, '');
    assert.match(get.stderr, /^No nodes found\.$/m);
    for (const n of ['a1', 'a2']) {
      const one = await s.cli(['get', 'node', n]);
      assert.equal(one.code, 1);
      assert.match(one.stderr, new RegExp(`Error from server \\(NotFound\\): node "${n}" not found`));
    }
  });

  it('all or nothing in the store: a valid apply refused by a conflict on its 3rd document writes none', async () => {
    // "pinned" exists; the manifest's third document names a stale version of it, which only the store
    // can notice, inside the same transaction that would create the first two.
    const made = await s.api('POST', '/api/v1/apply', node('pinned'));
    assert.equal(made.status, 200, made.text);
    await s.api('PUT', '/api/v1/nodes/pinned', {
      apiVersion: 'strata.dev/v1alpha1',
      kind: 'Node',
      metadata: { name: 'pinned', labels: { bumped: 'yes' } },
      spec: {},
    });
    const stale = (made.json as { items: { resourceVersion: string }[] }).items[0]!.resourceVersion;
    writeFileSync(
      join(dir, 'conflict.yaml'),
      `${node('b1')}---\n${node('b2')}---\n${H}\nkind: Node\nmetadata: { name: pinned, resourceVersion: "${stale}" }\nspec: { targetState: 1 }\n`,
    );
    const r = await apply('conflict.yaml');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error from server \(Conflict\): .*node "pinned".*stale/m);
    const names = (
      (await s.api('GET', '/api/v1/nodes')).json as { items: { metadata: { name: string } }[] }
    ).items.map((i) => i.metadata.name);
    assert.deepEqual(names, ['pinned']);
  });
});
