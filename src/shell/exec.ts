/**
 * The exec stream behind `strata ssh`, as `kubectl exec` works: the CLI asks the API to upgrade
 * `POST /api/v1/nodes/NAME/exec` to the `strata-exec` protocol, and from then on both sides send frames
 * (protocol.ts). The server opens the session on the shell worker of the node's segment and relays bytes
 * between the frames and the session's subjects. So the private key never leaves the server side, and the
 * CLI needs nothing but the API address and a token.
 */
import { randomUUID } from 'node:crypto';
import type { NodeResource } from '../core/kinds/node.ts';
import type { ManagerContext } from '../core/layer.ts';
import { StrataError } from '../core/resources/errors.ts';
import { managedKey } from './client.ts';
import {
  channel,
  EXEC_UPGRADE,
  encodeFrame,
  FrameDecoder,
  type SessionInput,
  type SessionOpen,
  type SessionOutput,
  subjects,
} from './protocol.ts';
import { resolveTarget } from './target.ts';

export const EXEC_PATH = '/api/v1/nodes/:name/exec';

export function addExecRoute(ctx: ManagerContext): void {
  ctx.router.add('POST', EXEC_PATH, async ({ req, res, params, query }) => {
    if ((req.headers.upgrade ?? '').toLowerCase() !== EXEC_UPGRADE)
      throw new StrataError(
        400,
        'BadRequest',
        `exec is a stream: send "Connection: Upgrade" and "Upgrade: ${EXEC_UPGRADE}" (strata ssh does)`,
      );
    const node = (await ctx.resources.mustGet('Node', params.name!)) as unknown as NodeResource;
    const user = query.get('user') ?? 'root';
    if (!/^[a-z_][a-z0-9_-]*$/i.test(user))
      throw new StrataError(422, 'Invalid', `user: "${user}" is not a user name`);
    const cols = Number(query.get('cols') ?? 0);
    const rows = Number(query.get('rows') ?? 0);
    const tty = query.get('tty') === 'true' ? { cols: cols || 80, rows: rows || 24 } : undefined;
    const command = query.get('command') || undefined;
    let target: ReturnType<typeof resolveTarget>;
    let privateKey: string;
    try {
      target = resolveTarget(node);
      privateKey = await managedKey(ctx);
    } catch (err) {
      throw new StrataError(409, 'Conflict', (err as Error).message);
    }

    const id = randomUUID();
    const socket = req.socket;
    let upgraded = false;
    const early: Buffer[] = [];
    const send = (frame: Buffer) => {
      if (!upgraded) early.push(frame);
      else if (!socket.destroyed) socket.write(frame);
    };
    let ended!: () => void;
    const finished = new Promise<void>((r) => {
      ended = r;
    });
    const out = await ctx.transport.subscribe<SessionOutput>(subjects.sessionOut(id), (m) => {
      if ('stdout' in m) send(encodeFrame(channel.stdout, Buffer.from(m.stdout, 'base64')));
      else if ('stderr' in m) send(encodeFrame(channel.stderr, Buffer.from(m.stderr, 'base64')));
      else {
        send(
          encodeFrame(
            channel.exit,
            JSON.stringify(m.error ? { code: m.exit, error: m.error } : { code: m.exit }),
          ),
        );
        ended();
      }
    });
    try {
      await ctx.transport.request<SessionOpen, { ok: boolean }>(
        target.openSubject,
        {
          id,
          host: target.host,
          port: target.port,
          user,
          privateKey,
          knownHostKeys: target.hostKeys,
          ...(command ? { command } : {}),
          ...(tty ? { tty } : {}),
        },
        { timeout: 30_000 },
      );
    } catch (err) {
      await out.unsubscribe();
      throw new StrataError(
        503,
        'ServiceUnavailable',
        `the shell worker of network "${target.network}" did not open the session: ${(err as Error).message}`,
      );
    }
    ctx.hub.record({
      kind: 'Node',
      name: node.metadata.name,
      source: 'shell-manager',
      reason: 'ShellSession',
      message: `${tty ? 'interactive ' : ''}shell session as ${user} through ${target.network}${command ? `: ${command.slice(0, 200)}` : ''}`,
    });

    res.writeHead(101, { connection: 'Upgrade', upgrade: EXEC_UPGRADE });
    res.flushHeaders();
    upgraded = true;
    for (const f of early.splice(0)) socket.write(f);

    const input = (m: SessionInput) => void ctx.transport.publish(subjects.sessionIn(id), m).catch(() => {});
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of decoder.push(chunk)) {
          if (f.ch === channel.stdin) input({ stdin: f.payload.toString('base64') });
          else if (f.ch === channel.eof) input({ eof: true });
        }
      } catch {
        socket.destroy();
      }
    });
    socket.on('close', () => {
      input({ close: true });
      ended();
    });
    await finished;
    await out.unsubscribe();
    socket.end();
  });
  ctx.router.describe('POST', EXEC_PATH, { scope: { node: 'name' } });
}
