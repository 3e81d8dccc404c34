/**
 * The one hardened LiquidJS sandbox for every text Strata renders from templates: iPXE scripts
 * (src/ipxe/script.ts) and installer answer files (src/install/answers). One set of rules, so a template
 * that is refused in one place is refused in the other. Templates are trusted (operators write them) but
 * sandboxed anyway: in-memory only (no `include` from the filesystem), strict variables (a missing
 * variable is an error naming it, while `{% if x %}` and `| default:` may still test optional ones),
 * strict filters, own properties only, parse/render/memory limits, and every `{{ output }}` passes
 * through the renderer's `outputEscape`, which `| raw` cannot bypass. What differs per target syntax is
 * only that escape and the extra filters.
 *
 * Errors come back as `TemplateFailure` (what failed, and the variable path when one was missing), so
 * each renderer can wrap them in its own typed error without parsing LiquidJS messages itself.
 */
import { Liquid, type Template } from 'liquidjs';

export type { Template };

export interface SandboxOptions {
  /** Checks/escapes each `{{ output }}` after filters; throws to refuse a value. */
  outputEscape: (value: unknown) => string;
  /** Extra filters, e.g. quoting helpers for the target syntax. */
  filters?: Record<string, (value: unknown, ...args: unknown[]) => unknown>;
}

/** Why a template did not parse or render: `variable` is set for a missing variable (`vars.timezone`). */
export class TemplateFailure extends Error {
  readonly variable: string | undefined;
  constructor(message: string, variable: string | undefined, cause: unknown) {
    super(message, { cause });
    this.name = 'TemplateFailure';
    this.variable = variable;
  }
}

export interface Sandbox {
  /** Parses (cached by source); throws TemplateFailure. */
  parse(source: string): Template[];
  /** Renders synchronously; throws TemplateFailure, or rethrows an error thrown by a filter/outputEscape. */
  render(tpl: Template[], ctx: Record<string, unknown>, isOwnError: (e: unknown) => boolean): string;
}

export function createSandbox(o: SandboxOptions): Sandbox {
  const engine = new Liquid({
    templates: {}, // in-memory file system: include/render/layout never reach the disk
    strictVariables: true,
    lenientIf: true,
    strictFilters: true,
    ownPropertyOnly: true,
    outputEscape: o.outputEscape,
    parseLimit: 256 * 1024,
    renderLimit: 1000,
    memoryLimit: 16 * 1024 * 1024,
  });
  // `| raw` would skip outputEscape; make it an ordinary (escaped) identity filter.
  engine.registerFilter('raw', (v: unknown) => v);
  for (const [name, fn] of Object.entries(o.filters ?? {})) engine.registerFilter(name, fn);

  const cache = new Map<string, Template[]>();
  return {
    parse(source) {
      const hit = cache.get(source);
      if (hit) return hit;
      let tpl: Template[];
      try {
        tpl = engine.parse(source);
      } catch (err) {
        throw new TemplateFailure(`does not parse: ${(err as Error).message}`, undefined, err);
      }
      if (cache.size >= 64) cache.delete(cache.keys().next().value!);
      cache.set(source, tpl);
      return tpl;
    },
    render(tpl, ctx, isOwnError) {
      try {
        return engine.renderSync(tpl, ctx) as string;
      } catch (err) {
        if (isOwnError(err)) throw err;
        const cause = (err as { originalError?: unknown }).originalError;
        if (isOwnError(cause)) throw cause;
        const m = /undefined variable: ([^,\s]+)/.exec((err as Error).message);
        if (m) throw new TemplateFailure(`undefined variable ${m[1]}`, m[1], err);
        throw new TemplateFailure((err as Error).message, undefined, err);
      }
    },
  };
}
