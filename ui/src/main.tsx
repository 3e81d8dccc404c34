/**
 * The Strata web UI: a login page that asks for an API token, then the fleet, a node's story, the work
 * orders, the networks' health and the site's resources as YAML. Routing is by the URL's hash (#/node/x),
 * so the server serves one page and the browser's back button works.
 *
 * Preact because it gives components and hooks with a 4 KB runtime and a keyed diff (what the windowed
 * fleet list needs), is typed by the same tsc as the rest of Strata, and needs no compiler of its own:
 * Vite's built-in transform handles its JSX.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, getToken, setToken, whenUnauthorized } from './api.ts';
import { Fleet } from './fleet.ts';
import type { Ladder } from './types.ts';
import { ConfigView } from './views/config.tsx';
import { FleetView } from './views/fleet.tsx';
import { NetworksView } from './views/networks.tsx';
import { NodeView } from './views/node.tsx';
import { WorkOrdersView } from './views/workorders.tsx';
import './style.css';

function useHash(): string {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const on = () => setHash(location.hash || '#/');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function Login({ onLogin }: { onLogin: (token: string) => void }) {
  const [token, setValue] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await api('GET', '/api/v1', undefined, { token: token.trim() });
      onLogin(token.trim());
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? 'This token is not known to the server (or was revoked). strata up printed the admin token once; it is also in .strata/admin-token, and "strata token create NAME --role viewer" makes more.'
          : (err as Error).message,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <h1>Strata</h1>
      <form onSubmit={submit} aria-describedby={error ? 'login-error' : undefined}>
        <label for="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          required
          value={token}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        />
        <p class="hint">
          The token <code>strata up</code> printed, or one from <code>strata token create</code>. It is kept
          in this tab only.
        </p>
        <button type="submit" disabled={busy}>
          {busy ? 'Checking…' : 'Log in'}
        </button>
        {error && (
          <p id="login-error" class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

const NAV: [string, string][] = [
  ['#/', 'Fleet'],
  ['#/workorders', 'Work orders'],
  ['#/networks', 'Networks'],
  ['#/config', 'Resources'],
];

function App() {
  const [token, setTok] = useState(getToken());
  const [fleet, setFleet] = useState<Fleet | undefined>();
  const [ladder, setLadder] = useState<Ladder | undefined>();
  const hash = useHash();

  useEffect(() => {
    whenUnauthorized(() => {
      setToken(null);
      setTok(null);
    });
  }, []);
  useEffect(() => {
    if (!token) return;
    const f = new Fleet();
    setFleet(f);
    void f.start();
    void api<Ladder>('GET', '/api/v1/ladder').then(setLadder, () => {});
    return () => f.stop();
  }, [token]);

  if (!token)
    return (
      <Login
        onLogin={(t) => {
          setToken(t);
          setTok(t);
        }}
      />
    );
  const [, page = '', arg = '', arg2 = ''] = hash.split('/').map((s) => decodeURIComponent(s));
  let view = <p>Loading…</p>;
  if (fleet && ladder) {
    if (page === 'node' && arg) view = <NodeView name={arg} ladder={ladder} />;
    else if (page === 'workorders') view = <WorkOrdersView />;
    else if (page === 'networks') view = <NetworksView />;
    else if (page === 'config') view = <ConfigView plural={arg || 'networks'} name={arg2} />;
    else view = <FleetView fleet={fleet} ladder={ladder} />;
  }
  const current = `#/${page}`;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Strata</span>
        <nav aria-label="Main">
          {NAV.map(([href, label]) => (
            <a
              href={href}
              aria-current={
                current === href || (href === '#/' && (page === '' || page === 'node')) ? 'page' : undefined
              }
            >
              {label}
            </a>
          ))}
        </nav>
        <button
          type="button"
          class="link"
          onClick={() => {
            setToken(null);
            setTok(null);
          }}
        >
          Log out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {view}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
