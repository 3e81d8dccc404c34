/**
 * Rendered answer files checked by the real validators: pykickstart's `ksvalidator` (installed from PyPI
 * into .cache/tools by scripts/tools/pykickstart.sh), Debian's `debconf-set-selections --checkonly`, and
 * `cloud-init schema` (Debian's cloud-init, installed by scripts/tools/cloud-init.sh). A validator that
 * cannot be installed here (PyPI or the Debian archive unreachable, not root) skips its assertion with the
 * reason; the TS checks always run. The real validators must also reject what our checks reject, and the
 * one-line `printf` commands must write the scripts back byte for byte under a real `sh`.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type AnswerInput, type AnswerKind, renderAnswerFile } from '../../../src/install/answers/index.ts';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../../..');
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJylnDhT3/DsP9cPQ1MrFb5TIzCCwQLmfY8ebdLDIY1S op@lab';
const PRE = 'echo "pre 100%" > /tmp/pre\nprintf \'%s\\n\' "it\'s" \\\n  done\n';
const POST = '#!/bin/sh\n\tcat <<EOF >/root/post\n%end $HOME `x` \\ é\nEOF\n';

function input(
  kind: AnswerKind,
  family: AnswerInput['profile']['os']['family'],
  release: string,
): AnswerInput {
  return {
    node: { name: 'node-1', hostname: 'node-1.lab', mac: '52:54:00:12:34:56' },
    profile: {
      os: { family, release },
      vars: {},
      sshAuthorizedKeys: [KEY],
      preRebootScript: PRE,
      postRebootScript: kind === 'kickstart' ? POST.replace('%end', 'end') : POST,
    },
    strata: { baseUrl: 'http://10.213.0.1:7421', installedToken: 'tok_123-abc' },
  };
}

/** Runs a scripts/tools installer: the tool's path, or a skip reason when it cannot be installed here. */
function tool(script: string): { bin?: string; skip?: string } {
  const r = spawnSync('bash', [join(REPO, 'scripts/tools', script)], { encoding: 'utf8', timeout: 300_000 });
  if (r.status === 0) return { bin: r.stdout.trim() };
  if (r.status === 3) return { skip: `${script}: ${r.stderr.trim().split('\n').pop()}` };
  throw new Error(`${script} failed (exit ${r.status}): ${r.stderr}`);
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-answers-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('kickstart with pykickstart ksvalidator', () => {
  const ks = tool('pykickstart.sh');
  for (const [family, release, version] of [
    ['fedora', '40', 'F40'],
    ['rhel', '9', 'RHEL9'],
  ] as const) {
    it(`${family} ${release} passes ksvalidator -v ${version}`, { skip: ks.skip }, async () => {
      const p = file(`${family}.ks`, renderAnswerFile('kickstart', input('kickstart', family, release)));
      const r = await run(ks.bin!, ['-e', '-v', version, p]);
      assert.doesNotMatch(r.stdout + r.stderr, /error|warning/i);
    });
  }

  it('ksvalidator also rejects the unclosed %post our check refuses', { skip: ks.skip }, async () => {
    const p = file('bad.ks', 'text\nreboot\n%post\necho hi\n');
    await assert.rejects(run(ks.bin!, ['-v', 'F40', p]), (e: { stdout: string }) => /%end/.test(e.stdout));
  });
});

describe('preseed with debconf-set-selections --checkonly', () => {
  const have = spawnSync('sh', ['-c', 'command -v debconf-set-selections']).status === 0;
  const skip = have ? undefined : 'debconf-set-selections is not installed (Debian package debconf)';

  it('a Debian preseed passes with no warning', { skip }, async () => {
    const p = file('preseed.cfg', renderAnswerFile('preseed', input('preseed', 'debian', 'bookworm')));
    const r = await run('debconf-set-selections', ['--checkonly', p]);
    assert.equal(r.stderr, '');
  });

  it('debconf also flags the lines our check refuses', { skip }, async () => {
    await assert.rejects(
      run('debconf-set-selections', ['--checkonly', file('bad1', 'd-i netcfg/get_hostname\n')]),
    );
    const r = await run('debconf-set-selections', ['--checkonly', file('bad2', 'd-i a/b strin x\n')]);
    assert.match(r.stderr, /Unknown type strin/);
  });
});

describe('cloud-init autoinstall with cloud-init schema', () => {
  const ci = tool('cloud-init.sh');

  it('an Ubuntu autoinstall is a valid cloud-config', { skip: ci.skip }, async () => {
    const p = file('user-data', renderAnswerFile('cloud-init', input('cloud-init', 'ubuntu', 'noble')));
    const r = await run(ci.bin!, ['schema', '-c', p]);
    assert.match(r.stdout, /Valid cloud-config/);
  });

  it('cloud-init schema also rejects a file without #cloud-config', { skip: ci.skip }, async () => {
    await assert.rejects(run(ci.bin!, ['schema', '-c', file('bad.yaml', 'autoinstall:\n  version: 1\n')]));
  });
});

describe('scripts survive the one-line printf encoding under a real sh', () => {
  for (const kind of ['kickstart', 'preseed', 'cloud-init'] as const) {
    it(kind, async () => {
      const family = ({ kickstart: 'fedora', preseed: 'debian', 'cloud-init': 'ubuntu' } as const)[kind];
      const text = renderAnswerFile(kind, input(kind, family, 'x'));
      const cmds = text
        .split('\n')
        .flatMap((l) => l.replace(/^\s*- "(.*)"$/, (_, s: string) => JSON.parse(`"${s}"`)).split('; '))
        .map((c) => c.replace(/^d-i preseed\/\w+ string /, ''))
        .filter((c) => /^printf '.*' > \/(target\/)?(tmp|root)\/strata-(pre|post)-reboot\.sh$/.test(c));
      assert.equal(cmds.length, 2, text);
      for (const c of cmds) {
        const out = join(dir, `${kind}-${c.includes('pre-reboot') ? 'pre' : 'post'}`);
        await run('sh', ['-c', c.replace(/> \S+$/, `> '${out}'`)]);
        const want = c.includes('pre-reboot')
          ? PRE
          : kind === 'kickstart'
            ? POST.replace('%end', 'end')
            : POST;
        assert.equal(readFileSync(out, 'utf8'), want);
      }
    });
  }
});
