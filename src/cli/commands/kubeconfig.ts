/**
 * `strata kubeconfig CLUSTER`: prints the admin kubeconfig of a Cluster Strata made, for kubectl
 * (`strata kubeconfig lab > ~/.kube/config`). It holds the cluster's admin client key, so the server
 * gives it to admin tokens only, and this command writes it to standard output and nowhere else.
 */
import type { Command } from 'commander';
import { client, examples, out } from '../common.ts';

export function registerKubeconfigCommand(program: Command): void {
  examples(
    program
      .command('kubeconfig')
      .description("print a Cluster's admin kubeconfig for kubectl (admin token needed)")
      .argument('<cluster>')
      .action(async (name: string, _o: unknown, cmd: Command) => {
        const r = await client(cmd).request<{ kubeconfig: string }>(
          'GET',
          `/api/v1/clusters/${encodeURIComponent(name)}/kubeconfig`,
        );
        out(r.kubeconfig);
      }),
    ['strata kubeconfig lab > lab.kubeconfig && kubectl --kubeconfig lab.kubeconfig get nodes'],
  );
}
