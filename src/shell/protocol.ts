/**
 * The remote shell's wire contract. Managers ask the shell worker of a node's segment (hosted by that
 * segment's boot worker, which sits in the segment's network namespace) to run a command or to open an
 * interactive session over SSH; the worker answers with the result, or streams the session's bytes on
 * per-session subjects. The exec stream between the API and `strata ssh` is framed like Kubernetes'
 * channel protocol: one byte of channel, four bytes of length, the payload. Pure: no I/O here.
 */
import { type WireContract, wireContract } from '../core/wire.ts';

export const subjects = {
  /** Request ShellRequest → ShellResult, served by the shell worker of `network`. */
  run: (network: string) => `shell.run.${network}`,
  /** Request DistributableRequest → DistributableResult, served by the shell worker of `network`. */
  distribute: (network: string) => `shell.distribute.${network}`,
  /** Request SessionOpen → {ok}, served by the shell worker of `network`. */
  open: (network: string) => `shell.open.${network}`,
  /** Published SessionInput, manager → worker. */
  sessionIn: (id: string) => `shell.session.${id}.in`,
  /** Published SessionOutput, worker → manager. */
  sessionOut: (id: string) => `shell.session.${id}.out`,
} as const;

const workers = ['boot', 'shell-global'];

export const wire: WireContract = wireContract(
  'shell',
  subjects,
  {
    run: { kind: 'request', from: ['manager'], to: workers, message: 'ShellRequest → ShellResult' },
    distribute: {
      kind: 'request',
      from: ['manager'],
      to: workers,
      message: 'DistributableRequest → DistributableResult',
    },
    open: { kind: 'request', from: ['manager'], to: workers, message: 'SessionOpen → {ok}' },
    sessionIn: { kind: 'publish', from: ['manager'], to: workers, message: 'SessionInput' },
    sessionOut: { kind: 'publish', from: workers, to: ['manager'], message: 'SessionOutput' },
  },
  [],
  {
    'shell-global':
      "the global-scope shell worker (network `_global`): inside the manager's process by default, or `src/shell/main.ts --network _global` where the overlay endpoint runs",
  },
);

/** Where and as whom: the node's address, and the host keys it is pinned to (never "accept any"). */
export interface SshTarget {
  host: string;
  port?: number;
  user: string;
  privateKey: string;
  /** OpenSSH host public key lines (`ssh-ed25519 AAAA…`). */
  knownHostKeys: string[];
}

export interface ShellRequest extends SshTarget {
  command: string;
  /** Bytes (UTF-8 text) for the command's stdin; without it, stdin is empty. */
  input?: string;
  /** The command is ended (and reported with its last output) after this long. Default 30 s. */
  timeoutMs?: number;
  /** Stream the output onto this node's timeline under this step. */
  stream?: { node: string; step: string };
}

export interface ShellResult {
  /** The remote exit status; 255 when SSH itself failed, 124 when the command timed out. */
  code: number;
  stdout: string;
  stderr: string;
  timedOut?: boolean;
  /** Connections tried: more than 1 when a dropped connection was retried. */
  attempts?: number;
  /** Why SSH failed, in words (host key refused, unreachable, timed out). */
  error?: string;
}

/**
 * The segment a global-scope call goes through: the shell worker that runs where Strata's overlay
 * endpoint (its Nebula lighthouse) runs, so overlay addresses are reachable from it. Not a valid Network
 * name (those have no underscore), so it never collides with a segment.
 */
export const GLOBAL_NETWORK = '_global';

export interface SessionOpen extends SshTarget {
  id: string;
  /** Remote command; absent: a login shell. */
  command?: string;
  /** Allocate a remote terminal (`ssh -tt`) of this size. */
  tty?: { cols: number; rows: number };
}

export type SessionInput = { stdin: string } | { eof: true } | { close: true };
export type SessionOutput = { stdout: string } | { stderr: string } | { exit: number; error?: string };

/** The exec stream (`POST /api/v1/nodes/NAME/exec` with `Upgrade: strata-exec`). */
export const EXEC_UPGRADE = 'strata-exec';

export const channel = {
  stdin: 0,
  stdout: 1,
  stderr: 2,
  /** JSON {code, error?}: the remote exit status; the last frame. */
  exit: 3,
  /** Empty: the client's stdin ended. */
  eof: 4,
} as const;

export function encodeFrame(ch: number, payload: Uint8Array | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
  const head = Buffer.alloc(5);
  head.writeUInt8(ch, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Largest frame accepted: a larger length means a corrupt or hostile stream. */
const MAX_FRAME = 1 << 20;

/** Splits a byte stream into frames, across chunk boundaries. */
export class FrameDecoder {
  #buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): { ch: number; payload: Buffer }[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const out: { ch: number; payload: Buffer }[] = [];
    while (this.#buf.length >= 5) {
      const len = this.#buf.readUInt32BE(1);
      if (len > MAX_FRAME) throw new Error(`exec stream frame of ${len} bytes is over ${MAX_FRAME}`);
      if (this.#buf.length < 5 + len) break;
      out.push({ ch: this.#buf.readUInt8(0), payload: this.#buf.subarray(5, 5 + len) });
      this.#buf = this.#buf.subarray(5 + len);
    }
    return out;
  }
}
