/**
 * Where a validation error is in the YAML a person typed: the API names each issue's resource
 * (`Network/lab`, or `document 2`) and field path (`spec.pool.start`, `spec.macAddresses[0]`); this finds
 * that document and field with the `yaml` library's source ranges and gives its line, or the line of the
 * deepest parent that exists (a missing required field points at its parent). Pure, so it is unit-tested.
 */
import { LineCounter, parseAllDocuments } from 'yaml';
import type { FieldIssue } from './api.ts';

/** `spec.macAddresses[0]` → ['spec', 'macAddresses', 0]. */
export function splitPath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const part of path.split('.')) {
    const m = /^([^[]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    if (m[1]) out.push(m[1]);
    for (const i of m[2]!.matchAll(/\[(\d+)\]/g)) out.push(Number(i[1]));
  }
  return out;
}

export interface LocatedIssue extends FieldIssue {
  /** 1-based line in the editor's text, when the field (or its nearest parent) was found. */
  line?: number;
}

/** Finds each issue's field in the YAML text: its resource's document, then the path (or its deepest existing parent). */
export function locate(text: string, issues: FieldIssue[]): LocatedIssue[] {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc });
  if (!Array.isArray(docs)) return issues;
  return issues.map((issue) => {
    const [kind, name] = issue.resource.split('/');
    const docNo = /^document (\d+)$/.exec(issue.resource);
    const doc =
      (docNo ? docs[Number(docNo[1]) - 1] : undefined) ??
      docs.find((d) => d.get('kind') === kind && d.getIn(['metadata', 'name']) === name) ??
      docs[0];
    if (!doc) return issue;
    let path = splitPath(issue.path);
    while (path.length) {
      const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === 'object' && node.range)
        return { ...issue, line: lc.linePos(node.range[0]).line };
      path = path.slice(0, -1);
    }
    const range = (doc.contents as { range?: [number, number, number] } | null)?.range;
    return range ? { ...issue, line: lc.linePos(range[0]).line } : issue;
  });
}
