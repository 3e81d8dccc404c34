/**
 * iPXE boot scripts, rendered per node from Liquid templates: the pure half of the HTTP boot step
 * (state 3 → 4). No I/O: input in, script text out, so every boot decision can be unit-tested.
 *
 * Shaped by what iPXE does with the text. An iPXE script is executed line by line; on a line, settings
 * expansion (`${...}`) happens first, then the line is split on whitespace, and the tokens `||`, `&&`,
 * `;` chain further commands while a token starting with `#` ends it. A value substituted from node or
 * profile data that carried a newline, `${`, or one of those tokens could therefore run commands of its
 * own. So: every input string is checked before rendering (the error names the offending field), every
 * `{{ output }}` is checked again after filters (Liquid's `outputEscape`, which `| raw` cannot bypass
 * here), URLs may not contain whitespace, and a MAC must look like one. Templates render in the one
 * sandbox shared with the answer files (src/core/template.ts).
 *
 * Firmware matters for two things: an EFI kernel wants `initrd=NAME` on its command line to find the
 * initrd iPXE loaded (seen with the 2019 iPXE in the lab), and "boot from local disk" is `sanboot` of
 * drive 0x80 under BIOS but `exit` under UEFI (the firmware then tries its next boot entry).
 */
import { createSandbox, type Template, TemplateFailure } from '../core/template.ts';
import { BOOT_SCRIPT_PATH, bootScriptPath, LOCAL_BOOT_EFI } from './paths.ts';

export { BOOT_SCRIPT_PATH, LOCAL_BOOT_EFI } from './paths.ts';

export type BootMode = 'install' | 'local' | 'discovery' | 'hold';
export type Firmware = 'bios' | 'uefi' | 'unknown';

export interface BootNode {
  name: string;
  mac: string;
  /**
   * Client architecture: the DHCP option 93 number (0 = BIOS, 6/7/9/10/11/… = UEFI) or a word
   * (`bios`, `pcbios`, `efi`, `uefi`, `x86_64-efi`, `arm64-efi`, …).
   */
  arch: string | number;
  /** Extra fields are available to templates as `node.<field>`. */
  [field: string]: unknown;
}

export interface BootProfile {
  /** Absolute http(s) URL, or a path relative to the artifacts URL. */
  kernel: string;
  /** Same forms as `kernel`, loaded in order. */
  initrd: string[];
  /** Kernel command line (without `initrd=`: added for UEFI). */
  cmdline: string;
  /** Liquid source replacing the built-in install template. */
  template?: string;
}

export interface BootScriptInput {
  node: BootNode;
  /** Required for `install`. */
  profile?: BootProfile;
  mode: BootMode;
  /** Where this server is reached by the node, e.g. `http://192.168.50.1:8080` (no trailing slash needed). */
  baseUrl: string;
  /** Base for relative artifact paths; default `<baseUrl>/artifacts`. */
  artifactsUrl?: string;
  /** Free variables for templates (`vars.<name>`). */
  vars?: Record<string, unknown>;
  /** Shown by `discovery`/`hold` scripts. */
  message?: string;
  /** Wait before a `discovery`/`hold`/failed-install script asks again; default 10 (discovery/install), 30 (hold). */
  retrySeconds?: number;
}

export interface ErrorScriptInput {
  message: string;
  baseUrl: string;
  /** Known MAC of the node; when absent iPXE fills in `${netX/mac}` itself. */
  mac?: string;
  retrySeconds?: number;
}

/** A template or an input value that cannot be rendered safely; `field` names what was wrong. */
export class IpxeScriptError extends Error {
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super(message);
    this.name = 'IpxeScriptError';
    this.field = field;
  }
}

const BUILTIN: Record<'install' | 'local' | 'discovery' | 'hold' | 'error', string> = {
  install: `#!ipxe
echo Strata: installing {{ node.name }} ({{ node.mac }})
imgfree
kernel {{ kernel.url }} {{ cmdline }} || goto retry
{% for i in initrds %}initrd --name {{ i.name }} {{ i.url }} || goto retry
{% endfor %}boot || goto retry
:retry
echo Strata: boot of {{ node.name }} failed, asking again in {{ retrySeconds }} seconds
sleep {{ retrySeconds }}
chain --replace --autofree {{ scriptUrl }} || goto retry
`,
  local: `#!ipxe
echo Strata: {{ node.name }} boots from its local disk
{% if firmware == 'bios' %}sanboot --no-describe --drive 0x80 || exit
{% elsif firmware == 'uefi' %}chain --autofree {{ localEfiUrl }} || exit
{% else %}iseq \${platform} efi && goto efi || sanboot --no-describe --drive 0x80 || exit
:efi
chain --autofree {{ localEfiUrl }} || exit
{% endif %}`,
  discovery: `#!ipxe
:retry
echo Strata: {{ node.mac }} is known for discovery only; {{ message }}
sleep {{ retrySeconds }}
chain --replace --autofree {{ scriptUrl }} || goto retry
`,
  hold: `#!ipxe
:retry
echo Strata: {{ node.name }} ({{ node.mac }}) is on hold; {{ message }}
sleep {{ retrySeconds }}
chain --replace --autofree {{ scriptUrl }} || goto retry
`,
  error: `#!ipxe
:retry
echo Strata: {{ message }}
echo Strata: retrying in {{ retrySeconds }} seconds
sleep {{ retrySeconds }}
chain --replace --autofree {{ scriptUrl }}{% if anyMac %}\${netX/mac}{% endif %} || goto retry
`,
};

/** The built-in template sources, for documentation and as starting points for profile templates. */
export const BUILTIN_TEMPLATES: Readonly<Record<keyof typeof BUILTIN, string>> = BUILTIN;

// --- value checks -------------------------------------------------------------------------------

const CONTROL = /[\u0000-\u001f\u007f]/;
const TERMINATOR_TOKEN = /(^|\s)(\|\||&&|;|#\S*)(?=\s|$)/;
const WHITESPACE = /\s/;
const MAC = /^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i;
const NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** Why a string may not be substituted into an iPXE script, or undefined if it may. */
export function unsafeReason(value: string): string | undefined {
  if (CONTROL.test(value)) return 'contains a newline or control character';
  if (value.includes('${')) return 'contains "${" (iPXE settings expansion)';
  const t = TERMINATOR_TOKEN.exec(value);
  if (t) return `contains "${t[2]}", which iPXE reads as a command separator or comment`;
  if (/^[|&]|[|&]$/.test(value))
    return 'starts or ends with "|" or "&", which could form a command separator';
  return undefined;
}

function check(value: unknown, field: string, depth = 0): void {
  if (typeof value === 'string') {
    const why = unsafeReason(value);
    if (why) throw new IpxeScriptError(`${field} ${why}`, field);
    return;
  }
  if (value === null || typeof value !== 'object' || depth > 8) return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) check(value[i], `${field}[${i}]`, depth + 1);
    return;
  }
  for (const [k, v] of Object.entries(value)) check(v, `${field}.${k}`, depth + 1);
}

function checkUrl(url: string, field: string): string {
  check(url, field);
  if (WHITESPACE.test(url)) throw new IpxeScriptError(`${field} contains whitespace`, field);
  if (!/^(https?|tftp):\/\/[^/]/i.test(url))
    throw new IpxeScriptError(`${field} is not an absolute URL`, field);
  return url;
}

const CANONICAL_MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/** Canonical lower-case colon form of a MAC (`52:54:00:12:34:56`), or undefined if it is not one. */
export function normalizeMac(mac: string): string | undefined {
  // What iPXE sends (`${netX/mac}`) is already canonical: one test, no rebuilding, on every script request.
  if (CANONICAL_MAC.test(mac)) return mac;
  if (!MAC.test(mac)) return undefined;
  const hex = mac.replace(/[:-]/g, '').toLowerCase();
  return hex.match(/../g)!.join(':');
}

/** BIOS or UEFI from DHCP option 93 or a word; `unknown` lets scripts decide at run time. */
export function firmwareOf(arch: string | number): Firmware {
  if (typeof arch === 'number') return arch === 0 ? 'bios' : arch > 0 ? 'uefi' : 'unknown';
  const a = arch.trim().toLowerCase();
  if (/^\d+$/.test(a)) return firmwareOf(Number(a));
  if (a.includes('efi')) return 'uefi';
  if (a === 'bios' || a === 'pcbios' || a === 'legacy' || a === 'x86' || a === 'i386') return 'bios';
  return 'unknown';
}

function trimSlash(u: string): string {
  return u.endsWith('/') ? u.slice(0, -1) : u;
}

/** The URL a node's iPXE chains to for its script. */
export function bootScriptUrl(baseUrl: string, mac?: string): string {
  return `${trimSlash(baseUrl)}${bootScriptPath(mac)}`;
}

function resolveArtifact(ref: string, artifactsUrl: string, field: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) return checkUrl(ref, field);
  const path = ref.replace(/^\/+/, '');
  return checkUrl(`${trimSlash(artifactsUrl)}/${path}`, field);
}

function imageName(url: string, index: number, used: Set<string>): string {
  const path = url.split(/[?#]/)[0] ?? '';
  const base = path.slice(path.lastIndexOf('/') + 1);
  let name = NAME.test(base) ? base : `initrd${index}`;
  if (used.has(name)) name = `${index}-${name}`;
  used.add(name);
  return name;
}

// --- Liquid engine ------------------------------------------------------------------------------

function escapeOutput(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') {
    throw new IpxeScriptError('template output is not a string, number or boolean');
  }
  const why = unsafeReason(value);
  if (why) throw new IpxeScriptError(`template output ${JSON.stringify(value.slice(0, 80))} ${why}`);
  return value;
}

/** The shared sandbox (src/core/template.ts) with iPXE's output check. */
const sandbox = createSandbox({ outputEscape: escapeOutput });

const builtinParsed = new Map<string, Template[]>();
for (const [name, src] of Object.entries(BUILTIN)) builtinParsed.set(name, sandbox.parse(src));

function parseUser(src: string): Template[] {
  try {
    return sandbox.parse(src);
  } catch (err) {
    throw new IpxeScriptError(`profile template ${(err as Error).message}`, 'profile.template');
  }
}

/** Parses a profile template without rendering it: for rejecting bad profiles when they are applied. */
export function validateTemplate(source: string): void {
  parseUser(source);
}

function render(tpl: Template[], ctx: Record<string, unknown>, what: string): string {
  let out: string;
  try {
    out = sandbox.render(tpl, ctx, (e) => e instanceof IpxeScriptError);
  } catch (err) {
    if (err instanceof IpxeScriptError) throw err;
    if (err instanceof TemplateFailure && err.variable)
      throw new IpxeScriptError(`${what}: undefined variable ${err.variable}`, err.variable);
    throw new IpxeScriptError(`${what}: ${(err as Error).message}`);
  }
  if (!out.startsWith('#!ipxe')) throw new IpxeScriptError(`${what} does not start with #!ipxe`);
  return out;
}

// --- public renderers ---------------------------------------------------------------------------

/** Renders the iPXE script for one node and mode. Throws `IpxeScriptError`; does no I/O. */
export function renderBootScript(input: BootScriptInput): string {
  const { node, mode } = input;
  check(node, 'node');
  check(input.vars ?? {}, 'vars');
  if (input.message !== undefined) check(input.message, 'message');
  const mac = normalizeMac(String(node.mac));
  if (!mac)
    throw new IpxeScriptError(`node.mac is not a MAC address: ${JSON.stringify(node.mac)}`, 'node.mac');
  const baseUrl = trimSlash(checkUrl(input.baseUrl, 'baseUrl'));
  const artifactsUrl = checkUrl(input.artifactsUrl ?? `${baseUrl}/artifacts`, 'artifactsUrl');
  const firmware = firmwareOf(node.arch);
  const retrySeconds = input.retrySeconds ?? (mode === 'hold' ? 30 : 10);
  if (!Number.isInteger(retrySeconds) || retrySeconds < 1 || retrySeconds > 86400) {
    throw new IpxeScriptError('retrySeconds must be an integer between 1 and 86400', 'retrySeconds');
  }

  const ctx: Record<string, unknown> = {
    node: { ...node, mac, firmware },
    mode,
    firmware,
    efi: firmware === 'uefi',
    baseUrl,
    artifactsUrl,
    scriptUrl: bootScriptUrl(baseUrl, mac),
    // UEFI has no iPXE way to boot a local disk, and firmware boot entries for a disk that was blank at
    // power-on are unreliable: a small GRUB finds the installed system's grub.cfg on any local disk.
    localEfiUrl: `${artifactsUrl}/${LOCAL_BOOT_EFI}`,
    vars: input.vars ?? {},
    retrySeconds,
    message:
      input.message ?? (mode === 'hold' ? 'waiting to be released' : 'waiting for a profile to be assigned'),
  };

  if (mode === 'install') {
    const profile = input.profile;
    if (!profile) throw new IpxeScriptError('install mode needs a profile', 'profile');
    check(profile.cmdline, 'profile.cmdline');
    const used = new Set<string>();
    const initrds = profile.initrd.map((ref, i) => {
      const url = resolveArtifact(ref, artifactsUrl, `profile.initrd[${i}]`);
      return { url, name: imageName(url, i, used) };
    });
    const kernelUrl = resolveArtifact(profile.kernel, artifactsUrl, 'profile.kernel');
    let cmdline = profile.cmdline.trim();
    // EFI stub kernels find iPXE's initrds by name; BIOS (bzImage) loading does not need it.
    if (firmware !== 'bios' && !/(^|\s)initrd=/.test(cmdline)) {
      cmdline = [cmdline, ...initrds.map((i) => `initrd=${i.name}`)].filter(Boolean).join(' ');
    }
    ctx.kernel = { url: kernelUrl, name: imageName(kernelUrl, -1, new Set()) };
    ctx.initrds = initrds;
    ctx.cmdline = cmdline;
    ctx.profile = { ...profile, template: undefined };
    if (profile.template !== undefined) return render(parseUser(profile.template), ctx, 'profile template');
  }
  return render(builtinParsed.get(mode)!, ctx, `built-in ${mode} template`);
}

/** A script that prints `message` and asks for its script again after a pause. */
export function renderErrorScript(input: ErrorScriptInput): string {
  check(input.message, 'message');
  const baseUrl = trimSlash(checkUrl(input.baseUrl, 'baseUrl'));
  let mac: string | undefined;
  if (input.mac !== undefined) {
    mac = normalizeMac(input.mac);
    if (!mac) throw new IpxeScriptError('mac is not a MAC address', 'mac');
  }
  const retrySeconds = input.retrySeconds ?? 30;
  if (!Number.isInteger(retrySeconds) || retrySeconds < 1 || retrySeconds > 86400) {
    throw new IpxeScriptError('retrySeconds must be an integer between 1 and 86400', 'retrySeconds');
  }
  // Without a known MAC, iPXE substitutes its own (`${netX/mac}` is template text, not a value).
  const ctx = {
    message: input.message,
    retrySeconds,
    scriptUrl: `${baseUrl}${BOOT_SCRIPT_PATH}?mac=${mac ?? ''}`,
    anyMac: mac === undefined,
  };
  return render(builtinParsed.get('error')!, ctx, 'built-in error template');
}
