import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import {
  AnswerFileError,
  type AnswerInput,
  type AnswerKind,
  BUILTIN_ANSWER_TEMPLATES,
  checkCloudConfig,
  checkKickstart,
  checkPreseed,
  renderAnswerFile,
  renderCloudInitMetaData,
  validateAnswerTemplate,
} from '../../../src/install/answers/index.ts';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJylnDhT3/DsP9cPQ1MrFb5TIzCCwQLmfY8ebdLDIY1S op@lab';
const FAMILY = { kickstart: 'fedora', preseed: 'debian', 'cloud-init': 'ubuntu' } as const;
const RELEASE = { kickstart: '40', preseed: 'bookworm', 'cloud-init': 'noble' } as const;

function input(
  kind: AnswerKind,
  patch: { node?: object; profile?: object; strata?: object } = {},
): AnswerInput {
  return {
    node: {
      name: 'node-1',
      hostname: 'node-1.lab',
      mac: '52:54:00:12:34:56',
      ip: '10.213.0.50',
      ...patch.node,
    },
    profile: {
      os: { family: FAMILY[kind], release: RELEASE[kind] },
      vars: { timezone: 'Europe/Paris' },
      sshAuthorizedKeys: [KEY],
      preRebootScript: 'echo pre > /tmp/pre\n',
      postRebootScript: '#!/bin/sh\necho "post 100%" > /root/post\n',
      ...patch.profile,
    } as AnswerInput['profile'],
    strata: { baseUrl: 'http://10.213.0.1:7421', installedToken: 'tok_123-abc', ...patch.strata },
  };
}

/** Asserts that `fn` throws an AnswerFileError for `field` whose message matches `message`. */
function throwsField(fn: () => unknown, field: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AnswerFileError, `expected AnswerFileError, got ${err}`);
    assert.equal(err.field, field);
    assert.match(err.message, message);
    assert.ok(err.message.startsWith(`${field}: `), err.message);
    return true;
  });
}

describe('kickstart', () => {
  it('renders a text install from the mirror with hostname, locked root, the SSH key, %pre and %post', () => {
    const ks = renderAnswerFile(
      'kickstart',
      input('kickstart', {
        profile: { os: { family: 'fedora', release: '40', mirror: 'https://mirror.example/f40/' } },
      }),
    );
    assert.deepEqual(checkKickstart(ks), []);
    assert.match(ks, /^text$/m);
    assert.match(ks, /^url --url='https:\/\/mirror\.example\/f40\/'$/m);
    assert.match(ks, /^network .*--hostname=node-1\.lab/m);
    assert.match(ks, /^rootpw --lock$/m);
    assert.ok(ks.includes(`sshkey --username=root '${KEY}'\n`));
    assert.match(ks, /^timezone Europe\/Paris --utc$/m);
    assert.match(ks, /^clearpart --all --initlabel$/m);
    assert.match(ks, /^autopart$/m);
    assert.match(ks, /^bootloader /m);
    assert.match(ks, /^reboot$/m);
    assert.match(
      ks,
      /^%pre .*\nprintf 'echo pre > \/tmp\/pre\\n' > \/tmp\/strata-pre-reboot\.sh\nsh \/tmp\/strata-pre-reboot\.sh\n%end$/m,
    );
    assert.match(
      ks,
      /^%post [^\n]*\nprintf '#!\/bin\/sh\\necho "post 100%%" > \/root\/post\\n' > \/root\/strata-post-reboot\.sh$/m,
    );
    assert.match(ks, /curl .*Bearer tok_123-abc.*http:\/\/10\.213\.0\.1:7421\/install\/node-1\/installed/);
  });

  it("defaults the mirror to Strata's own and leaves out %pre when there is no pre-reboot script", () => {
    const ks = renderAnswerFile('kickstart', input('kickstart', { profile: { preRebootScript: '' } }));
    assert.match(ks, /^url --url='http:\/\/10\.213\.0\.1:7421\/mirror\/fedora\/40'$/m);
    assert.doesNotMatch(ks, /^%pre/m);
  });

  it('refuses a template with an unclosed %post, naming the template and the section', () => {
    throwsField(
      () =>
        renderAnswerFile(
          'kickstart',
          input('kickstart', {
            profile: { answerTemplate: 'text\nreboot\n%post\necho {{ node.hostname }}\n' },
          }),
        ),
      'profile.answerTemplate',
      /syntax check: %post on line 3 is not closed with %end/,
    );
  });

  it('refuses a script line starting with % (it would close the section)', () => {
    throwsField(
      () =>
        renderAnswerFile(
          'kickstart',
          input('kickstart', { profile: { postRebootScript: 'echo a\n%end\nreboot\n' } }),
        ),
      'profile.postRebootScript',
      /line 2 starts with "%"/,
    );
  });

  it('refuses an OS family kickstart does not install', () => {
    throwsField(
      () => renderAnswerFile('kickstart', input('preseed')),
      'profile.os.family',
      /"debian" is not installed with kickstart; expected fedora or rhel/,
    );
  });
});

describe('preseed', () => {
  it('renders d-i lines: mirror, hostname, partman, root keys, early/late commands, reboot', () => {
    const p = renderAnswerFile(
      'preseed',
      input('preseed', {
        profile: { os: { family: 'debian', release: 'bookworm', mirror: 'http://deb.debian.org/debian/' } },
      }),
    );
    assert.deepEqual(checkPreseed(p), []);
    assert.match(p, /^d-i mirror\/http\/hostname string deb\.debian\.org$/m);
    assert.match(p, /^d-i mirror\/http\/directory string \/debian$/m);
    assert.match(p, /^d-i mirror\/suite string bookworm$/m);
    assert.match(p, /^d-i netcfg\/get_hostname string node-1\.lab$/m);
    assert.match(p, /^d-i partman-auto\/method string regular$/m);
    assert.match(p, /^d-i passwd\/root-login boolean true$/m);
    assert.match(
      p,
      /^d-i preseed\/early_command string printf 'echo pre > \/tmp\/pre\\n' > \/tmp\/strata-pre-reboot\.sh; sh /m,
    );
    const late = /^d-i preseed\/late_command string (.*)$/m.exec(p)?.[1] ?? '';
    assert.ok(late.includes(`printf '${KEY}\\n' > /target/root/.ssh/authorized_keys`), late);
    assert.match(late, /in-target sh \/root\/strata-finish\.sh$/);
    assert.match(p, /^d-i finish-install\/reboot_in_progress note$/m);
    // One setting per line: no value broke out of its line.
    for (const line of p.split('\n'))
      if (line && !line.startsWith('#')) assert.match(line, /^\S+ \S+\/\S+ \S+/);
  });

  it('a custom answerTemplate replaces the built-in one', () => {
    const p = renderAnswerFile(
      'preseed',
      input('preseed', {
        profile: {
          answerTemplate:
            '# mine\nd-i netcfg/get_hostname string {{ node.hostname }}\nd-i time/zone string {{ vars.timezone }}\n',
        },
      }),
    );
    assert.equal(p, '# mine\nd-i netcfg/get_hostname string node-1.lab\nd-i time/zone string Europe/Paris\n');
  });

  it('a template with a line that is not "owner question type value" is refused', () => {
    throwsField(
      () =>
        renderAnswerFile(
          'preseed',
          input('preseed', { profile: { answerTemplate: 'd-i netcfg/get_hostname strin x\n' } }),
        ),
      'profile.answerTemplate',
      /line 1: unknown type "strin"/,
    );
  });

  it('a multi-line script in a custom template breaks the line syntax and is refused', () => {
    throwsField(
      () =>
        renderAnswerFile(
          'preseed',
          input('preseed', {
            profile: {
              postRebootScript: 'echo a\necho b\n',
              answerTemplate: 'd-i preseed/late_command string {{ scripts.postReboot }}\n',
            },
          }),
        ),
      'profile.answerTemplate',
      /line 2: expected "owner question type value", got "echo b"/,
    );
  });
});

describe('cloud-init autoinstall', () => {
  it('renders #cloud-config with autoinstall version 1, identity, SSH keys and commands', () => {
    const text = renderAnswerFile('cloud-init', input('cloud-init'));
    assert.deepEqual(checkCloudConfig(text), []);
    assert.ok(text.startsWith('#cloud-config\n'));
    const doc = parse(text);
    assert.equal(doc.autoinstall.version, 1);
    assert.equal(doc.autoinstall.identity.hostname, 'node-1.lab');
    assert.deepEqual(doc.autoinstall.ssh['authorized-keys'], [KEY]);
    assert.equal(doc.autoinstall.timezone, 'Europe/Paris');
    assert.equal(doc.autoinstall.apt.primary[0].uri, 'http://10.213.0.1:7421/mirror/ubuntu/noble');
    assert.match(
      doc.autoinstall['early-commands'][0],
      /^printf 'echo pre > \/tmp\/pre\\n' > \/tmp\/strata-pre-reboot\.sh; sh /,
    );
    assert.equal(
      doc.autoinstall['late-commands'].at(-1),
      'curtin in-target --target=/target -- sh /root/strata-finish.sh',
    );
    assert.ok(
      doc.autoinstall['late-commands'].includes(`printf '${KEY}\\n' > /target/root/.ssh/authorized_keys`),
    );
  });

  it('meta-data names the instance and host', () => {
    assert.deepEqual(parse(renderCloudInitMetaData(input('cloud-init'))), {
      'instance-id': 'strata-node-1',
      'local-hostname': 'node-1.lab',
    });
  });

  it('a template without autoinstall version 1 or #cloud-config is refused', () => {
    throwsField(
      () =>
        renderAnswerFile(
          'cloud-init',
          input('cloud-init', { profile: { answerTemplate: '#cloud-config\nautoinstall:\n  version: 2\n' } }),
        ),
      'profile.answerTemplate',
      /autoinstall\.version must be 1, got 2/,
    );
    throwsField(
      () =>
        renderAnswerFile(
          'cloud-init',
          input('cloud-init', { profile: { answerTemplate: 'autoinstall: {version: 1}\n' } }),
        ),
      'profile.answerTemplate',
      /line 1: must be exactly "#cloud-config"/,
    );
    throwsField(
      () =>
        renderAnswerFile(
          'cloud-init',
          input('cloud-init', { profile: { answerTemplate: '#cloud-config\na: [\n' } }),
        ),
      'profile.answerTemplate',
      /YAML: /,
    );
  });
});

describe('bad inputs get errors naming the field and what is expected', () => {
  for (const kind of ['kickstart', 'preseed', 'cloud-init'] as const) {
    it(`${kind}: a missing template variable names it`, () => {
      const tpl = {
        kickstart: 'text\ntimezone {{ vars.zone }}\n',
        preseed: 'd-i time/zone string {{ vars.zone }}\n',
        'cloud-init': '#cloud-config\ntimezone: {{ vars.zone }}\n',
      }[kind];
      throwsField(
        () => renderAnswerFile(kind, input(kind, { profile: { answerTemplate: tpl } })),
        'vars.zone',
        /uses vars\.zone, which is not set/,
      );
    });

    it(`${kind}: the built-in template needs no optional variable`, () => {
      assert.ok(renderAnswerFile(kind, input(kind, { profile: { vars: {} } })).length > 100);
    });

    it(`${kind}: an invalid hostname`, () => {
      throwsField(
        () => renderAnswerFile(kind, input(kind, { node: { hostname: 'node_1!' } })),
        'node.hostname',
        /"node_1!" is not a DNS name: labels of a-z, 0-9 and "-"/,
      );
    });

    it(`${kind}: an SSH key with a newline`, () => {
      throwsField(
        () => renderAnswerFile(kind, input(kind, { profile: { sshAuthorizedKeys: [`${KEY}\nreboot`] } })),
        'profile.sshAuthorizedKeys[0]',
        /contains a newline .*expected one OpenSSH public key line/,
      );
    });
  }

  it('an SSH key that is not an OpenSSH public key line, or whose data names another type', () => {
    throwsField(
      () =>
        renderAnswerFile('preseed', input('preseed', { profile: { sshAuthorizedKeys: [KEY, 'not a key'] } })),
      'profile.sshAuthorizedKeys[1]',
      /"not a key" is not one OpenSSH public key line/,
    );
    throwsField(
      () =>
        renderAnswerFile(
          'preseed',
          input('preseed', { profile: { sshAuthorizedKeys: [KEY.replace('ssh-ed25519', 'ssh-rsa')] } }),
        ),
      'profile.sshAuthorizedKeys[0]',
      /is not a ssh-rsa key/,
    );
  });

  it('URLs must be http(s)', () => {
    throwsField(
      () =>
        renderAnswerFile(
          'preseed',
          input('preseed', {
            profile: { os: { family: 'debian', release: 'bookworm', mirror: 'ftp://x/debian' } },
          }),
        ),
      'profile.os.mirror',
      /is not an absolute http:\/\/ or https:\/\/ URL/,
    );
    throwsField(
      () => renderAnswerFile('kickstart', input('kickstart', { strata: { baseUrl: 'http://a b/' } })),
      'strata.baseUrl',
      /http:\/\/ or https:\/\//,
    );
  });

  it('no newlines in single-line values: vars, MAC, release', () => {
    throwsField(
      () =>
        renderAnswerFile(
          'preseed',
          input('preseed', { profile: { vars: { timezone: 'UTC\nd-i x/y string z' } } }),
        ),
      'vars.timezone',
      /contains a newline/,
    );
    throwsField(
      () => renderAnswerFile('kickstart', input('kickstart', { node: { mac: 'nope' } })),
      'node.mac',
      /MAC address/,
    );
    throwsField(
      () =>
        renderAnswerFile(
          'cloud-init',
          input('cloud-init', { profile: { os: { family: 'ubuntu', release: 'noble lts' } } }),
        ),
      'profile.os.release',
      /is not a release name/,
    );
  });

  it('scripts with CRLF line endings', () => {
    throwsField(
      () => renderAnswerFile('preseed', input('preseed', { profile: { preRebootScript: 'echo a\r\n' } })),
      'profile.preRebootScript',
      /CRLF/,
    );
  });

  it('a template that does not parse, and one using the filesystem, are refused', () => {
    throwsField(() => validateAnswerTemplate('{% if %}'), 'profile.answerTemplate', /does not parse/);
    throwsField(
      () =>
        renderAnswerFile(
          'preseed',
          input('preseed', { profile: { answerTemplate: "{% include '/etc/passwd' %}" } }),
        ),
      'profile.answerTemplate',
      /passwd/,
    );
  });
});

describe('built-in templates', () => {
  it('are exported for documentation and as starting points', () => {
    assert.match(BUILTIN_ANSWER_TEMPLATES.kickstart, /%post/);
    assert.match(BUILTIN_ANSWER_TEMPLATES.preseed, /preseed\/late_command/);
    assert.match(BUILTIN_ANSWER_TEMPLATES['cloud-init'], /^#cloud-config/);
  });
});
