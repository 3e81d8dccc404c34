/**
 * The kind registry. A kind is a schema for its spec plus how to print it; the store, API, CLI and
 * OpenAPI document are generic over it, so adding a kind is one `registerKind` call in the layer that owns it.
 */
import type { z } from 'zod';
import type { FieldIssue } from './errors.ts';
import type { Resource } from './types.ts';

/** A column of `strata get`, typed by the kind's resource (its spec and status), so it needs no casts. */
export interface Column<R extends Resource<object, object> = Resource> {
  header: string;
  /** Shown only with `-o wide`. */
  wide?: boolean;
  value(r: R): string | number | undefined;
}

export interface KindDef<R extends Resource<object, object> = Resource> {
  kind: string;
  plural: string;
  /** Other names accepted on the command line (`node`, `no`). */
  aliases: string[];
  description: string;
  spec: z.ZodType;
  columns: Column<R>[];
  /** Finalizers put on every new object: its owner must undo its work before the object goes away. */
  finalizers?: string[];
  /** Checks that span fields or resources (e.g. a pool inside its subnet). */
  validate?: (r: Resource, path: (p: string) => FieldIssue) => FieldIssue[];
}

const kinds = new Map<string, KindDef>();
const byAlias = new Map<string, KindDef>();

/** Registers a kind; `R` (its Resource type) types the columns. */
export function registerKind<R extends Resource<object, object> = Resource>(typed: KindDef<R>): KindDef {
  // The registry holds every kind; a kind's columns are only ever given that kind's objects.
  const def = typed as unknown as KindDef;
  kinds.set(def.kind, def);
  for (const a of [def.kind, def.plural, ...def.aliases]) byAlias.set(a.toLowerCase(), def);
  return def;
}

export function getKind(kind: string): KindDef | undefined {
  return kinds.get(kind);
}

/** Resolves `nodes`, `node`, `Node`, `no` to the kind. */
export function resolveKind(nameOrAlias: string): KindDef | undefined {
  return byAlias.get(nameOrAlias.toLowerCase());
}

export function allKinds(): KindDef[] {
  return [...kinds.values()];
}
