/**
 * Step 0 by hand: the work orders of the human provider, and power through a node's hardware provider.
 */
import { Argument, type Command } from 'commander';
import { client } from '../common.ts';
import { table } from '../print.ts';

export function registerHardwareCommands(program: Command): void {
  const wo = program.command('workorder').alias('workorders').description('work orders for the human steps');
  wo.command('list', { isDefault: true })
    .description('open and done work orders')
    .action(async (_o, cmd: Command) => {
      const out = await client(cmd).request<{
        items: { node: string; action: string; state: string; instructions: string }[];
      }>('GET', '/api/v1/workorders');
      if (!out.items.length) return void process.stderr.write('No work orders.\n');
      process.stdout.write(
        table([
          ['NODE', 'ACTION', 'STATE', 'INSTRUCTIONS'],
          ...out.items.map((w) => [w.node, w.action, w.state, w.instructions]),
        ]) + '\n',
      );
    });
  wo.command('done')
    .description('confirm that the work order of a node is done')
    .argument('<node>')
    .option('--by <who>', 'who did it', process.env.USER ?? 'cli')
    .action(async (node: string, o, cmd: Command) => {
      await client(cmd).request(
        'POST',
        `/api/v1/workorders/${encodeURIComponent(node)}/done`,
        JSON.stringify({ by: o.by }),
      );
      process.stdout.write(`workorder/${node} done\n`);
    });

  program
    .command('power')
    .description('switch a node on, off or through a cycle with its hardware provider (lab, BMC)')
    .argument('<node>')
    .addArgument(new Argument('<op>', 'what to do').choices(['on', 'off', 'cycle', 'status']))
    .action(async (name: string, op: string, _o, cmd: Command) => {
      const r = await client(cmd).request<{ state: string; message?: string }>(
        'POST',
        `/api/v1/nodes/${encodeURIComponent(name)}/power`,
        JSON.stringify({ op }),
      );
      process.stdout.write(`node/${name} power ${r.state}${r.message ? ` (${r.message})` : ''}\n`);
    });
}
