/**
 * The install manager (step 3 → 4): answers the installer agent's calls that the segment's boot worker
 * relays (config, progress, host keys, pre/post-reboot scripts, the installed system's report), each checked
 * against a token issued to that node alone, and checks the step's end the way a person would: SSH into the
 * node with Strata's managed key, trusting only the host key the node reported while it was installed.
 */
import { randomBytes } from 'node:crypto';
import { profileFor } from '../boot/manager.ts';
import type { InstallHttpRequest, InstallHttpResponse } from '../boot/protocol.ts';
import { subjects } from '../boot/protocol.ts';
import { hashToken, INSTALL_TOKENS, INSTALLED_TOKENS, tokenMatches } from '../boot/tokens.ts';
import type { NodeResource, NodeStatus } from '../core/kinds/node.ts';
import type { SSHKeyResource } from '../core/kinds/sshkey.ts';
import type { Step } from '../core/ladder/step.ts';
import type { ManagerContext } from '../core/layer.ts';
import { API_VERSION } from '../core/resources/types.ts';
import { STEPS } from '../ladder.ts';
import { shellRun } from '../shell/client.ts';
import { MANAGED_KEY } from '../sshkeys/index.ts';
import { answerFileResponse } from './answers/serve.ts';
import { parseHostKeys, parseInstallEvent, parseInstalledReport, renderInstallConfig } from './protocol.ts';

export { MANAGED_KEY };

type InstallStatus = NodeStatus & {
  hostKeys?: string[];
  install?: { step?: string; startedAt?: string; diskWrittenAt?: string };
};

const text = (status: number, body: string): InstallHttpResponse => ({
  status,
  contentType: 'text/plain',
  body,
});

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
  const node = await ctx.resources.get<NodeResource>('Node', name);
  if (!node) return text(404, 'unknown node\n');
  const collection = what === 'installed' ? INSTALLED_TOKENS : INSTALL_TOKENS;
  const rec = (await ctx.store.getRecord(collection, name)) as { hash?: string } | undefined;
  // Installers that cannot send a header (Anaconda's inst.ks=, d-i's url=, NoCloud) carry it as ?token=.
  const queryToken = new URLSearchParams(r.path.split('?')[1] ?? '').get('token');
  const credential = r.authorization ?? (queryToken ? `Bearer ${queryToken}` : undefined);
  if (!tokenMatches(rec?.hash, credential)) {
    ctx.hub.record({
      kind: 'Node',
      name,
      source: 'install-manager',
      step: STEPS.installOs,
      type: 'Warning',
      reason: 'InstallUnauthorized',
      message: `refused ${r.method} ${what} from ${r.remoteAddress}: token not valid for this node`,
    });
    return text(401, 'token not valid for this node\n');
  }
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
  const profile = await profileFor(ctx, node);
  switch (what) {
    case 'config': {
      if (!profile?.spec.image) return text(409, 'no profile with an OS image selects this node\n');
      const installedToken = randomBytes(24).toString('base64url');
      await ctx.store.putRecords(INSTALLED_TOKENS, [
        { key: name, value: { hash: hashToken(installedToken) } },
      ]);
      const image = /^https?:\/\//.test(profile.spec.image)
        ? profile.spec.image
        : `artifacts/${profile.spec.image}`;
      record('InstallConfig', `installer fetched its config (image ${profile.spec.image})`);
      await ctx.resources.patchStatus<InstallStatus>('Node', name, (s) => ({
        ...s,
        install: { step: 'config', startedAt: new Date().toISOString() },
      }));
      return text(
        200,
        renderInstallConfig({
          imageUrl: image,
          hostname: node.spec.hostname ?? name,
          sshAuthorizedKeys: await authorizedKeys(ctx, profile.spec.sshKeys),
          installedToken,
          ...(profile.spec.vars.kernelCmdline ? { kernelCmdline: profile.spec.vars.kernelCmdline } : {}),
        }),
      );
    }
    case 'events': {
      const ev = parseInstallEvent(JSON.parse(r.body || '{}'));
      record(
        ev.status === 'failed'
          ? 'InstallFailed'
          : `Install${ev.step.replace(/(^|-)(\w)/g, (_, _d, c: string) => c.toUpperCase())}`,
        ev.message,
        ev.status === 'failed',
        { step: ev.step, status: ev.status },
      );
      // The installer's last word is the moment the disk holds a bootable system: from then on the node's
      // boot script boots the disk (PXE-once), even before the installed system reports in.
      const written = ev.step === 'rebooting' && ev.status !== 'failed';
      await ctx.resources.patchStatus<InstallStatus>('Node', name, (s) => ({
        ...s,
        install: {
          ...s.install,
          step: ev.step,
          ...(written ? { diskWrittenAt: new Date().toISOString() } : {}),
        },
      }));
      return text(204, '');
    }
    case 'hostkey': {
      const keys = parseHostKeys(r.body).map((k) => `${k.type} ${k.key}`);
      if (!keys.length) return text(400, 'no OpenSSH host public key in the body\n');
      await ctx.resources.patchStatus<InstallStatus>('Node', name, (s) => ({
        ...s,
        hostKeys: keys,
        hostKey: keys[0]!,
      }));
      record('HostKeyRecorded', `host keys pinned: ${keys.map((k) => k.split(' ')[0]).join(', ')}`);
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
        record,
      });
    case 'installed': {
      const rep = parseInstalledReport(JSON.parse(r.body || '{}'));
      const addresses = rep.addresses.map((a) => a.split('/')[0]!);
      await ctx.resources.patchStatus<InstallStatus>('Node', name, (s) => ({
        ...s,
        installedAt: new Date().toISOString(),
        addresses: [...new Set([...addresses, ...(s.addresses ?? [])])],
        install: { ...s.install, step: 'installed' },
      }));
      record(
        'Installed',
        `installed system reported in: ${rep.hostname}, kernel ${rep.kernel}, post-reboot script exit ${rep.postRebootExit}`,
        rep.postRebootExit !== 0,
        { ...rep },
      );
      return text(204, '');
    }
  }
  return text(404, 'not found\n');
}

export const installStep: Step = {
  name: STEPS.installOs,
  description: 'GNU/Linux installed over HTTP, reachable over SSH with the managed key',
  async check(ctx) {
    const st = (ctx.node.status ?? {}) as InstallStatus;
    if (!st.installedAt) return false;
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
    const st = (ctx.node.status ?? {}) as InstallStatus;
    if (st.installedAt)
      return { status: 'waiting', message: 'installed; waiting for SSH to come up', recheckAfterMs: 5000 };
    return {
      status: 'waiting',
      // One message for the whole install: the installer's own events tell the steps.
      message: st.install?.step
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
  const sub = await ctx.transport.serve<InstallHttpRequest, InstallHttpResponse>(subjects.install, (r) =>
    handle(ctx, r).catch((err) => text(400, `${(err as Error).message}\n`)),
  );
  return () => sub.unsubscribe();
}
