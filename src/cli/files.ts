/**
 * The files behind `-f`: a file, `-` for standard input, or a directory of `.yaml`/`.yml`/`.json` files
 * (with `-R`, its subdirectories too), in name order like kubectl, so `apply -f DIR` is repeatable.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CliError } from './errors.ts';

export interface ManifestFile {
  name: string;
  text: string;
}

const MANIFEST = /\.(ya?ml|json)$/i;

function walk(dir: string, recursive: boolean): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (recursive) out.push(...walk(p, true));
    } else if (MANIFEST.test(e.name)) out.push(p);
  }
  return out;
}

export function readManifestFiles(paths: string[], recursive = false): ManifestFile[] {
  const files: ManifestFile[] = [];
  for (const f of paths) {
    try {
      if (f === '-') {
        files.push({ name: '<stdin>', text: readFileSync(0, 'utf8') });
        continue;
      }
      if (statSync(f).isDirectory()) {
        const found = walk(f, recursive);
        if (!found.length)
          throw new CliError(
            `error: no .yaml, .yml or .json files in ${f}${recursive ? '' : ' (use -R for its subdirectories)'}`,
          );
        for (const p of found) files.push({ name: p, text: readFileSync(p, 'utf8') });
      } else files.push({ name: f, text: readFileSync(f, 'utf8') });
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(
        `error: cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
  }
  return files;
}

/** kind/name of every document in the files (enough for `delete -f`; the server validates the rest). */
export function manifestObjects(files: ManifestFile[]): { kind: string; name: string; file: string }[] {
  const out: { kind: string; name: string; file: string }[] = [];
  for (const f of files) {
    for (const [i, d] of parseAllDocuments(f.text).entries()) {
      if (d.errors.length) throw new CliError(`error: ${f.name}: document ${i + 1}: ${d.errors[0]!.message}`);
      const o = d.toJS() as { kind?: unknown; metadata?: { name?: unknown } } | null;
      if (o === null || o === undefined) continue;
      if (typeof o.kind !== 'string' || typeof o.metadata?.name !== 'string')
        throw new CliError(`error: ${f.name}: document ${i + 1} has no kind and metadata.name`);
      out.push({ kind: o.kind, name: o.metadata.name, file: f.name });
    }
  }
  return out;
}
