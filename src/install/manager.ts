/**
 * The install manager (step 3 → 4): answers the installer agent's calls that the segment's boot worker
 * relays (config, progress, host keys, pre/post-reboot scripts, the installed system's report), each checked
 * against a token of the node's current install attempt (./tokens.ts), and checks the step's end the
 * way a person would: SSH into the node with Strata's managed key, trusting only the host key the node
 * reported while it was installed.
 *
 * A token is a bearer credential that can leak (a console, a proxy log), so what it can do is narrowed:
 * the host key is pinned once (changed only by a reprovision), the installed report is accepted once (it
 * revokes the attempt) and only with addresses that match the node's lease or the request's source, and
 * the progress events one attempt may write are bounded.
 */
import { leasedAddresses, recordFromWire } from '../boot/nodes.ts';
import type { NetworkResource } from '../core/kinds/network.ts';
import type { NodeResource, NodeStatus } from '../core/kinds/node.ts';
import { selectProfile } from '../core/kinds/placement.ts';
import type { SSHKeyResource } from '../core/kinds/sshkey.ts';
import type { Step } from '../core/ladder/step.ts';
import type { ManagerContext } from '../core/layer.ts';
import { cleanText, KeyedBucket } from '../core/limits.ts';
import { seconds } from '../core/resources/fields.ts';
import { API_VERSION } from '../core/resources/types.ts';
import { STEPS } from '../ladder.ts';
import { shellRun } from '../shell/client.ts';
import { MANAGED_KEY } from '../sshkeys/index.ts';
import { answerFileResponse } from './answers/serve.ts';
import {
  type InstallHttpRequest,
  type InstallHttpResponse,
  installerCmdline,
  parseHostKeys,
  parseInstallEvent,
  parseInstalledReport,
  renderInstallConfig,
  subjects,
} from './protocol.ts';
import {
  checkInstalledToken,
  checkInstallToken,
  INSTALL_ATTEMPTS,
  type InstallAttempt,
  issueInstallToken,
  withInstalledToken,
} from './tokens.ts';

export { MANAGED_KEY };

/** Lifetime of the tokens of an install attempt on a Network (`spec.boot.installTokenTTL`). */
const tokenTtlMs = (net: NetworkResource | undefined) =>
  seconds(net?.spec.boot.installTokenTTL ?? '2h') * 1000;

/**
 * The installer's kernel command line words for a node that boots it now (boot's handoff): an install
 * token for this attempt of this Node object, with which the installer proves it is this node. A fetch
 * while an attempt runs adds a token to it (never revokes the running installer's); a reprovision
 * (`fresh`) starts a new attempt.
 */
export async function installerArgs(
  ctx: ManagerContext,
  node: NodeResource,
  o: { baseUrl: string; network: NetworkResource | undefined; fresh: boolean },
): Promise<string> {
  const prev = (await ctx.store.getRecord(INSTALL_ATTEMPTS, node.metadata.name)) as
    | InstallAttempt
    | undefined;
  const { attempt, token } = issueInstallToken(prev, node.metadata.uid!, tokenTtlMs(o.network), {
    fresh: o.fresh,
  });
  await ctx.store.putRecords(INSTALL_ATTEMPTS, [{ key: node.metadata.name, value: attempt }]);
  return installerCmdline({ url: o.baseUrl, node: node.metadata.name, token });
}

const text = (status: number, body: string): InstallHttpResponse => ({
  status,
  contentType: 'text/plain',
  body,
});

/** The method each endpoint answers; anything else is 405 with Allow. */
const METHODS: Record<string, string> = {
  config: 'GET',
  events: 'POST',
  hostkey: 'POST',
  'scripts/pre-reboot': 'GET',
  'scripts/post-reboot': 'GET',
  installed: 'POST',
};

/** Progress events one install attempt may add to the timeline: a burst of 200, then one a second. */
const attemptEvents = new KeyedBucket({ capacity: 200, perSecond: 1 });

async function authorizedKeys(ctx: ManagerContext, names: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const n of [MANAGED_KEY, ...names]) {
    const k = await ctx.resources.get<SSHKeyResource>('SSHKey', n);
    const pub = k?.status?.publicKey ?? k?.spec.publicKey;
    if (pub && !out.includes(pub)) out.push(pub);
  }
  return out;
}

async function handle(ctx: ManagerContext, r: InstallHttpRequest): Promise<InstallHttpResponse> {
  const m =
    /^\/install\/([a-z0-9-]+)\/(config|events|hostkey|scripts\/pre-reboot|scripts\/post-reboot|installed|answers\/(?:kickstart|preseed|cloud-init(?:\/(?:user-data|meta-data))?))(\?.*)?$/.exec(
      r.path,
    );
  if (!m) return text(404, 'not found\n');
  const [, name, what] = m as unknown as [string, string, string];
  const allow = METHODS[what] ?? 'GET';
  if (r.method !== allow) return { ...text(405, `${what} answers ${allow} only\n`), headers: { allow } };
  const node = await ctx.resources.get<NodeResource>('Node', name);
  if (!node) return text(404, 'unknown node\n');
  let attempt = (await ctx.store.getRecord(INSTALL_ATTEMPTS, name)) as InstallAttempt | undefined;
  // Installers that cannot send a header (Anaconda's inst.ks=, d-i's url=, NoCloud) carry it as ?token=.
  const queryToken = new URLSearchParams(r.path.split('?')[1] ?? '').get('token');
  const credential = r.authorization ?? (queryToken ? `Bearer ${queryToken}` : undefined);
  const uid = node.metadata.uid;
  const ok =
    what === 'installed'
      ? checkInstalledToken(attempt, uid, credential)
      : checkInstallToken(attempt, uid, credential);
  if (typeof ok === 'object') {
    attempt = ok;
    await ctx.store.putRecords(INSTALL_ATTEMPTS, [{ key: name, value: attempt }]);
  }
  if (!ok || !attempt) {
    recordFromWire(ctx, {
      kind: 'Node',
      name,
      source: 'install-manager',
      step: STEPS.installOs,
      type: 'Warning',
      reason: 'InstallUnauthorized',
      message: `refused ${r.method} ${what} from ${cleanText(r.remoteAddress, 64)}: token not valid for this node (or expired, or revoked)`,
    });
    return text(401, 'token not valid for this node\n');
  }
  const current: InstallAttempt = attempt;
  const net = await ctx.resources.get<NetworkResource>('Network', r.network);
  const ttlMs = tokenTtlMs(net);
  /** The attempt's installed-report token: minted once, the same on every later fetch. */
  const installedToken = async () => {
    const t = withInstalledToken(current, ttlMs);
    if (t.minted) await ctx.store.putRecords(INSTALL_ATTEMPTS, [{ key: name, value: t.attempt }]);
    return t.token;
  };
  const record = (reason: string, message: string, warn = false, data?: Record<string, unknown>) =>
    ctx.hub.record({
      kind: 'Node',
      name,
      source: `installer@${name}`,
      step: STEPS.installOs,
      reason,
      message,
      type: warn ? 'Warning' : 'Normal',
      ...(data ? { data } : {}),
    });
  const profile = await selectProfile(ctx.resources, node);
  switch (what) {
    case 'config': {
      if (!profile?.spec.image) return text(409, 'no profile with an OS image selects this node\n');
      const image = /^https?:\/\//.test(profile.spec.image)
        ? profile.spec.image
        : `artifacts/${profile.spec.image}`;
      record('InstallConfig', `installer fetched its config (image ${profile.spec.image})`);
      await ctx.resources.patchStatus<NodeStatus>('Node', name, (s) => ({
        ...s,
        install: { step: 'config', startedAt: new Date().toISOString() },
      }));
      return text(
        200,
        renderInstallConfig({
          imageUrl: image,
          hostname: node.spec.hostname ?? name,
          sshAuthorizedKeys: await authorizedKeys(ctx, profile.spec.sshKeys),
          installedToken: await installedToken(),
          ...(profile.spec.vars.kernelCmdline ? { kernelCmdline: profile.spec.vars.kernelCmdline } : {}),
        }),
      );
    }
    case 'events': {
      const parsed = parseInstallEvent(JSON.parse(r.body || '{}'));
      const ev = { ...parsed, step: cleanText(parsed.step, 32), message: cleanText(parsed.message, 1024) };
      if (!attemptEvents.take(current.attempt).ok)
        return text(429, 'too many events for this install attempt; slow down\n');
      // The agent sends an event again when it cannot tell whether it landed (a cut connection, Strata
      // restarting): the same event twice in a row is that retry, recorded once ("rebooting" is once-only).
      const last = JSON.stringify([current.attempt, ev.step, ev.status, ev.message]);
      if (node.status?.install?.last === last) return text(204, '');
      record(
        ev.status === 'failed'
          ? 'InstallFailed'
          : `Install${ev.step.replace(/[^A-Za-z0-9-]/g, '').replace(/(^|-)(\w)/g, (_, _d, c: string) => c.toUpperCase())}`,
        ev.message,
        ev.status === 'failed',
        { step: ev.step, status: ev.status },
      );
      // The installer's last word is the moment the disk holds a bootable system: from then on the node's
      // boot script boots the disk (PXE-once), even before the installed system reports in.
      const written = ev.step === 'rebooting' && ev.status !== 'failed';
      await ctx.resources.patchStatus<NodeStatus>('Node', name, (s) => ({
        ...s,
        install: {
          ...s.install,
          step: ev.step,
          last,
          ...(written ? { diskWrittenAt: new Date().toISOString() } : {}),
        },
      }));
      // Acknowledged means on the timeline: a crash right after the 204 must not lose the event.
      await ctx.hub.flush();
      return text(204, '');
    }
    case 'hostkey': {
      const keys = parseHostKeys(r.body).map((k) => `${k.type} ${k.key}`);
      if (!keys.length) return text(400, 'no OpenSSH host public key in the body\n');
      const pinned = node.status?.hostKeys;
      if (pinned?.length) {
        const same = pinned.length === keys.length && pinned.every((k) => keys.includes(k));
        if (same) return text(204, '');
        record(
          'HostKeyRefused',
          'a different host key was offered for a node whose host key is pinned: refused (set spec.reprovision to install it anew)',
          true,
        );
        return text(409, 'the host key of this node is pinned; only a reprovision changes it\n');
      }
      await ctx.resources.patchStatus<NodeStatus>('Node', name, (s) => ({
        ...s,
        hostKeys: keys,
        hostKey: keys[0]!,
      }));
      record('HostKeyRecorded', `host keys pinned: ${keys.map((k) => k.split(' ')[0]).join(', ')}`);
      await ctx.hub.flush();
      return text(204, '');
    }
    case 'scripts/pre-reboot':
    case 'scripts/post-reboot': {
      const script =
        what === 'scripts/pre-reboot' ? profile?.spec.preRebootScript : profile?.spec.postRebootScript;
      return script ? text(200, script) : text(204, '');
    }
    case 'answers/kickstart':
    case 'answers/preseed':
    case 'answers/cloud-init':
    case 'answers/cloud-init/user-data':
    case 'answers/cloud-init/meta-data':
      return answerFileResponse(ctx, {
        node,
        profile,
        what: what.slice('answers/'.length),
        network: r.network,
        sshAuthorizedKeys: profile ? await authorizedKeys(ctx, profile.spec.sshKeys) : [],
        installedToken,
        record,
      });
    case 'installed': {
      const rep = parseInstalledReport(JSON.parse(r.body || '{}'));
      // Strata will SSH to the first address with its managed key: only an address the node was leased,
      // or the one this report came from, is believed.
      const leased = await leasedAddresses(ctx, node, r.network);
      const from = r.remoteAddress.replace(/^::ffff:/, '');
      const reported = rep.addresses.map((a) => a.split('/')[0]!);
      const addresses = reported.filter((a) => leased.includes(a) || a === from);
      if (!addresses.length) {
        record(
          'InstalledReportRefused',
          `installed report refused: its addresses (${cleanText(reported.join(', '), 200)}) match neither the lease (${leased.join(', ') || 'none'}) nor the source ${from}`,
          true,
        );
        return text(403, 'reported addresses match neither the lease nor the source address\n');
      }
      // Report-in ends the attempt: its tokens (install and installed) are revoked.
      await ctx.store.deleteRecords(INSTALL_ATTEMPTS, [name]);
      await ctx.resources.patchStatus<NodeStatus>('Node', name, (s) => ({
        ...s,
        installedAt: new Date().toISOString(),
        addresses: [...new Set([...addresses, ...(s.addresses ?? [])])],
        install: { ...s.install, step: 'installed' },
      }));
      record(
        'Installed',
        `installed system reported in: ${cleanText(rep.hostname, 64)}, kernel ${cleanText(rep.kernel, 64)}, post-reboot script exit ${rep.postRebootExit}`,
        rep.postRebootExit !== 0,
        {
          hostname: cleanText(rep.hostname, 64),
          kernel: cleanText(rep.kernel, 64),
          bootId: cleanText(rep.bootId, 64),
          machineId: cleanText(rep.machineId, 64),
          postRebootExit: rep.postRebootExit,
          addresses,
        },
      );
      await ctx.hub.flush();
      return text(204, '');
    }
  }
  return text(404, 'not found\n');
}

export const installStep: Step = {
  name: STEPS.installOs,
  description: 'GNU/Linux installed over HTTP, reachable over SSH with the managed key',
  async check(ctx) {
    if (!ctx.node.status?.installedAt) return false;
    const r = await shellRun(
      ctx,
      ctx.node,
      'systemctl is-system-running --wait >/dev/null 2>&1; uname -r; cat /etc/debian_version',
    );
    if (r.code !== 0)
      throw new Error(
        `SSH to ${r.target.host} failed (exit ${r.code}): ${r.error ?? r.stderr.trim().split('\n').pop()}`,
      );
    ctx.record(
      'SSHReachable',
      `SSH as root with the managed key and pinned host key: kernel ${r.stdout.trim().split('\n').join(', Debian ')}`,
    );
    return true;
  },
  async action(ctx) {
    const st = ctx.node.status;
    if (st?.installedAt)
      return { status: 'waiting', message: 'installed; waiting for SSH to come up', recheckAfterMs: 5000 };
    return {
      status: 'waiting',
      // One message for the whole install: the installer's own events tell the steps.
      message: st?.install?.step
        ? 'installing (progress: the installer events)'
        : 'waiting for the installer to call in',
      recheckAfterMs: 30_000,
    };
  },
};

export async function startInstallManager(ctx: ManagerContext): Promise<() => Promise<void>> {
  if (!(await ctx.resources.get('SSHKey', MANAGED_KEY))) {
    await ctx.resources
      .apply([
        {
          apiVersion: API_VERSION,
          kind: 'SSHKey',
          metadata: { name: MANAGED_KEY, labels: { 'strata.dev/managed': 'true' } },
          spec: { generate: true, type: 'ed25519', comment: 'strata-managed' },
        },
      ])
      .catch((err) => ctx.log.warn('could not create the managed SSH key', { err }));
  }
  const sub = await ctx.transport.serve<InstallHttpRequest, InstallHttpResponse>(subjects.http, (r) =>
    handle(ctx, r).catch((err) => text(400, `${cleanText((err as Error).message, 200)}\n`)),
  );
  // A deleted Node's attempt goes with it (its tokens were bound to that Node's uid anyway).
  const off = ctx.hub.onChange((ev) => {
    if (ev.type === 'DELETED' && ev.object.kind === 'Node')
      void ctx.store.deleteRecords(INSTALL_ATTEMPTS, [ev.object.metadata.name]).catch(() => {});
  });
  return async () => {
    off();
    await sub.unsubscribe();
  };
}
