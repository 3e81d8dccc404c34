/**
 * The overlay layer's wire and storage contract: the record collections it keeps in the store and the
 * keys inside them. Kept in one place because the manager, the future ladder step and operators' tools
 * all read the same records, and because which collection holds secrets is a security boundary.
 */

/** Address allocations, key `<overlay>/<node>`: survives restarts, never served. */
export const IPAM_COLLECTION = 'overlay-ipam';
/** The store's secret records (the same collection the SSH keys use): never logged, never served. */
export const SECRETS = 'secrets';
/** Revoked Nebula certificates, key `<overlay>/<fingerprint>`: kept in blocklists until they expire. */
export const REVOKED_COLLECTION = 'overlay-revoked';

export const caSecretKey = (overlay: string) => `overlay/${overlay}/ca`;
export const memberSecretKey = (overlay: string, node: string) => `overlay/${overlay}/member/${node}`;
/** The lighthouse Strata runs itself (when no member Node is named to run it). */
export const LIGHTHOUSE_MEMBER = '@lighthouse';
export const allocationKey = (overlay: string, node: string) => `${overlay}/${node}`;
/** On every Overlay: its members leave (their undo runs) and its records go before the Overlay does. */
export const OVERLAY_FINALIZER = 'strata.dev/overlay';
