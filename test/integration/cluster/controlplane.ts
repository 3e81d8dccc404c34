/**
 * A real Kubernetes control plane on the host, for the cluster layer's tests: etcd from Debian on free
 * loopback ports with a temporary data directory, and kube-apiserver, kube-controller-manager,
 * kube-scheduler and kwok from the machine-wide cache scripts/build/kubernetes.sh fills. It stands in for
 * "the control plane installed over SSH": it is started from the very files the `cluster.join` step would
 * push to a control-plane node (Strata's PKI and kubeconfigs, rendered by the same bundle code) with the
 * flags the node's apply script gives the same binaries, only bound to loopback ports chosen here.
 * kwok stands in for kubelets (the kubelet must never run on a shared host: it rewrites machine-wide
 * sysctls); it drives only Nodes annotated `kwok.x-k8s.io/node=fake`. Every process is killed and every
 * directory removed in the suite's `after`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterClient } from '../../../src/cluster/kube.ts';
import type { Distributable } from '../../../src/shell/distributable.ts';
import { type Cleanup, freePorts } from '../../helpers/services.ts';
import { tempDir } from '../../helpers/strata.ts';

export const K8S_VERSION = 'v1.34.4';
export const K8S_CACHE = process.env.STRATA_K8S_CACHE ?? `/var/cache/strata/kubernetes/${K8S_VERSION}`;
export const bin = (name: string) => join(K8S_CACHE, name);
const ETCD = '/usr/bin/etcd';

/** Why the control plane cannot run here (and how to fix it), or undefined when it can. */
export function controlPlaneSkipReason(): string | undefined {
  const missing = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl', 'kwok'].filter(
    (b) => {
      try {
        accessSync(bin(b), constants.X_OK);
        return false;
      } catch {
        return true;
      }
    },
  );
  if (missing.length)
    return `no ${missing.join(', ')} in ${K8S_CACHE}: build them with "bash scripts/build/kubernetes.sh --host-only" (about 30 minutes cold, once per machine; .ci/run does it)`;
  try {
    accessSync(ETCD, constants.X_OK);
  } catch {
    return `no ${ETCD}: install Debian's etcd-server (scripts/setup.sh)`;
  }
  return undefined;
}

export interface ControlPlane {
  server: string;
  dir: string;
  /** The last lines each component wrote, for a failing test's message. */
  logs(): string;
  stop(): Promise<void>;
}

interface Proc {
  name: string;
  child: ChildProcess;
  out: string[];
}

function start(name: string, cmd: string, args: string[], dir: string, procs: Proc[]): void {
  const child = spawn(cmd, args, {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
  });
  const p: Proc = { name, child, out: [] };
  const keep = (d: Buffer) => {
    p.out.push(...d.toString().split('\n').filter(Boolean));
    if (p.out.length > 40) p.out.splice(0, p.out.length - 40);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  procs.push(p);
}

/**
 * Starts the control plane from a control-plane node's bundle (its files written into a directory, the
 * way the shell layer copies them onto a node). `port` is the API server's port, the Cluster's endpoint.
 */
export async function startControlPlane(
  t: Cleanup,
  bundle: Distributable,
  port: number,
): Promise<ControlPlane> {
  const dir = tempDir(t, 'strata-k8s-cp-');
  const pki = join(dir, 'pki');
  mkdirSync(pki, { mode: 0o700 });
  const server = `https://127.0.0.1:${port}`;
  for (const f of bundle.files) {
    // The node's kubeconfigs point at https://127.0.0.1:6443; here the API server has a port of its own.
    const content = f.name.endsWith('.conf')
      ? f.content.replace('https://127.0.0.1:6443', server)
      : f.content;
    writeFileSync(join(pki, f.name), content, { mode: f.mode });
  }
  const p = (f: string) => join(pki, f);
  const env = Object.fromEntries(
    readFileSync(p('cluster.env'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 2, -1)]),
  ) as Record<string, string>;
  const [etcdPort, peerPort, cmPort, schedPort, kwokPort] = (await freePorts(5)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const procs: Proc[] = [];
  const stop = async () => {
    await Promise.all(
      procs.reverse().map(
        (x) =>
          new Promise<void>((resolve) => {
            if (x.child.exitCode !== null || x.child.signalCode !== null) return resolve();
            x.child.once('exit', () => resolve());
            x.child.kill('SIGTERM');
            setTimeout(() => x.child.kill('SIGKILL'), 5000).unref();
          }),
      ),
    );
  };
  t.after(stop);
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  start(
    'etcd',
    ETCD,
    [
      '--name=strata-test',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=strata-test=http://127.0.0.1:${peerPort}`,
    ],
    dir,
    procs,
  );
  // The flags of src/cluster/scripts/kubernetes/apply.sh, on loopback ports.
  start(
    'kube-apiserver',
    bin('kube-apiserver'),
    [
      '--advertise-address=127.0.0.1',
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--etcd-servers=${etcdUrl}`,
      '--allow-privileged=true',
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      '--enable-bootstrap-token-auth=true',
      `--client-ca-file=${p('ca.crt')}`,
      `--tls-cert-file=${p('apiserver.crt')}`,
      `--tls-private-key-file=${p('apiserver.key')}`,
      `--kubelet-client-certificate=${p('apiserver-kubelet-client.crt')}`,
      `--kubelet-client-key=${p('apiserver-kubelet-client.key')}`,
      `--proxy-client-cert-file=${p('front-proxy-client.crt')}`,
      `--proxy-client-key-file=${p('front-proxy-client.key')}`,
      `--requestheader-client-ca-file=${p('front-proxy-ca.crt')}`,
      '--requestheader-allowed-names=front-proxy-client',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-username-headers=X-Remote-User',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${p('sa.pub')}`,
      `--service-account-signing-key-file=${p('sa.key')}`,
      `--service-cluster-ip-range=${env.SERVICE_CIDR}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
    ],
    dir,
    procs,
  );
  // As systemd's Restart= would on a node: the controllers start once the API server is ready (they exit
  // when RBAC's bootstrap roles are not there yet).
  const admin = ClusterClient.fromKubeconfig(
    readFileSync(p('admin.conf'), 'utf8').replace('https://127.0.0.1:6443', server),
  );
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await admin.ready();
      break;
    } catch (e) {
      if (Date.now() > deadline)
        throw new Error(
          `${(e as Error).message}\n${procs.map((x) => x.out.slice(-5).join('\n')).join('\n')}`,
        );
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  start(
    'kube-controller-manager',
    bin('kube-controller-manager'),
    [
      `--kubeconfig=${p('controller-manager.conf')}`,
      `--authentication-kubeconfig=${p('controller-manager.conf')}`,
      `--authorization-kubeconfig=${p('controller-manager.conf')}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${cmPort}`,
      '--leader-elect=false',
      '--use-service-account-credentials=true',
      '--controllers=*,bootstrapsigner,tokencleaner,-cloud-node-lifecycle',
      '--allocate-node-cidrs=true',
      `--cluster-cidr=${env.POD_CIDR}`,
      '--node-cidr-mask-size=24',
      `--service-cluster-ip-range=${env.SERVICE_CIDR}`,
      `--cluster-signing-cert-file=${p('ca.crt')}`,
      `--cluster-signing-key-file=${p('ca.key')}`,
      `--root-ca-file=${p('ca.crt')}`,
      `--service-account-private-key-file=${p('sa.key')}`,
      `--cert-dir=${join(dir, 'cm-certs')}`,
    ],
    dir,
    procs,
  );
  start(
    'kube-scheduler',
    bin('kube-scheduler'),
    [
      `--kubeconfig=${p('scheduler.conf')}`,
      `--authentication-kubeconfig=${p('scheduler.conf')}`,
      `--authorization-kubeconfig=${p('scheduler.conf')}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${schedPort}`,
      '--leader-elect=false',
      `--cert-dir=${join(dir, 'sched-certs')}`,
    ],
    dir,
    procs,
  );
  start(
    'kwok',
    bin('kwok'),
    [
      `--kubeconfig=${p('admin.conf')}`,
      `--config=${join(K8S_CACHE, 'kwok-stages.yaml')}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      `--server-address=127.0.0.1:${kwokPort}`,
    ],
    dir,
    procs,
  );
  return {
    server,
    dir,
    logs: () =>
      procs
        .map(
          (x) =>
            `--- ${x.name} (exit ${x.child.exitCode ?? x.child.signalCode ?? 'running'})\n${x.out.slice(-8).join('\n')}`,
        )
        .join('\n'),
    stop,
  };
}
