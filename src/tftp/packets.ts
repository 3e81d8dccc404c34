/**
 * Ready-made DATA packets for files a source holds in memory, shared by every transfer of the same file at
 * the same blksize. A lock-step transfer sends one datagram per ACK; building it (a header written into a
 * window buffer, two views and an array for a gathered send) was most of what Strata's JavaScript added
 * to Node's own send. A packet's bytes depend only on its block number, so a file's packets are built once
 * (`encodeDataPackets`) and each ACK sends one of them as it is.
 *
 * The sets in use are bounded by `budgetBytes` (a set costs the file's size plus 4 bytes a block): a
 * transfer that would go beyond it gets no set and reads its windows from the file as before, so clients
 * asking for one file at many blksizes cannot make the server hold many copies of it. Sets no transfer uses
 * stay, and are dropped oldest first when a new one needs their room. A set also keeps its file's bytes
 * alive, which the source (DirectorySource's memory) usually holds anyway.
 */
import { blockCount, encodeDataPackets } from './codec.ts';

export interface PacketSet {
  /** Block k (1-based) is `packets[k - 1]`, header included. */
  readonly packets: Buffer[];
  readonly file: Uint8Array;
  readonly blksize: number;
  readonly bytes: number;
  users: number;
}

export class PacketSets {
  readonly budgetBytes: number;
  #held = 0;
  readonly #byFile = new Map<Uint8Array, Map<number, PacketSet>>();
  /** Sets no transfer uses, oldest first. */
  readonly #idle = new Set<PacketSet>();

  constructor(budgetBytes = DEFAULT_BUDGET_BYTES) {
    this.budgetBytes = budgetBytes;
  }

  /** Bytes held by all sets, used or idle. */
  get heldBytes(): number {
    return this.#held;
  }

  /** The packets of `file` at `blksize`, built now if needed; undefined when the budget has no room. */
  acquire(file: Uint8Array, blksize: number): PacketSet | undefined {
    const known = this.#byFile.get(file)?.get(blksize);
    if (known) {
      if (known.users++ === 0) this.#idle.delete(known);
      return known;
    }
    const bytes = file.length + 4 * blockCount(file.length, blksize);
    for (const old of this.#idle) {
      if (this.#held + bytes <= this.budgetBytes) break;
      this.#drop(old);
    }
    if (this.#held + bytes > this.budgetBytes) return undefined;
    const set: PacketSet = { packets: encodeDataPackets(file, blksize), file, blksize, bytes, users: 1 };
    const sets = this.#byFile.get(file) ?? new Map<number, PacketSet>();
    this.#byFile.set(file, sets.set(blksize, set));
    this.#held += bytes;
    return set;
  }

  /** A transfer is done with `set`. */
  release(set: PacketSet): void {
    if (--set.users === 0) this.#idle.add(set);
  }

  #drop(set: PacketSet): void {
    this.#idle.delete(set);
    const sets = this.#byFile.get(set.file);
    sets?.delete(set.blksize);
    if (sets?.size === 0) this.#byFile.delete(set.file);
    this.#held -= set.bytes;
  }
}

/** As much as a DirectorySource keeps in memory by default: at most one more copy of what it holds. */
const DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024;

/** The sets every server of this process shares (transfers of one file share packets across servers). */
export const sharedPacketSets = new PacketSets();
