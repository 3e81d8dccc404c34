/**
 * The overlay layer (state 5): the Overlay kind, IPAM, the Nebula CA, WireGuard keys, the ZeroTier
 * scripts and the membership plan. Its ladder step is not registered yet (the ladder is becoming a table
 * elsewhere); the step will call {@link reconcileOverlay} and hand the plan to the shell layer.
 */
import './kind.ts';

export * from './ipam.ts';
export * from './kind.ts';
export * from './membership.ts';
export * from './reconcile.ts';
