/**
 * The safety interlock of the DHCP worker: refuse to open a DHCP socket in the machine's own network
 * namespace. Development and test machines sit on shared networks where a stray DHCP offer is an
 * incident, so a worker must run inside a namespace created for it (`ip netns exec NAME ...`) unless
 * production explicitly opts in (`allowHostNamespace`, or STRATA_DHCP_ALLOW_HOST_NETNS=1).
 *
 * How "the host namespace" is recognised: the namespace of PID 1 (`/proc/1/ns/net`). Some sandboxes
 * forbid reading it; then we require positive proof instead: our namespace must be a named one (bind
 * mounted under /run/netns, as `ip netns add` does) and differ from our parent's (an `ip netns exec`
 * child's parent is the process that spawned it, in the outer namespace). Anything unprovable refuses.
 */

import { readdirSync, readlinkSync, statSync } from 'node:fs';

export class HostNamespaceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostNamespaceError';
  }
}

function tryReadlink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** Named namespaces (from `ip netns add`) whose inode matches `ino`. */
function namedNamespacesWithInode(ino: number): string[] {
  const out: string[] = [];
  for (const dir of ['/run/netns', '/var/run/netns']) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      try {
        if (statSync(`${dir}/${n}`).ino === ino) out.push(n);
      } catch {
        /* not a namespace mount */
      }
    }
  }
  return out;
}

export interface GuardResult {
  /** e.g. `net:[4026532301]` */
  netns: string;
  /** How it was established that this is not the host namespace (or that it was allowed). */
  how: 'allowed' | 'differs-from-pid1' | 'named-namespace';
  names: string[];
}

/**
 * Throws {@link HostNamespaceError} unless the current process is provably outside the machine's own
 * network namespace, or `allowHostNamespace` / STRATA_DHCP_ALLOW_HOST_NETNS=1 says production wants it.
 */
export function assertNotHostNamespace(opts: { allowHostNamespace?: boolean } = {}): GuardResult {
  const self = tryReadlink('/proc/self/ns/net');
  if (opts.allowHostNamespace || process.env.STRATA_DHCP_ALLOW_HOST_NETNS === '1') {
    return { netns: self ?? 'unknown', how: 'allowed', names: [] };
  }
  if (!self) throw new HostNamespaceError('cannot read /proc/self/ns/net: refusing to serve DHCP');
  const hostHint = process.env.STRATA_HOST_NETNS;
  if (hostHint && hostHint === self) {
    throw new HostNamespaceError(`in the host network namespace ${self} (STRATA_HOST_NETNS): refusing`);
  }
  const init = tryReadlink('/proc/1/ns/net');
  if (init !== undefined) {
    if (init === self) {
      throw new HostNamespaceError(
        `in the machine's own network namespace ${self}: refusing to serve DHCP (run it with ip netns exec)`,
      );
    }
    return { netns: self, how: 'differs-from-pid1', names: [] };
  }
  const parent = tryReadlink(`/proc/${process.ppid}/ns/net`);
  if (parent === self) {
    throw new HostNamespaceError(`same network namespace as the parent process (${self}): refusing`);
  }
  const names = namedNamespacesWithInode(statSync('/proc/self/ns/net').ino);
  if (names.length === 0) {
    throw new HostNamespaceError(
      `cannot prove ${self} is not the host network namespace (PID 1 unreadable, not a named namespace): refusing`,
    );
  }
  return { netns: self, how: 'named-namespace', names };
}
