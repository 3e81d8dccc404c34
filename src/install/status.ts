/**
 * The install layer's section of a Node's status, declared here onto the core's NodeStatus: what the
 * installer and the installed system reported (progress, the pinned host keys, when the disk was written
 * and when the system reported in), and the hook that drops it when the node is reprovisioned, since none
 * of it is true of the next install.
 */
import type { NodeStatus } from '../core/kinds/node.ts';

/** The install attempt's progress, from the installer's events. */
export interface InstallProgress {
  step?: string;
  startedAt?: string;
  /** The installer's last word: the disk holds a bootable system (PXE-once boots it from then on). */
  diskWrittenAt?: string;
  /** The attempt's last progress event (attempt, step, status, message), to recognise the agent's retry. */
  last?: string;
}

declare module '../core/kinds/node.ts' {
  /** The install layer's section of a Node's status. */
  interface NodeStatus {
    /** Set when the installed system reported in; the boot script then boots the local disk (PXE-once). */
    installedAt?: string;
    /** The node's SSH host keys (OpenSSH `type base64`), pinned at install: shell calls trust only these. */
    hostKeys?: string[];
    /** The first of `hostKeys`, for people reading the status. */
    hostKey?: string;
    install?: InstallProgress;
  }
}

/** True when the node's disk holds an installed system (written, or reported in). */
export function diskInstalled(s: NodeStatus): boolean {
  return Boolean(s.installedAt || s.install?.diskWrittenAt);
}

/** Reprovisioning: the old install's report, progress and host keys go (a new key is pinned by the new one). */
export function resetInstallStatus({
  installedAt: _i,
  hostKey: _h,
  hostKeys: _k,
  install: _w,
  ...s
}: NodeStatus): NodeStatus {
  return s;
}
