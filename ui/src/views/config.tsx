/**
 * The site's resources as YAML: Networks, Profiles, SSH keys (public parts: the API never serves a private
 * key), Overlays and Clusters (the tabs are the kinds the server lists). Editing applies through
 * `POST /api/v1/apply`, the route `strata apply` uses, so validation is the server's own; a refused
 * manifest comes back with each issue's resource and field path, which this page finds in the YAML (with
 * the `yaml` library's source ranges) and marks at its line, next to the message.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { stringify } from 'yaml';
import { ApiError, api } from '../api.ts';
import { type LocatedIssue, locate } from '../locate.ts';
import type { Resource } from '../types.ts';

const EDITABLE = ['networks', 'profiles', 'sshkeys', 'overlays', 'clusters'];
const TITLES: Record<string, string> = {
  networks: 'Networks',
  profiles: 'Profiles',
  sshkeys: 'SSH keys',
  overlays: 'Overlays',
  clusters: 'Clusters',
};

interface KindInfo {
  kind: string;
  name: string;
  description: string;
}

function toYaml(r: Resource): string {
  const { name, labels, annotations } = r.metadata;
  return stringify({
    apiVersion: r.apiVersion,
    kind: r.kind,
    metadata: {
      name,
      ...(labels && Object.keys(labels).length ? { labels } : {}),
      ...(annotations && Object.keys(annotations).length ? { annotations } : {}),
    },
    spec: r.spec,
  });
}

function template(kind: string): string {
  return `apiVersion: strata.dev/v1alpha1\nkind: ${kind}\nmetadata:\n  name: \nspec: {}\n`;
}

function Editor({ initial, file, onApplied }: { initial: string; file: string; onApplied: () => void }) {
  const [text, setText] = useState(initial);
  const [issues, setIssues] = useState<LocatedIssue[]>([]);
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | undefined>();
  const area = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLPreElement>(null);
  useEffect(() => {
    setText(initial);
    setIssues([]);
    setMsg(undefined);
  }, [initial]);
  const lines = text.split('\n').length;
  const byLine = useMemo(() => {
    const m = new Map<number, LocatedIssue[]>();
    for (const i of issues) if (i.line) m.set(i.line, [...(m.get(i.line) ?? []), i]);
    return m;
  }, [issues]);

  const submit = async (dryRun: boolean) => {
    setMsg(undefined);
    setIssues([]);
    try {
      const out = await api<{ items: { kind: string; name: string; action: string }[] }>(
        'POST',
        `/api/v1/apply?file=${encodeURIComponent(file)}${dryRun ? '&dryRun=true' : ''}`,
        text,
        { contentType: 'application/yaml' },
      );
      setMsg({
        ok: true,
        text: `${dryRun ? 'Dry run: ' : ''}${out.items.map((i) => `${i.kind.toLowerCase()}/${i.name} ${i.action}`).join(', ')}`,
      });
      if (!dryRun) onApplied();
    } catch (e) {
      if (e instanceof ApiError && e.details.length) {
        setIssues(locate(text, e.details));
        setMsg({
          ok: false,
          text: `Refused: ${e.details.length} ${e.details.length === 1 ? 'error' : 'errors'}, nothing was changed.`,
        });
      } else setMsg({ ok: false, text: (e as Error).message });
    }
  };

  const goTo = (line: number) => {
    const el = area.current;
    if (!el) return;
    const offset =
      text
        .split('\n')
        .slice(0, line - 1)
        .join('\n').length + (line > 1 ? 1 : 0);
    el.focus();
    el.setSelectionRange(offset, offset + (text.split('\n')[line - 1]?.length ?? 0));
  };

  return (
    <div class="editor">
      <label for="yaml">YAML manifest ({file})</label>
      <div class={`code${issues.length ? ' invalid' : ''}`}>
        <pre class="gutter" ref={gutter} aria-hidden="true">
          {Array.from({ length: lines }, (_, i) => (
            <>
              <span class={byLine.has(i + 1) ? 'bad' : ''} data-line={i + 1}>
                {byLine.has(i + 1) ? '! ' : ''}
                {i + 1}
              </span>
              {'\n'}
            </>
          ))}
        </pre>
        <textarea
          id="yaml"
          ref={area}
          spellcheck={false}
          wrap="off"
          autocapitalize="off"
          value={text}
          aria-invalid={issues.length > 0}
          aria-describedby={issues.length ? 'yaml-errors' : undefined}
          onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
          onScroll={(e) => {
            if (gutter.current) gutter.current.scrollTop = (e.target as HTMLTextAreaElement).scrollTop;
          }}
        />
      </div>
      {issues.length > 0 && (
        <ul id="yaml-errors" class="field-errors" role="alert">
          {issues.map((i) => (
            <li data-path={i.path}>
              {i.line ? (
                <button type="button" class="link" onClick={() => goTo(i.line!)}>
                  line {i.line}
                </button>
              ) : null}{' '}
              <code class="field">{i.path || i.resource}</code>: {i.message}
            </li>
          ))}
        </ul>
      )}
      <div class="buttons">
        <button type="button" class="primary" onClick={() => void submit(false)}>
          Apply
        </button>
        <button type="button" onClick={() => void submit(true)}>
          Dry run
        </button>
      </div>
      {msg && (
        <p class={msg.ok ? 'ok' : 'error'} role={msg.ok ? 'status' : 'alert'}>
          {msg.text}
        </p>
      )}
    </div>
  );
}

export function ConfigView({ plural, name }: { plural: string; name: string }) {
  const [kinds, setKinds] = useState<KindInfo[]>([]);
  const [items, setItems] = useState<Resource[] | undefined>();
  const [current, setCurrent] = useState<Resource | undefined>();
  const [error, setError] = useState('');
  const [reload, setReload] = useState(0);

  useEffect(() => {
    void api<{ resources: KindInfo[] }>('GET', '/api/v1').then(
      (l) => setKinds(l.resources.filter((k) => EDITABLE.includes(k.name))),
      (e: Error) => setError(e.message),
    );
  }, []);
  useEffect(() => {
    setItems(undefined);
    void api<{ items: Resource[] }>('GET', `/api/v1/${encodeURIComponent(plural)}`).then(
      (l) => {
        setItems(l.items);
        setError('');
      },
      (e: Error) => setError(e.message),
    );
  }, [plural, reload]);
  useEffect(() => {
    setCurrent(undefined);
    if (!name) return;
    void api<Resource>('GET', `/api/v1/${encodeURIComponent(plural)}/${encodeURIComponent(name)}`).then(
      setCurrent,
      (e: Error) => setError(e.message),
    );
  }, [plural, name, reload]);

  const info = kinds.find((k) => k.name === plural);
  const initial = useMemo(
    () => (current ? toYaml(current) : info ? template(info.kind) : ''),
    [current, info],
  );
  const status = current?.status && Object.keys(current.status).length ? current.status : undefined;
  return (
    <section class="config" aria-labelledby="cfg-h">
      <h1 id="cfg-h">Resources</h1>
      <nav class="tabs" aria-label="Kinds">
        {kinds.map((k) => (
          <a href={`#/config/${k.name}`} aria-current={k.name === plural ? 'page' : undefined}>
            {TITLES[k.name] ?? k.kind}
          </a>
        ))}
      </nav>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {info && <p class="hint">{info.description}</p>}
      <div class="cols">
        <nav aria-label={TITLES[plural] ?? plural} class="objects">
          <ul>
            <li>
              <a href={`#/config/${plural}`} aria-current={!name ? 'page' : undefined}>
                + New {info?.kind ?? ''}
              </a>
            </li>
            {items?.map((r) => (
              <li>
                <a
                  href={`#/config/${plural}/${encodeURIComponent(r.metadata.name)}`}
                  aria-current={r.metadata.name === name ? 'page' : undefined}
                >
                  {r.metadata.name}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div>
          {(current || !name) && info && (
            <Editor
              initial={initial}
              file={`${name || `new-${info.kind.toLowerCase()}`}.yaml`}
              onApplied={() => setReload((r) => r + 1)}
            />
          )}
          {status && (
            <details open={plural === 'sshkeys'}>
              <summary>Status (measured by Strata; read-only)</summary>
              <pre>{stringify(status)}</pre>
            </details>
          )}
        </div>
      </div>
    </section>
  );
}
