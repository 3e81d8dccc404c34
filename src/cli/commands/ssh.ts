/**
 * `strata ssh NODE [command...]`: a shell (or one command) on a node through the API's exec stream, as
 * `kubectl exec` works. The server's shell layer runs the SSH session inside the node's segment with the
 * managed key and the node's pinned host key; this command only relays bytes (a TTY in raw mode when
 * interactive), so it needs the API address and a token, never the server's data directory or key. A
 * command's remote exit status becomes this command's exit status.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Command } from 'commander';
import { channel, EXEC_UPGRADE, encodeFrame, FrameDecoder } from '../../shell/protocol.ts';
import { CliError } from '../client.ts';
import { client } from '../common.ts';
import { tlsOptions } from '../tls.ts';

export function registerSshCommand(program: Command): void {
  program
    .command('ssh')
    .description(
      "open a shell (or run a command) on a node with Strata's managed key and the node's pinned host key, through the API",
    )
    .argument('<node>')
    .argument('[command...]')
    .option('-l, --user <user>', 'remote user', 'root')
    .action(async (name: string, command: string[], o: { user: string }, cmd: Command) => {
      const c = client(cmd);
      const interactive = !command.length && Boolean(process.stdin.isTTY);
      const q = new URLSearchParams({ user: o.user });
      if (command.length) q.set('command', command.join(' '));
      if (interactive) {
        q.set('tty', 'true');
        q.set('cols', String(process.stdout.columns ?? 80));
        q.set('rows', String(process.stdout.rows ?? 24));
      }
      const url = new URL(`${c.server}/api/v1/nodes/${encodeURIComponent(name)}/exec?${q}`);
      process.exitCode = await execStream(url, c.headers(), interactive, tlsOptions(c.conn.tls));
    });
}

/** Opens the exec stream and relays stdin, stdout and stderr until the remote side exits. */
function execStream(
  url: URL,
  headers: Record<string, string>,
  interactive: boolean,
  tls: ConnectionOptions,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      ...(url.protocol === 'https:' ? tls : {}),
      method: 'POST',
      headers: { ...headers, connection: 'Upgrade', upgrade: EXEC_UPGRADE },
    });
    req.on('error', (e) =>
      reject(
        new CliError(
          `cannot reach the Strata API at ${url.origin} (${(e as { code?: string }).code ?? e.message}): is "strata up" running? (--server / STRATA_SERVER)`,
        ),
      ),
    );
    req.on('response', (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => {
        let st: { reason?: string; message?: string } = {};
        try {
          st = JSON.parse(body);
        } catch {
          st = { message: body.trim() || res.statusMessage };
        }
        reject(new CliError(`Error from server (${st.reason ?? res.statusCode}): ${st.message}`));
      });
    });
    req.on('upgrade', (_res, socket: Socket, head: Buffer) => {
      const stdin = process.stdin;
      const restore = () => {
        if (interactive && stdin.isTTY) stdin.setRawMode(false);
        stdin.removeAllListeners('data');
        stdin.destroy();
      };
      const decoder = new FrameDecoder();
      let code: number | undefined;
      const onData = (chunk: Buffer) => {
        for (const f of decoder.push(chunk)) {
          if (f.ch === channel.stdout) process.stdout.write(f.payload);
          else if (f.ch === channel.stderr) process.stderr.write(f.payload);
          else if (f.ch === channel.exit) {
            const st = JSON.parse(f.payload.toString()) as { code: number; error?: string };
            if (st.error) process.stderr.write(`strata ssh: ${st.error}\n`);
            code = st.code;
            socket.end();
          }
        }
      };
      socket.on('data', onData);
      socket.on('close', () => {
        restore();
        if (code === undefined)
          process.stderr.write('strata ssh: the session ended without an exit status\n');
        resolve(code ?? 255);
      });
      if (head.length) onData(head);
      if (interactive) stdin.setRawMode(true);
      stdin.on('data', (d: Buffer) => socket.write(encodeFrame(channel.stdin, d)));
      stdin.once('end', () => socket.write(encodeFrame(channel.eof, '')));
      stdin.resume();
    });
    req.end();
  });
}
