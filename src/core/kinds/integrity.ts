/**
 * Integrity of the core kinds across resources, refused at apply instead of found at boot time: a MAC
 * belongs to one node; a reserved address is unique on its network, inside its subnet and outside its
 * dynamic pool; a node asks only for a hardware provider and a target state this server implements. And
 * who uses what, so deleting a Network, Profile or SSHKey that nodes still need is refused unless forced.
 * A node's network and profile come from placement.ts, the same query the boot layer uses.
 */
import { type Limits, registerAdmission, registerUsers, type View } from '../resources/admission.ts';
import type { FieldIssue } from '../resources/errors.ts';
import { inCidr, ipToInt } from '../resources/fields.ts';
import type { Resource } from '../resources/types.ts';
import type { NetworkResource } from './network.ts';
import { type NodeResource, STATE_NAMES } from './node.ts';
import { networkOf, profileOf } from './placement.ts';
import type { ProfileResource } from './profile.ts';

/** Every object of a kind, typed (the view holds validated objects of that kind). */
async function all<T>(view: View, kind: string): Promise<T[]> {
  return (await view(kind)) as unknown as T[];
}

const issue = (r: Pick<Resource, 'kind' | 'metadata'>, path: string, message: string): FieldIssue => ({
  resource: `${r.kind}/${r.metadata.name}`,
  path,
  message,
});

/**
 * What the server implements, asked once per batch: the answers are computed from the ladder and the
 * layers on each call, which for every Node of a 10,000-Node apply held the event loop ~100 ms.
 */
function implemented(limits: Limits): { top: number | undefined; available: string[] | undefined } {
  return { top: limits.highestState?.(), available: limits.providers?.('hardware') };
}

function checkLimits(node: NodeResource, { top, available }: ReturnType<typeof implemented>): FieldIssue[] {
  const out: FieldIssue[] = [];
  const want = node.spec.targetState;
  if (top !== undefined && want > top) {
    out.push(
      issue(
        node,
        'spec.targetState',
        `state ${want} (${STATE_NAMES[want]}) has no steps on this server yet: the highest state a node can ` +
          `reach is ${top} (${STATE_NAMES[top]}); set targetState to 0..${top}`,
      ),
    );
  }
  const hw = node.spec.providers?.hardware;
  if (available && hw && !available.includes(hw)) {
    out.push(
      issue(
        node,
        'spec.providers.hardware',
        `hardware provider "${hw}" is not available on this server: available are ${available.join(', ')}`,
      ),
    );
  }
  return out;
}

async function checkMacs(items: NodeResource[], view: View): Promise<FieldIssue[]> {
  const owners = new Map<string, string[]>();
  for (const n of await all<NodeResource>(view, 'Node')) {
    for (const mac of new Set(n.spec.macAddresses ?? []))
      owners.set(mac, [...(owners.get(mac) ?? []), n.metadata.name]);
  }
  const out: FieldIssue[] = [];
  for (const r of items) {
    r.spec.macAddresses?.forEach((mac, i) => {
      const other = owners.get(mac)?.find((n) => n !== r.metadata.name);
      if (other) {
        out.push(
          issue(
            r,
            `spec.macAddresses[${i}]`,
            `MAC ${mac} is already used by node "${other}": a MAC belongs to one node; remove it from one of them`,
          ),
        );
      }
    });
  }
  return out;
}

async function checkAddresses(items: NodeResource[], view: View): Promise<FieldIssue[]> {
  if (!items.some((r) => r.spec.ipAddress)) return [];
  const networks = await all<NetworkResource>(view, 'Network');
  const holders = new Map<string, string[]>();
  for (const n of await all<NodeResource>(view, 'Node')) {
    if (!n.spec.ipAddress) continue;
    const key = `${networkOf(n, networks)?.metadata.name ?? ''}/${n.spec.ipAddress}`;
    holders.set(key, [...(holders.get(key) ?? []), n.metadata.name]);
  }
  const out: FieldIssue[] = [];
  for (const r of items) {
    const ip = r.spec.ipAddress;
    if (!ip) continue;
    const net = networkOf(r, networks);
    const where = net ? `network "${net.metadata.name}"` : 'its network';
    const other = holders.get(`${net?.metadata.name ?? ''}/${ip}`)?.find((n) => n !== r.metadata.name);
    if (other) {
      out.push(
        issue(
          r,
          'spec.ipAddress',
          `${ip} is already reserved for node "${other}" on ${where}: choose a free address`,
        ),
      );
    }
    if (!net) continue;
    const { subnet, pool, serverAddress, gateway } = net.spec;
    if (!inCidr(ip, subnet)) {
      out.push(
        issue(
          r,
          'spec.ipAddress',
          `${ip} is outside subnet ${subnet} of ${where}: choose an address in ${subnet}`,
        ),
      );
    } else if (pool && ipToInt(ip) >= ipToInt(pool.start) && ipToInt(ip) <= ipToInt(pool.end)) {
      out.push(
        issue(
          r,
          'spec.ipAddress',
          `${ip} is inside the dynamic pool ${pool.start}-${pool.end} of ${where}: a reserved address must lie outside the pool`,
        ),
      );
    } else if (ip === serverAddress || ip === gateway) {
      out.push(
        issue(
          r,
          'spec.ipAddress',
          `${ip} is the ${ip === gateway ? 'gateway' : 'server address'} of ${where}: choose another address`,
        ),
      );
    }
  }
  return out;
}

registerAdmission('Node', async (items, view, limits) => {
  const nodes = items as unknown as NodeResource[];
  const server = implemented(limits);
  return [
    ...nodes.flatMap((n) => checkLimits(n, server)),
    ...(await checkMacs(nodes, view)),
    ...(await checkAddresses(nodes, view)),
  ];
});

/** A changed subnet, pool, server address or gateway must not strand an address a node reserves there. */
registerAdmission('Network', async (items, view) => {
  const names = new Set(items.map((n) => n.metadata.name));
  const networks = await all<NetworkResource>(view, 'Network');
  const reserved = (await all<NodeResource>(view, 'Node')).filter(
    (n) => n.spec.ipAddress && names.has(networkOf(n, networks)?.metadata.name ?? ''),
  );
  return (await checkAddresses(reserved, view))
    .filter((i) => !/already reserved/.test(i.message))
    .map((i) => {
      const node = reserved.find((n) => `Node/${n.metadata.name}` === i.resource)!;
      const net = networkOf(node, networks)!;
      return {
        resource: `Network/${net.metadata.name}`,
        path: 'spec',
        message: `node "${node.metadata.name}" reserves ${node.spec.ipAddress}, which ${i.message.slice(node.spec.ipAddress!.length + 1)}; change that node's spec.ipAddress first`,
      };
    });
});

async function nodesOnProfiles(names: Set<string>, list: View): Promise<string[]> {
  const profiles = await all<ProfileResource>(list, 'Profile');
  return (await all<NodeResource>(list, 'Node'))
    .filter((n) => {
      const p = profileOf(n, profiles);
      return p !== undefined && names.has(p.metadata.name);
    })
    .map((n) => n.metadata.name);
}

registerUsers('Network', async (net, list) => {
  const networks = await all<NetworkResource>(list, 'Network');
  return (await all<NodeResource>(list, 'Node'))
    .filter((n) => networkOf(n, networks)?.metadata.name === net.metadata.name)
    .map((n) => n.metadata.name);
});

registerUsers('Profile', (p, list) => nodesOnProfiles(new Set([p.metadata.name]), list));

registerUsers('SSHKey', async (key, list) => {
  const profiles = (await all<ProfileResource>(list, 'Profile')).filter((p) =>
    p.spec.sshKeys.includes(key.metadata.name),
  );
  return nodesOnProfiles(new Set(profiles.map((p) => p.metadata.name)), list);
});
