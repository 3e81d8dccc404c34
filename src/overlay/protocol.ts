/**
 * The overlay layer's wire and storage contract: the record collections it keeps in the store and the
 * keys inside them. Kept in one place because the manager, the future ladder step and operators' tools
 * all read the same records, and because which collection holds secrets is a security boundary. The
 * overlay layer sends nothing over the transport of its own: it reaches nodes through the shell layer.
 */
import { SECRETS_COLLECTION, type WireContract, wireContract } from '../core/wire.ts';

/** Address allocations, key `<overlay>/<node>`: survives restarts, never served. */
export const IPAM_COLLECTION = 'overlay-ipam';
/** The store's secret records (the same collection the SSH keys use): never logged, never served. */
export const SECRETS = SECRETS_COLLECTION;
/** Revoked Nebula certificates, key `<overlay>/<fingerprint>`: kept in blocklists until they expire. */
export const REVOKED_COLLECTION = 'overlay-revoked';
/** Digests of the plans pushed to joined members, key `<overlay>/<node>`: a changed plan is pushed again. */
export const PUSHED_COLLECTION = 'overlay-pushed';

export const caSecretKey = (overlay: string) => `overlay/${overlay}/ca`;
export const memberSecretKey = (overlay: string, node: string) => `overlay/${overlay}/member/${node}`;
/** The lighthouse Strata runs itself (when no member Node is named to run it). */
export const LIGHTHOUSE_MEMBER = '@lighthouse';
export const allocationKey = (overlay: string, node: string) => `${overlay}/${node}`;
/** On every Overlay: its members leave (their undo runs) and its records go before the Overlay does. */
export const OVERLAY_FINALIZER = 'strata.dev/overlay';

export const wire: WireContract = wireContract('overlay', {}, {}, [
  {
    name: IPAM_COLLECTION,
    key: allocationKey('<overlay>', '<node>'),
    holds: "Allocation: a member's overlay address (active, or released and held back before reuse)",
    writers: ['manager'],
    readers: ['manager'],
  },
  {
    name: REVOKED_COLLECTION,
    key: '`<overlay>/<certificate fingerprint>`',
    holds: "a revoked member's Nebula certificate, kept on the blocklist until it expires",
    writers: ['manager'],
    readers: ['manager'],
  },
  {
    name: PUSHED_COLLECTION,
    key: '`<overlay>/<node>`',
    holds: 'the digest of the plan last pushed to a member',
    writers: ['manager'],
    readers: ['manager'],
  },
  {
    name: SECRETS,
    key: `${caSecretKey('<overlay>')}, ${memberSecretKey('<overlay>', '<node>')}`,
    holds:
      "an Overlay's Nebula CAs (current and rotating); a member's certificate and key, or its WireGuard key pair",
    writers: ['manager'],
    readers: ['manager'],
  },
]);
