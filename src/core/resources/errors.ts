/**
 * Errors that cross the API boundary. Each carries an HTTP status and a machine-readable reason so the
 * CLI can print what kubectl users expect (`Error from server (NotFound): ...`) and exit non-zero.
 */

export interface FieldIssue {
  /** Manifest file the resource came from, when known. */
  file?: string;
  /** `Kind/name` or `document 2` when the name itself is missing. */
  resource: string;
  /** Dotted path into the document, e.g. `spec.macAddresses[0]`. */
  path: string;
  message: string;
}

export class StrataError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly details?: FieldIssue[] | undefined;
  constructor(status: number, reason: string, message: string, details?: FieldIssue[]) {
    super(message);
    this.status = status;
    this.reason = reason;
    this.details = details;
  }
}

export const notFound = (kind: string, name: string) =>
  new StrataError(404, 'NotFound', `${kind.toLowerCase()} "${name}" not found`);

export const alreadyExists = (kind: string, name: string) =>
  new StrataError(409, 'AlreadyExists', `${kind.toLowerCase()} "${name}" already exists`);

export const conflict = (kind: string, name: string, expected: string, actual: string) =>
  new StrataError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${kind.toLowerCase()} "${name}": the object has been modified ` +
      `(resourceVersion ${expected} is stale, current is ${actual}); get the latest version and try again`,
  );

export function invalid(issues: FieldIssue[]): StrataError {
  const lines = issues.map(
    (i) => `${i.file ? `${i.file}: ` : ''}${i.resource}: ${i.path ? `${i.path}: ` : ''}${i.message}`,
  );
  return new StrataError(
    422,
    'Invalid',
    issues.length === 1 ? lines[0]! : `${issues.length} errors:\n  ${lines.join('\n  ')}`,
    issues,
  );
}
