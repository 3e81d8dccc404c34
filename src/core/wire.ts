/**
 * The wire contract, declared where it is defined: every layer's `protocol.ts` exports `wire`, built here
 * from its `subjects` object (one declaration per subject, checked by the compiler to be complete) and the
 * record collections it keeps in the store. `scripts/gen-docs.ts` renders all of them as docs/wire.md: the
 * subjects a NATS deployment must allow, per process, and which collections hold what. Pure: no I/O.
 *
 * Parties are processes: `manager` (`strata up`/`strata manager`), a worker role (`strata worker --roles
 * boot`), or a process a contract declares itself (the global shell worker).
 */

/** The JetStream stream that holds durable work, and the prefix of its subjects (`work.<queue>`). */
export const WORK_STREAM = 'STRATA_WORK';
export const WORK_SUBJECT_PREFIX = 'work.';

/** Durable consumer name for a queue: `.` is not allowed there, so escape it reversibly. */
export function durableName(queue: string): string {
  return queue.replaceAll('_', '__').replaceAll('.', '_d');
}

/**
 * - `request`: `from` asks and waits for a reply; one of `to` answers (a queue group).
 * - `publish`: `from` sends without a reply; every one of `to` gets a copy.
 * - `queue`: durable work; `from` enqueues on `work.<queue>` and one of `to` consumes and acks it.
 */
export type SubjectKind = 'request' | 'publish' | 'queue';

export interface SubjectDecl {
  kind: SubjectKind;
  from: readonly string[];
  to: readonly string[];
  /** What travels: `RequestType → ReplyType` or the published type, named as in the protocol module. */
  message: string;
}

export interface CollectionDecl {
  /** The collection's name; a `<placeholder>` stands for one collection per value (one per network). */
  name: string;
  /** What one record's key is. */
  key: string;
  /** What one record holds, and why it is kept. */
  holds: string;
  /** Parties that write it and that read it (only the control plane opens the store). */
  writers: readonly string[];
  readers: readonly string[];
}

export interface WireSubject extends SubjectDecl {
  /** The key in the layer's `subjects` object. */
  key: string;
  /** The NATS subject, `*` where the code fills in a name (a network, a session id). */
  subject: string;
}

export interface WireContract {
  layer: string;
  subjects: WireSubject[];
  collections: readonly CollectionDecl[];
  /** Processes besides `manager` and the worker roles that send or receive, and where they run. */
  processes?: Readonly<Record<string, string>>;
}

type SubjectValue = string | ((name: string) => string);

/**
 * A layer's contract from its `subjects` object and one declaration per subject (the compiler refuses a
 * subject without one). Subjects that are functions of a name become NATS wildcards.
 */
export function wireContract<S extends Record<string, SubjectValue>>(
  layer: string,
  subjects: S,
  decls: { readonly [K in keyof S]: SubjectDecl },
  collections: readonly CollectionDecl[] = [],
  processes?: Readonly<Record<string, string>>,
): WireContract {
  const out: WireSubject[] = Object.entries(subjects).map(([key, value]) => {
    const decl = decls[key]!;
    const name = typeof value === 'function' ? value('*') : value;
    return { key, subject: decl.kind === 'queue' ? `${WORK_SUBJECT_PREFIX}${name}` : name, ...decl };
  });
  return { layer, subjects: out, collections, ...(processes ? { processes } : {}) };
}

/** The store's secret records: sealed at rest when a key is configured, never logged, never served. */
export const SECRETS_COLLECTION = 'secrets';
/** Hashes of the API's tokens (src/api/auth.ts); the registry accepts them for reads too. */
export const API_TOKENS_COLLECTION = 'auth.tokens';

/** Subjects of the platform itself, used by every layer's workers. */
export const coreSubjects = {
  events: 'events.record',
} as const;

/** The platform's own part of the contract: timeline events from workers, and the API's tokens. */
export const coreWire: WireContract = wireContract(
  'core',
  coreSubjects,
  {
    events: {
      kind: 'publish',
      from: ['boot', 'lab', 'shell-global'],
      to: ['manager'],
      message: 'StrataEvent: a timeline event from a worker, recorded by the manager',
    },
  },
  [
    {
      name: API_TOKENS_COLLECTION,
      key: '`admin`, or `sha256:<hash>` of an API token',
      holds:
        'hashes of API tokens (never the tokens), the admin one and named ones with their roles; the registry accepts them for reads',
      writers: ['manager'],
      readers: ['manager'],
    },
    {
      name: SECRETS_COLLECTION,
      key: '`<layer prefix>/…` (listed under each layer)',
      holds:
        'private keys, CA keys and tokens (this one and every `secrets.*` collection), sealed at rest with the data directory’s secret key',
      writers: ['manager'],
      readers: ['manager'],
    },
  ],
);
