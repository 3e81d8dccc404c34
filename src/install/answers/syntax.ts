/**
 * Syntax checks run on every rendered answer file before it is served, pure TypeScript so they run
 * everywhere: a kickstart's commands and `%`-sections, a preseed's debconf lines, a cloud-config's YAML
 * and autoinstall shape. They are structural, not a full model of each installer: they catch what a
 * template or a value can break (an unclosed `%post`, a line that is not `owner question type value`,
 * YAML that does not parse), with the line number. The tests also run the real validators (pykickstart's
 * `ksvalidator`, `debconf-set-selections --checkonly`, `cloud-init schema`) on the same output.
 *
 * Each check returns a list of problems (empty = fine) rather than throwing, so callers decide how to
 * report them.
 */
import { parseDocument } from 'yaml';

/** Commands pykickstart knows (any version); a kickstart line outside a section must start with one. */
export const KICKSTART_COMMANDS: ReadonlySet<string> = new Set(
  (
    'auth authconfig authselect autopart autostep bootc bootloader btrfs cdrom clearpart cmdline device ' +
    'deviceprobe dmraid driverdisk eula fcoe firewall firstboot graphical group halt harddrive hmc ' +
    'ignoredisk install interactive iscsi iscsiname keyboard lang langsupport lilo lilocheck liveimg ' +
    'logging logvol mediacheck method module monitor mount mouse multipath network nfs nvdimm ' +
    'ostreecontainer ostreesetup part partition poweroff raid realm reboot repo reqpart rescue rhsm ' +
    'rootpw selinux services shutdown skipx snapshot sshkey sshpw syspurpose text timesource timezone ' +
    'updates upgrade url user vnc volgroup xconfig zerombr zfcp zipl'
  ).split(' '),
);
const KS_SECTIONS = new Set([
  '%pre',
  '%pre-install',
  '%post',
  '%packages',
  '%onerror',
  '%traceback',
  '%addon',
  '%anaconda',
  '%certificate',
]);
const KS_DIRECTIVES = new Set(['%include', '%ksappend']);

/** Unbalanced quotes in a line read the way shlex (posix) reads it, or undefined. */
function unclosedQuote(line: string): string | undefined {
  let q: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (q === "'") {
      if (c === "'") q = undefined;
    } else if (q === '"') {
      if (c === '\\') i++;
      else if (c === '"') q = undefined;
    } else if (c === '\\') i++;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return undefined;
    else if (c === "'" || c === '"') q = c;
  }
  return q;
}

export function checkKickstart(text: string): string[] {
  const problems: string[] = [];
  const lines = text.split('\n');
  let open: { name: string; line: number } | undefined;
  let commands = 0;
  lines.forEach((raw, i) => {
    const n = i + 1;
    const line = raw.trim();
    if (raw.includes('\r')) problems.push(`line ${n}: has a CR character (CRLF line endings)`);
    const word = line.split(/\s+/)[0] ?? '';
    if (open) {
      if (word === '%end') open = undefined;
      else if (KS_SECTIONS.has(word))
        problems.push(
          `line ${n}: ${word} starts while ${open.name} from line ${open.line} is not closed with %end`,
        );
      return;
    }
    if (line === '' || line.startsWith('#')) return;
    if (word === '%end') problems.push(`line ${n}: %end without an open section`);
    else if (KS_SECTIONS.has(word)) open = { name: word, line: n };
    else if (KS_DIRECTIVES.has(word)) {
      if (line.split(/\s+/).length < 2) problems.push(`line ${n}: ${word} needs a file or URL`);
    } else if (word.startsWith('%')) problems.push(`line ${n}: unknown section ${JSON.stringify(word)}`);
    else if (!KICKSTART_COMMANDS.has(word))
      problems.push(`line ${n}: unknown kickstart command ${JSON.stringify(word.slice(0, 40))}`);
    else {
      commands++;
      const q = unclosedQuote(line);
      if (q) problems.push(`line ${n}: unclosed ${q} quote`);
    }
  });
  if (open) problems.push(`${open.name} on line ${open.line} is not closed with %end`);
  if (!commands && !problems.length) problems.push('no kickstart command at all');
  return problems;
}

/** Types `debconf-set-selections` accepts (and `seen`, a flag). */
export const DEBCONF_TYPES: ReadonlySet<string> = new Set([
  'string',
  'boolean',
  'select',
  'multiselect',
  'note',
  'password',
  'text',
  'title',
  'error',
  'seen',
]);

/** Each non-comment line (after `\` continuations) must be `owner question type value`. */
export function checkPreseed(text: string): string[] {
  const problems: string[] = [];
  const lines = text.split('\n');
  let settings = 0;
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    let line = lines[i]!;
    if (line.includes('\r')) problems.push(`line ${n}: has a CR character (CRLF line endings)`);
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i];
    if (/^\s*$/.test(line) || /^\s*#/.test(line)) continue;
    const m = /^\s*(\S+)\s+(\S+)\s+(\S+)(?:\s(.*))?$/.exec(line);
    if (!m) {
      problems.push(
        `line ${n}: expected "owner question type value", got ${JSON.stringify(line.slice(0, 60))}`,
      );
      continue;
    }
    const [, , question, type, value = ''] = m as unknown as [string, string, string, string, string?];
    if (!DEBCONF_TYPES.has(type))
      problems.push(
        `line ${n}: unknown type ${JSON.stringify(type)} for ${question}; expected one of ${[...DEBCONF_TYPES].join(', ')}`,
      );
    else if (!question.includes('/'))
      problems.push(`line ${n}: question ${JSON.stringify(question)} is not of the form template/name`);
    else if ((type === 'boolean' || type === 'seen') && !/^(true|false)$/.test(value.trim()))
      problems.push(
        `line ${n}: ${question} is ${type} but its value ${JSON.stringify(value)} is not true or false`,
      );
    else settings++;
  }
  if (!settings && !problems.length) problems.push('no debconf setting at all');
  return problems;
}

function isStringList(v: unknown): boolean {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/**
 * The values of a parsed document, or a problem (a string) when they cannot be built: an alias to no
 * anchor, or aliases past yaml's expansion limit, parse fine and fail only here.
 */
function valuesOf(doc: ReturnType<typeof parseDocument>): { value: unknown } | { problem: string } {
  try {
    return { value: doc.toJS() as unknown };
  } catch (err) {
    return { problem: `YAML: ${(err as Error).message.split('\n')[0]}` };
  }
}

/** `#cloud-config` YAML; with an `autoinstall` key, Subiquity's autoinstall shape (version 1). */
export function checkCloudConfig(text: string): string[] {
  const problems: string[] = [];
  if (text.split('\n', 1)[0]?.trimEnd() !== '#cloud-config')
    problems.push('line 1: must be exactly "#cloud-config"');
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  for (const e of doc.errors) problems.push(`YAML: ${e.message.split('\n')[0]}`);
  if (doc.errors.length) return problems;
  const built = valuesOf(doc);
  if ('problem' in built) return [...problems, built.problem];
  const root = built.value;
  if (root === null || typeof root !== 'object' || Array.isArray(root)) {
    problems.push('the document is not a YAML mapping');
    return problems;
  }
  const r = root as Record<string, unknown>;
  for (const k of ['hostname', 'fqdn'])
    if (k in r && typeof r[k] !== 'string') problems.push(`${k} must be a string`);
  if ('ssh_authorized_keys' in r && !isStringList(r.ssh_authorized_keys))
    problems.push('ssh_authorized_keys must be a list of strings');
  if ('autoinstall' in r) {
    const a = r.autoinstall as Record<string, unknown> | null;
    if (a === null || typeof a !== 'object' || Array.isArray(a)) {
      problems.push('autoinstall must be a mapping');
      return problems;
    }
    if (a.version !== 1) problems.push(`autoinstall.version must be 1, got ${JSON.stringify(a.version)}`);
    const id = a.identity as Record<string, unknown> | undefined;
    if (id !== undefined) {
      if (typeof id !== 'object' || id === null) problems.push('autoinstall.identity must be a mapping');
      else
        for (const k of ['hostname', 'username', 'password'])
          if (typeof id[k] !== 'string') problems.push(`autoinstall.identity.${k} must be a string`);
    }
    const ssh = a.ssh as Record<string, unknown> | undefined;
    if (ssh !== undefined && (ssh === null || typeof ssh !== 'object'))
      problems.push('autoinstall.ssh must be a mapping');
    else if (ssh && 'authorized-keys' in ssh && !isStringList(ssh['authorized-keys']))
      problems.push('autoinstall.ssh.authorized-keys must be a list of strings');
    for (const k of ['early-commands', 'late-commands', 'error-commands']) {
      const cmds = a[k];
      if (cmds === undefined) continue;
      if (!Array.isArray(cmds) || !cmds.every((c) => typeof c === 'string' || isStringList(c)))
        problems.push(`autoinstall.${k} must be a list of commands (strings or lists of strings)`);
    }
  }
  return problems;
}

/** NoCloud meta-data: a YAML mapping with a string instance-id. */
export function checkMetaData(text: string): string[] {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) return doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`);
  const built = valuesOf(doc);
  if ('problem' in built) return [built.problem];
  const r = built.value as Record<string, unknown> | null;
  if (!r || typeof r !== 'object' || typeof r['instance-id'] !== 'string')
    return ['meta-data must be a mapping with a string instance-id'];
  return [];
}
