/**
 * Answer files for the distributions' own installers (state 3 → 4 through Anaconda, debian-installer or
 * Subiquity instead of the Strata installer): a kickstart (Fedora/RHEL), a preseed (Debian) or a
 * cloud-init autoinstall (Ubuntu), rendered from the node's Profile with per-node values. Pure: input in,
 * text out, no I/O, so every rule is unit-tested; `serve.ts` is the install manager's glue.
 *
 * The order is fixed: check every input value (an error names the field and what is expected), render
 * the Profile's `answerTemplate` or the built-in template with strict variables (a missing one is an
 * error naming it, e.g. `vars.timezone`), then check the result's syntax for its family (syntax.ts)
 * before anything is served. All failures are `AnswerFileError` with a `.field`.
 */

import { createSandbox, TemplateFailure } from '../../core/template.ts';
import { installPaths } from '../protocol.ts';
import { checkCloudConfig, checkKickstart, checkMetaData, checkPreseed } from './syntax.ts';
import { type AnswerKind, BUILTIN_ANSWER_TEMPLATES, CLOUD_INIT_META_DATA } from './templates.ts';
import {
  AnswerFileError,
  checkHostname,
  checkHttpUrl,
  checkIp,
  checkMac,
  checkNodeName,
  checkScript,
  checkSshKey,
  checkWord,
  printfArg,
  shellQuote,
  singleLine,
  writeFileCommand,
} from './values.ts';

export { checkCloudConfig, checkKickstart, checkMetaData, checkPreseed } from './syntax.ts';
export { type AnswerKind, BUILTIN_ANSWER_TEMPLATES } from './templates.ts';
export { AnswerFileError } from './values.ts';

export const ANSWER_KINDS: readonly AnswerKind[] = ['kickstart', 'preseed', 'cloud-init'];

export type OsFamily = 'debian' | 'ubuntu' | 'fedora' | 'rhel';

/** Which OS families each installer serves. */
export const KIND_FAMILIES: Readonly<Record<AnswerKind, readonly OsFamily[]>> = {
  kickstart: ['fedora', 'rhel'],
  preseed: ['debian', 'ubuntu'],
  'cloud-init': ['ubuntu'],
};

export interface AnswerInput {
  node: { name: string; hostname: string; mac: string; ip?: string };
  profile: {
    os: { family: OsFamily; release: string; mirror?: string };
    /** Free single-line values, `vars.<name>` in templates. */
    vars: Record<string, string>;
    /** OpenSSH public key lines for root. */
    sshAuthorizedKeys: string[];
    /** Run in the installer before installing; '' for none. */
    preRebootScript: string;
    /** Run in the target system at the end of the install (before the report to Strata); '' for none. */
    postRebootScript: string;
    /** Liquid source replacing the built-in template for the kind. */
    answerTemplate?: string;
  };
  strata: {
    /** Where the node reaches Strata, e.g. http://10.213.0.1:8080 */
    baseUrl: string;
    /** Where the installed system reports (`…/install/<node>/installed`); default baseUrl. */
    reportUrl?: string;
    /** Bearer token for that report, valid for this node only. */
    installedToken: string;
  };
}

/**
 * What templates see. `mirror.url` is `profile.os.mirror` or `<baseUrl>/mirror/<family>/<release>`
 * (Strata's own); `authorizedKeys` is the keys as an authorized_keys file; `scripts.finish` runs
 * /root/strata-post-reboot.sh and then POSTs the report to `strata.installedUrl`.
 * Filters beyond Liquid's: `shell_quote`, `printf_arg`, `write_file: PATH`.
 */
export interface AnswerContext {
  node: { name: string; hostname: string; mac: string; ip?: string };
  os: { family: OsFamily; release: string };
  mirror: { url: string; protocol: 'http' | 'https'; host: string; directory: string };
  vars: Record<string, string>;
  sshAuthorizedKeys: string[];
  authorizedKeys: string;
  scripts: { preReboot: string; postReboot: string; finish: string };
  strata: { baseUrl: string; reportUrl: string; installedUrl: string; installedToken: string };
  instanceId: string;
}

function trimSlash(u: string): string {
  return u.replace(/\/+$/, '');
}

/** The script that ends every install: the post-reboot script, then the InstalledReport to Strata. */
function finishScript(installedUrl: string, token: string): string {
  return `#!/bin/sh
# Strata: run the profile's post-reboot script (if any), then report this system to Strata.
rc=0
if [ -s /root/strata-post-reboot.sh ]; then
  chmod 700 /root/strata-post-reboot.sh
  case "$(head -c 2 /root/strata-post-reboot.sh)" in
    '#!') /root/strata-post-reboot.sh ;;
    *) sh /root/strata-post-reboot.sh ;;
  esac
  rc=$?
  # On disk before Strata hears "installed": a power cycle right after must not find its files empty.
  sync
fi
addrs=$(ip -o -4 addr show scope global 2>/dev/null | awk '{printf "%s\\"%s\\"", (n++ ? "," : ""), $4}')
body=$(printf '{"hostname":"%s","kernel":"%s","bootId":"%s","machineId":"%s","postRebootExit":%d,"addresses":[%s]}' \\
  "$(hostname)" "$(uname -r)" "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" \\
  "$(cat /etc/machine-id 2>/dev/null)" "$rc" "$addrs")
curl -fsS --retry 5 --retry-delay 3 -m 30 -X POST -H ${shellQuote(`Authorization: Bearer ${token}`)} \\
  -H 'Content-Type: application/json' --data "$body" ${shellQuote(installedUrl)} ||
  echo "strata: could not report to ${installedUrl}" >&2
exit 0
`;
}

/** Checks every input value and builds the template context; throws AnswerFileError naming the field. */
export function answerContext(kind: AnswerKind, input: AnswerInput): AnswerContext {
  if (!ANSWER_KINDS.includes(kind))
    throw new AnswerFileError('kind', `${JSON.stringify(kind)} is not one of ${ANSWER_KINDS.join(', ')}`);
  const { node, profile, strata } = input;
  const name = checkNodeName(node?.name, 'node.name');
  const hostname = checkHostname(node.hostname, 'node.hostname');
  const mac = checkMac(node.mac, 'node.mac');
  const ip = node.ip === undefined ? undefined : checkIp(node.ip, 'node.ip');
  const family = profile?.os?.family;
  if (!KIND_FAMILIES[kind].includes(family))
    throw new AnswerFileError(
      'profile.os.family',
      `${JSON.stringify(family)} is not installed with ${kind}; expected ${KIND_FAMILIES[kind].join(' or ')}`,
    );
  const release = checkWord(
    profile.os.release,
    'profile.os.release',
    'a release name or number like bookworm, noble or 40',
    /^[A-Za-z0-9._-]+$/,
  );
  const baseUrl = trimSlash(checkHttpUrl(strata?.baseUrl, 'strata.baseUrl').href);
  const reportUrl = trimSlash(
    strata.reportUrl === undefined ? baseUrl : checkHttpUrl(strata.reportUrl, 'strata.reportUrl').href,
  );
  const installedToken = checkWord(strata.installedToken, 'strata.installedToken', 'a token (base64url)');
  const mirrorRaw = profile.os.mirror ? profile.os.mirror : `${baseUrl}/mirror/${family}/${release}`;
  const mirror = checkHttpUrl(mirrorRaw, 'profile.os.mirror');
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(profile.vars ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(k))
      throw new AnswerFileError(
        `vars.${k.slice(0, 40)}`,
        'is not a variable name: expected [A-Za-z_][A-Za-z0-9_-]*',
      );
    vars[k] = singleLine(v, `vars.${k}`);
  }
  if (!Array.isArray(profile.sshAuthorizedKeys))
    throw new AnswerFileError('profile.sshAuthorizedKeys', 'expected a list of OpenSSH public key lines');
  const keys = profile.sshAuthorizedKeys.map((k, i) => checkSshKey(k, `profile.sshAuthorizedKeys[${i}]`));
  const installedUrl = `${reportUrl}${installPaths.installed(name)}`;
  return {
    node: { name, hostname, mac, ...(ip ? { ip } : {}) },
    os: { family, release },
    mirror: {
      url: mirror.href,
      protocol: mirror.protocol === 'https:' ? 'https' : 'http',
      host: mirror.host,
      directory: trimSlash(mirror.pathname) || '/',
    },
    vars,
    sshAuthorizedKeys: keys,
    authorizedKeys: keys.map((k) => `${k}\n`).join(''),
    scripts: {
      preReboot: checkScript(profile.preRebootScript ?? '', 'profile.preRebootScript'),
      postReboot: checkScript(profile.postRebootScript ?? '', 'profile.postRebootScript'),
      finish: finishScript(installedUrl, installedToken),
    },
    strata: { baseUrl, reportUrl, installedUrl, installedToken },
    instanceId: `strata-${name}`,
  };
}

// --- rendering ----------------------------------------------------------------------------------

function escapeOutput(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string')
    throw new AnswerFileError(
      'template',
      'an output is not a string, number or boolean (use | json for lists)',
    );
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(value))
    throw new AnswerFileError(
      'template',
      `output ${JSON.stringify(value.slice(0, 60))} has a control character`,
    );
  return value;
}

const str = (v: unknown) => (v === null || v === undefined ? '' : String(v));
const sandbox = createSandbox({
  outputEscape: escapeOutput,
  filters: {
    shell_quote: (v) => shellQuote(str(v)),
    printf_arg: (v) => printfArg(str(v)),
    write_file: (v, path) => writeFileCommand(str(v), str(path)),
  },
});

const SYNTAX: Record<AnswerKind, (text: string) => string[]> = {
  kickstart: checkKickstart,
  preseed: checkPreseed,
  'cloud-init': checkCloudConfig,
};

/** Kickstart reads a line starting with `%` inside %pre/%post as a section keyword (`%end` closes it). */
function checkKickstartScripts(ctx: AnswerContext): void {
  for (const [field, script] of [
    ['profile.preRebootScript', ctx.scripts.preReboot],
    ['profile.postRebootScript', ctx.scripts.postReboot],
  ] as const) {
    const i = script.split('\n').findIndex((l) => /^\s*%/.test(l));
    if (i >= 0)
      throw new AnswerFileError(
        field,
        `line ${i + 1} starts with "%", which kickstart reads as a section keyword (like %end); expected shell lines not starting with %`,
      );
  }
}

function renderTemplate(source: string, field: string, ctx: AnswerContext): string {
  try {
    return sandbox.render(sandbox.parse(source), { ...ctx }, (e) => e instanceof AnswerFileError);
  } catch (err) {
    if (err instanceof AnswerFileError) throw err;
    if (err instanceof TemplateFailure && err.variable)
      throw new AnswerFileError(
        err.variable,
        `the ${field} uses ${err.variable}, which is not set; expected it in the profile (vars.<name> for profile.vars) or a | default: value`,
      );
    throw new AnswerFileError(field, (err as Error).message);
  }
}

/**
 * Renders and checks the answer file of `kind` for one node. Throws AnswerFileError whose `.field` is the
 * input path (`node.hostname`, `vars.timezone`, `profile.sshAuthorizedKeys[0]`, `profile.answerTemplate`).
 */
export function renderAnswerFile(kind: AnswerKind, input: AnswerInput): string {
  const ctx = answerContext(kind, input);
  if (kind === 'kickstart') checkKickstartScripts(ctx);
  const custom = input.profile.answerTemplate;
  const field = custom !== undefined ? 'profile.answerTemplate' : `built-in ${kind} template`;
  const text = renderTemplate(custom ?? BUILTIN_ANSWER_TEMPLATES[kind], field, ctx);
  const problems = SYNTAX[kind](text);
  if (problems.length)
    throw new AnswerFileError(
      custom !== undefined ? 'profile.answerTemplate' : 'template',
      `the rendered ${kind} file fails its syntax check: ${problems.slice(0, 5).join('; ')}`,
    );
  return text;
}

/** NoCloud `meta-data` for the cloud-init kind (instance-id, local-hostname). */
export function renderCloudInitMetaData(input: AnswerInput): string {
  const ctx = answerContext('cloud-init', input);
  const text = renderTemplate(CLOUD_INIT_META_DATA, 'built-in meta-data template', ctx);
  const problems = checkMetaData(text);
  if (problems.length) throw new AnswerFileError('template', `meta-data: ${problems.join('; ')}`);
  return text;
}

/** Parses a custom answer template without rendering it: for rejecting bad profiles when applied. */
export function validateAnswerTemplate(source: string): void {
  try {
    sandbox.parse(source);
  } catch (err) {
    throw new AnswerFileError('profile.answerTemplate', (err as Error).message);
  }
}
