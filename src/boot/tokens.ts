/**
 * Per-node install tokens: issued with each install boot script, checked on every installer call, kept only
 * as hashes (src/core/tokens.ts). A token works for the node it was issued to and for no other.
 */
export { hashToken, tokenMatches } from '../core/tokens.ts';

export const INSTALL_TOKENS = 'install.tokens';
export const INSTALLED_TOKENS = 'install.installed-tokens';
