/** Registers the core kinds. Layers register theirs next to their code. */
import './node.ts';
import './network.ts';
import './profile.ts';
import './sshkey.ts';
import './integrity.ts';

export * from './network.ts';
export * from './node.ts';
export * from './profile.ts';
export * from './sshkey.ts';
