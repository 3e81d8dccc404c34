/**
 * `version` (the client's and, from /version, the server's) and `completion bash|zsh|fish`. The completion
 * scripts are generated from the command tree itself, so a new verb or flag completes without anyone
 * remembering to add it; object names complete by asking the server (`strata get KIND -o name`).
 */
import type { Command } from 'commander';
import { allKinds } from '../../core/resources/kinds.ts';
import { VERSION } from '../../version.ts';
import { CliError } from '../client.ts';
import { client, examples, out } from '../common.ts';

const NAME_VERBS = ['get', 'describe', 'delete', 'edit', 'label', 'annotate', 'wait', 'events'];

function bash(program: Command): string {
  const flags = (c: Command) => c.options.flatMap((o) => [o.long, o.short].filter(Boolean)).join(' ');
  const kinds = allKinds()
    .flatMap((k) => [k.plural, k.kind.toLowerCase()])
    .join(' ');
  const cases = program.commands.map((c) => {
    const subs = c.commands.map((s) => s.name()).join(' ');
    const inner = c.commands.map((s) => `        ${s.name()}) words="${flags(s)}" ;;`).join('\n');
    return subs
      ? `    ${c.name()})\n      case "$sub" in\n        "") words="${subs} ${flags(c)}" ;;\n${inner}\n      esac ;;`
      : `    ${c.name()}) words="${flags(c)}" ;;`;
  });
  return `# strata bash completion: source <(strata completion bash)
_strata() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmd="" sub="" i w words=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    if [[ -z "$cmd" ]]; then cmd="$w"; elif [[ -z "$sub" ]]; then sub="$w"; fi
  done
  case "$cmd" in
    "") words="${program.commands.map((c) => c.name()).join(' ')}" ;;
${cases.join('\n')}
  esac
  if [[ "$cur" != -* ]]; then
    case "$cmd" in
      ${NAME_VERBS.join('|')})
        if [[ -z "$sub" ]]; then words="$words ${kinds}"
        else words="$words $(strata get "$sub" -o name 2>/dev/null | cut -d/ -f2)"; fi ;;
    esac
  fi
  COMPREPLY=($(compgen -W "$words ${flags(program)}" -- "$cur"))
}
complete -F _strata strata
`;
}

function zsh(program: Command): string {
  return `#compdef strata
# strata zsh completion: source <(strata completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash(program)}`;
}

function fish(program: Command): string {
  const lines = ['# strata fish completion: strata completion fish | source', 'complete -c strata -f'];
  for (const c of program.commands) {
    lines.push(
      `complete -c strata -n __fish_use_subcommand -a ${c.name()} -d ${JSON.stringify(c.description().slice(0, 60))}`,
    );
    for (const o of c.options)
      if (o.long)
        lines.push(`complete -c strata -n "__fish_seen_subcommand_from ${c.name()}" -l ${o.long.slice(2)}`);
    for (const s of c.commands)
      lines.push(`complete -c strata -n "__fish_seen_subcommand_from ${c.name()}" -a ${s.name()}`);
  }
  const kinds = allKinds()
    .map((k) => k.plural)
    .join(' ');
  lines.push(`complete -c strata -n "__fish_seen_subcommand_from ${NAME_VERBS.join(' ')}" -a "${kinds}"`);
  for (const o of program.options)
    if (o.long) lines.push(`complete -c strata -l ${o.long.slice(2)} -d ${JSON.stringify(o.description)}`);
  return `${lines.join('\n')}\n`;
}

export function registerVersionCommands(program: Command): void {
  examples(
    program
      .command('version')
      .description("show the client's version and the server's (from /version)")
      .option('--client', 'the client only: do not ask a server')
      .option('-o, --output <format>', 'text or json', 'text'),
    ['strata version', 'strata version --client', 'strata version -o json'],
  ).action(async (o, cmd: Command) => {
    const clientInfo = { version: VERSION, apiVersion: 'strata.dev/v1alpha1' };
    let serverInfo: { version?: string; apiVersion?: string } | undefined;
    let err: CliError | undefined;
    if (!o.client) {
      try {
        serverInfo = await client(cmd).request('GET', '/version');
      } catch (e) {
        if (!(e instanceof CliError)) throw e;
        err = /^Error from server \(NotFound\)/.test(e.message)
          ? new CliError(
              `error: the server at ${client(cmd).server} has no /version: it is older than this client`,
            )
          : e;
      }
    }
    if (o.output === 'json')
      out(
        JSON.stringify(
          { clientVersion: clientInfo, ...(serverInfo ? { serverVersion: serverInfo } : {}) },
          null,
          2,
        ),
      );
    else {
      out(`Client Version: ${VERSION}`);
      if (serverInfo)
        out(`Server Version: ${serverInfo.version ?? 'unknown'} (API ${serverInfo.apiVersion ?? 'unknown'})`);
    }
    if (err) throw err;
  });

  examples(
    program
      .command('completion')
      .description('print a shell completion script')
      .argument('<shell>', 'bash, zsh or fish'),
    [
      'source <(strata completion bash)       # in ~/.bashrc',
      'source <(strata completion zsh)        # in ~/.zshrc',
      'strata completion fish | source        # in ~/.config/fish/config.fish',
    ],
  ).action((shell: string) => {
    const gen = { bash, zsh, fish }[shell as 'bash' | 'zsh' | 'fish'];
    if (!gen) throw new CliError(`error: unsupported shell "${shell}" (one of: bash, zsh, fish)`);
    process.stdout.write(gen(program));
  });
}
