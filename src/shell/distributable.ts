/**
 * Remote-shell distributables: how Strata delivers anything to a node from state 4 up. A distributable is
 * a versioned bundle, a manifest (name, version, the `check`/`apply`/`undo` scripts, the artifacts they
 * need by registry reference and digest, an environment) plus its files. The segment's shell worker runs it
 * over the same pinned SSH as every other command:
 *
 *   1. copy: one `sh -s` whose stdin carries the files (base64 here-documents, so no secret is ever on a
 *      command line) and fetches every artifact on the node from the site's local registry with
 *      src/registry/fetch.sh, which refuses bytes whose SHA-256 is not the manifest's digest. The bundle
 *      lands in /var/lib/strata/dist/NAME/VERSION-DIGEST, marked complete last; a complete copy of the same
 *      digest is not copied again, and older copies of the bundle are removed (they may hold old keys);
 *   2. `check`; when it passes nothing else runs (the second run of a bundle changes nothing);
 *   3. otherwise `apply`, then `check` again: a check that still fails after apply is a FAILED run.
 *
 * `undo` copies the bundle and runs its `undo` script, then removes the bundle directory. Every phase has
 * a timeout (a hung script is ended and reported with its last output), its exit status and duration are
 * recorded, and its output can be streamed onto the node's timeline. Connections that drop (a rebooting
 * node) are retried with backoff by the SSH runner, so scripts must be idempotent, as steps are.
 *
 * Why a shell here-document and not scp/sftp or a tar: it needs nothing on the node but `sh` and `base64`
 * (an installer environment has only busybox), it is one connection, and the runner's retry, timeout and
 * concurrency rules apply to it unchanged.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SshTarget } from './protocol.ts';
import type { RunOptions, SshRunner } from './ssh.ts';

export interface ArtifactSpec {
  /** File name under the bundle's `artifacts/` directory (what the scripts use). */
  name: string;
  /** Registry reference it came from, `NAME:VERSION` (for people; the digest is what is checked). */
  ref: string;
  /** `sha256:<64 hex>`: the node refuses the file unless its bytes have this digest. */
  digest: string;
}

export interface DistributableManifest {
  name: string;
  version: string;
  /** File names of the bundle's scripts. `check` and `apply` are needed to apply, `undo` to undo. */
  scripts: { check?: string; apply?: string; undo?: string };
  artifacts?: ArtifactSpec[];
  /** Exported to every script, next to STRATA_DIST_DIR, STRATA_ARTIFACTS and STRATA_REGISTRY. */
  env?: Record<string, string>;
}

/** One file of the bundle (the overlay's rendered files have this shape). */
export interface BundleFile {
  name: string;
  content: string;
  mode: number;
  /** Holds a private key: never logged, never put on a timeline. */
  secret?: boolean;
}

export interface Distributable {
  manifest: DistributableManifest;
  files: BundleFile[];
}

export type DistributableOp = 'apply' | 'undo';

export interface DistributableRequest extends SshTarget {
  bundle: Distributable;
  op: DistributableOp;
  /** The site's local registry as the node reaches it (`http://10.0.0.1:7421/registry`). */
  registryUrl?: string;
  /** Per phase (copy, check, apply, undo). Default 120 s. */
  timeoutMs?: number;
  stream?: { node: string; step: string };
}

export type Phase = 'copy' | 'check' | 'apply' | 'recheck' | 'undo';

export interface PhaseResult {
  phase: Phase;
  code: number;
  durationMs: number;
  stdout: string;
  stderr: string;
  attempts?: number;
  timedOut?: boolean;
  error?: string;
}

export interface DistributableResult {
  /** `unchanged`: the first check passed, apply did not run. */
  outcome: 'unchanged' | 'applied' | 'undone' | 'failed';
  digest: string;
  dir: string;
  phases: PhaseResult[];
  /** Why it failed, with the failing phase's last output. */
  error?: string;
}

/** Where bundles live on a node. */
export const DIST_ROOT = '/var/lib/strata/dist';
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

/** What is wrong with a bundle, each naming the field and the fix; empty when it is fine. */
export function bundleProblems(d: Distributable, op: DistributableOp = 'apply'): string[] {
  const m = d.manifest;
  const out: string[] = [];
  if (!SAFE_NAME.test(m.name ?? ''))
    out.push(`manifest.name: "${m.name}" must be letters, digits, . _ + - (at most 128)`);
  if (!SAFE_NAME.test(m.version ?? ''))
    out.push(`manifest.version: "${m.version}" must be letters, digits, . _ + - (at most 128)`);
  const names = new Set<string>();
  for (const [i, f] of d.files.entries()) {
    if (!SAFE_NAME.test(f.name) || f.name.startsWith('.strata'))
      out.push(`files[${i}].name: "${f.name}" must be a plain file name (no "/", not .strata*)`);
    if (names.has(f.name)) out.push(`files[${i}].name: "${f.name}" appears twice`);
    names.add(f.name);
  }
  const need = op === 'apply' ? (['check', 'apply'] as const) : (['undo'] as const);
  for (const s of need) {
    const f = m.scripts?.[s];
    if (!f) out.push(`manifest.scripts.${s}: missing; name the bundle file that runs "${s}"`);
    else if (!names.has(f)) out.push(`manifest.scripts.${s}: "${f}" is not one of the bundle's files`);
  }
  for (const [i, a] of (m.artifacts ?? []).entries()) {
    if (!SAFE_NAME.test(a.name)) out.push(`manifest.artifacts[${i}].name: "${a.name}" must be a file name`);
    if (!DIGEST.test(a.digest))
      out.push(`manifest.artifacts[${i}].digest: "${a.digest}" must be sha256: and 64 lower-case hex digits`);
  }
  for (const k of Object.keys(m.env ?? {}))
    if (!ENV_NAME.test(k)) out.push(`manifest.env.${k}: must be an upper-case shell variable name`);
  return out;
}

/** sha256 over the manifest and the files: the bundle's identity on the node. */
export function bundleDigest(d: Distributable): string {
  const h = createHash('sha256');
  const m = d.manifest;
  h.update(
    JSON.stringify([m.name, m.version, m.scripts, m.artifacts ?? [], Object.entries(m.env ?? {}).sort()]),
  );
  for (const f of [...d.files].sort((a, b) => a.name.localeCompare(b.name)))
    h.update(`\0${f.name}\0${f.mode}\0${f.content}`);
  return h.digest('hex');
}

export function bundleDir(d: Distributable): string {
  return `${DIST_ROOT}/${d.manifest.name}/${d.manifest.version}-${bundleDigest(d).slice(0, 16)}`;
}

const q = (v: string) => `'${v.replaceAll("'", "'\\''")}'`;
let fetchScript: string | undefined;
const FETCH = () =>
  (fetchScript ??= readFileSync(join(import.meta.dirname, '..', 'registry', 'fetch.sh'), 'utf8'));

function hereDoc(target: string, content: string, mode: number): string {
  const b64 = (
    Buffer.from(content)
      .toString('base64')
      .match(/.{1,76}/g) ?? []
  ).join('\n');
  return `base64 -d > ${target} <<'STRATA_EOF'\n${b64}\nSTRATA_EOF\nchmod ${mode.toString(8)} ${target}\n`;
}

/**
 * The `sh -s` input that puts a bundle on the node: files, env, fetch helper, verified artifacts, then the
 * `.complete` mark. A complete copy of the same digest is left as it is.
 */
export function copyScript(d: Distributable, registryUrl: string | undefined): string {
  const dir = bundleDir(d);
  const m = d.manifest;
  const env = {
    ...(m.env ?? {}),
    STRATA_DIST_NAME: m.name,
    STRATA_DIST_VERSION: m.version,
    STRATA_DIST_DIR: dir,
    STRATA_ARTIFACTS: `${dir}/artifacts`,
    STRATA_REGISTRY: registryUrl ?? '',
  };
  const lines = [
    'set -eu',
    'umask 077',
    `d=${q(dir)}`,
    '[ -f "$d/.complete" ] && { echo "bundle $d is in place"; exit 0; }',
    'rm -rf "$d.part"',
    'mkdir -p "$d.part/artifacts"',
  ];
  let body = `${lines.join('\n')}\n`;
  for (const f of d.files) body += hereDoc(`"$d.part/"${q(f.name)}`, f.content, f.mode);
  body += hereDoc('"$d.part/.strata-fetch.sh"', FETCH(), 0o755);
  body += hereDoc(
    '"$d.part/.strata-env"',
    Object.entries(env)
      .map(([k, v]) => `${k}=${q(v)}`)
      .join('\n') + '\n',
    0o600,
  );
  const arts = m.artifacts ?? [];
  if (arts.length && !registryUrl)
    body += 'echo "the bundle needs artifacts but no registry address was given" >&2; exit 3\n';
  for (const a of arts)
    body += `"$d.part/.strata-fetch.sh" ${q(registryUrl ?? '')} ${q(a.digest)} "$d.part/artifacts/"${q(a.name)}\n`;
  // Older versions of the same bundle go: they may hold keys that are no longer current.
  body +=
    'rm -rf "$d"\nmv "$d.part" "$d"\n: > "$d/.complete"\n' +
    'for o in "$(dirname "$d")"/*; do [ "$o" = "$d" ] || rm -rf "$o"; done\necho "bundle copied to $d"\n';
  return body;
}

/** Runs one of the bundle's scripts in its directory with its environment exported. */
export function scriptCommand(d: Distributable, script: string): string {
  const dir = q(bundleDir(d));
  return `cd ${dir} && set -a && . ./.strata-env && set +a && exec ./${q(script)}`;
}

/** The last lines of a phase's output, for an error message. */
function tail(r: PhaseResult): string {
  const text = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-5).join(' | ');
  return text ? `: ${text.slice(-600)}` : '';
}

export interface RunHooks {
  onOutput?: RunOptions['onOutput'];
  onPhase?(r: PhaseResult): void;
}

/**
 * The worker's side: runs a bundle on one node through the runner (its concurrency limit, timeouts and
 * retries). Never throws for what the node did: every outcome is in the result.
 */
export async function runDistributable(
  runner: SshRunner,
  req: DistributableRequest,
  hooks: RunHooks = {},
): Promise<DistributableResult> {
  const { bundle: d, op, registryUrl, timeoutMs = 120_000, stream: _s, ...target } = req;
  const digest = bundleDigest(d);
  const dir = bundleDir(d);
  const phases: PhaseResult[] = [];
  const label = `${d.manifest.name}@${d.manifest.version}`;
  const problems = bundleProblems(d, op);
  if (problems.length)
    return { outcome: 'failed', digest, dir, phases, error: `${label}: ${problems.join('; ')}` };

  const phase = async (name: Phase, command: string, input?: string): Promise<PhaseResult> => {
    const started = performance.now();
    const r = await runner.run(target, command, {
      timeoutMs,
      ...(input !== undefined ? { input } : {}),
      ...(hooks.onOutput ? { onOutput: hooks.onOutput } : {}),
    });
    const p: PhaseResult = {
      phase: name,
      code: r.code,
      durationMs: Math.round(performance.now() - started),
      stdout: r.stdout,
      stderr: r.stderr,
      ...(r.attempts ? { attempts: r.attempts } : {}),
      ...(r.timedOut ? { timedOut: true } : {}),
      ...(r.error ? { error: r.error } : {}),
    };
    phases.push(p);
    hooks.onPhase?.(p);
    return p;
  };
  const failed = (p: PhaseResult, what: string): DistributableResult => ({
    outcome: 'failed',
    digest,
    dir,
    phases,
    error: `${label}: ${what} (exit ${p.code}${p.timedOut ? ', timed out' : ''})${p.error && p.code === 255 ? `: ${p.error}` : tail(p)}`,
  });

  const copy = await phase('copy', 'sh -s', copyScript(d, registryUrl));
  if (copy.code !== 0)
    return failed(
      copy,
      copy.code === 4 ? 'an artifact was refused: its digest does not match' : 'copy failed',
    );

  if (op === 'undo') {
    const u = await phase('undo', `${scriptCommand(d, d.manifest.scripts.undo!)} && rm -rf ${q(dir)}`);
    if (u.code !== 0) return failed(u, 'undo failed');
    return { outcome: 'undone', digest, dir, phases };
  }
  const first = await phase('check', scriptCommand(d, d.manifest.scripts.check!));
  if (first.code === 0) return { outcome: 'unchanged', digest, dir, phases };
  if (first.code === 255 || first.timedOut) return failed(first, 'check could not run');
  const apply = await phase('apply', scriptCommand(d, d.manifest.scripts.apply!));
  if (apply.code !== 0) return failed(apply, 'apply failed');
  const again = await phase('recheck', scriptCommand(d, d.manifest.scripts.check!));
  if (again.code !== 0) return failed(again, 'check still fails after apply');
  return { outcome: 'applied', digest, dir, phases };
}
