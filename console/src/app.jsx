// The shell: who is signed in (GET /auth/me decides at load), which page the hash names, the header
// and navigation, and one polite live region pages use to announce what changed.
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import { api, onSessionLost } from './api.js';
import { link, navigate, useRoute } from './router.js';
import { Session, useSession } from './session.js';
import { BusyButton, ErrorBox, Loading, PageHeading } from './components/ui.jsx';
import { LoginPage } from './pages/login.jsx';
import { SignupPage } from './pages/signup.jsx';
import { ProjectsPage } from './pages/projects.jsx';
import { ProjectPage } from './pages/project.jsx';
import { FilesPage } from './pages/files.jsx';
import { KeysPage } from './pages/keys.jsx';
import { UsagePage } from './pages/usage.jsx';
import { PluginsPage } from './pages/plugins.jsx';
import { AuditPage } from './pages/audit.jsx';

const PUBLIC = new Set(['login', 'signup']);
const ADMIN = new Set(['plugins', 'audit']);

export function App() {
  const route = useRoute();
  // status: loading (asking /auth/me), in, out; `expired` says a session ended under the user's feet.
  const [session, setSession] = useState({ status: 'loading', user: null, expired: false, error: null });
  const [announcement, setAnnouncement] = useState('');

  const loadMe = useCallback(() => {
    setSession((s) => ({ ...s, status: 'loading', error: null }));
    api
      .get('/auth/me')
      .then((user) => setSession({ status: 'in', user, expired: false, error: null }))
      .catch((error) => {
        // A 401 that no refresh could cure means "not signed in"; anything else (server down) is
        // shown, with a retry, rather than sending the user to a login that would fail too.
        if (error.status === 401 || error.sessionLost) setSession({ status: 'out', user: null, expired: false, error: null });
        else setSession({ status: 'error', user: null, expired: false, error });
      });
  }, []);

  useEffect(loadMe, [loadMe]);

  useEffect(
    () =>
      onSessionLost(() =>
        setSession((s) => (s.status === 'in' ? { status: 'out', user: null, expired: true, error: null } : s)),
      ),
    [],
  );

  // Announcements are cleared first so the same text twice is still read out.
  const announce = useCallback((text) => {
    setAnnouncement('');
    setTimeout(() => setAnnouncement(text), 50);
  }, []);

  const signedIn = useCallback((user) => {
    setSession({ status: 'in', user, expired: false, error: null });
    const next = route.query.next;
    navigate(next && next.startsWith('/') ? next : '/projects', { replace: true });
  }, [route.query.next]);

  const signedOut = useCallback(() => {
    setSession({ status: 'out', user: null, expired: false, error: null });
    navigate('/login', { replace: true });
  }, []);

  // Route guards: signed-out users go to the login (remembering where they were going), signed-in
  // users skip it, and admin pages need an admin.
  useEffect(() => {
    if (session.status === 'out' && !PUBLIC.has(route.name)) {
      const next = route.name === 'home' ? '' : `?next=${encodeURIComponent(route.path)}`;
      navigate(`/login${next}`, { replace: true });
    } else if (session.status === 'in' && (PUBLIC.has(route.name) || route.name === 'home')) {
      navigate('/projects', { replace: true });
    }
  }, [session.status, route.name, route.path]);

  const context = useMemo(() => ({ user: session.user, announce, signedIn, signedOut }), [session.user, announce, signedIn, signedOut]);

  let page;
  if (session.status === 'loading') {
    page = <Loading label="Checking your session…" testid="session-loading" />;
  } else if (session.status === 'error') {
    page = (
      <section>
        <PageHeading>Samokoder</PageHeading>
        <ErrorBox error={session.error} />
        <button type="button" class="button" onClick={loadMe} data-testid="session-retry">
          Try again
        </button>
      </section>
    );
  } else {
    page = pageFor(route, session);
  }

  return (
    <Session.Provider value={context}>
      <a class="skip-link" href="#main" onClick={skipToMain}>
        Skip to content
      </a>
      <Header route={route} session={session} />
      <main id="main" tabIndex={-1} class={`main main-${route.name}`}>
        {session.expired && PUBLIC.has(route.name) && (
          <p class="notice" role="status" data-testid="session-expired">
            Your session ended. Sign in again to continue.
          </p>
        )}
        {page}
      </main>
      <div class="sr-only" aria-live="polite" aria-atomic="true" data-testid="announcer">
        {announcement}
      </div>
    </Session.Provider>
  );
}

// The skip link targets #main, which would change the hash route; move focus without navigating.
function skipToMain(event) {
  event.preventDefault();
  const main = document.getElementById('main');
  if (main) main.focus();
}

function pageFor(route, session) {
  const p = route.params;
  if (session.status !== 'in') {
    if (route.name === 'signup') return <SignupPage />;
    if (route.name === 'login') return <LoginPage email={route.query.email} registered={route.query.registered === '1'} />;
    return <Loading label="Opening the sign-in page…" />;
  }
  if (ADMIN.has(route.name) && !session.user.is_admin) {
    return (
      <section>
        <PageHeading>Administrators only</PageHeading>
        <p>This page is for administrators. Your account is not one.</p>
      </section>
    );
  }
  switch (route.name) {
    case 'projects':
      return <ProjectsPage />;
    case 'project':
      return <ProjectPage key={p.projectId} projectId={p.projectId} runId={null} />;
    case 'run':
      return <ProjectPage key={p.projectId} projectId={p.projectId} runId={p.runId} />;
    case 'files':
      return <FilesPage key={p.projectId} projectId={p.projectId} path={p.path || ''} />;
    case 'keys':
      return <KeysPage />;
    case 'usage':
      return <UsagePage />;
    case 'plugins':
      return <PluginsPage />;
    case 'audit':
      return <AuditPage />;
    case 'home':
    case 'login':
    case 'signup':
      return <Loading label="Opening your projects…" />;
    default:
      return (
        <section>
          <PageHeading>Page not found</PageHeading>
          <p>
            There is no page at <code>{route.path}</code>. <a href={link('projects')}>Go to your projects</a>.
          </p>
        </section>
      );
  }
}

function Header({ route, session }) {
  const nav = [
    ['projects', 'Projects', ['projects', 'project', 'run', 'files']],
    ['keys', 'Provider keys', ['keys']],
    ['usage', 'Usage', ['usage']],
  ];
  if (session.user && session.user.is_admin) {
    nav.push(['admin/plugins', 'Plugins', ['plugins']], ['admin/audit', 'Audit log', ['audit']]);
  }
  return (
    <header class="site-header">
      <a class="brand" href={session.status === 'in' ? link('projects') : link('login')}>
        Samokoder
      </a>
      {session.status === 'in' && (
        <>
          <nav aria-label="Main" class="site-nav">
            <ul>
              {nav.map(([to, label, names]) => (
                <li key={to}>
                  <a href={`#/${to}`} aria-current={names.includes(route.name) ? 'page' : undefined} data-testid={`nav-${to.replace('/', '-')}`}>
                    {label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          <UserMenu user={session.user} />
        </>
      )}
    </header>
  );
}

function UserMenu({ user }) {
  const { signedOut } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const logOut = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.post('/auth/logout');
      signedOut();
    } catch (e) {
      // An expired session is signed out already; anything else is shown and the user stays in.
      if (e.sessionLost || e.status === 401) signedOut();
      else {
        setError(e);
        setBusy(false);
      }
    }
  };
  return (
    <div class="user-menu">
      <span class="user-email" data-testid="user-email">
        {user.email}
        {user.is_admin && <span class="badge badge-admin">admin</span>}
      </span>
      <BusyButton busy={busy} class="button button-small" onClick={logOut} data-testid="logout">
        Log out
      </BusyButton>
      {error && <ErrorBox error={error} onDismiss={() => setError(null)} />}
    </div>
  );
}
