// Hash routing: every page lives under `#/...`, so the server only ever serves `/` and `/assets/*`
// and a reload of any page asks for the same index.html.
import { useEffect, useState } from 'preact/hooks';

// Patterns in match order; `*rest` takes the remainder of the path (a file path with slashes).
const ROUTES = [
  ['login', '/login'],
  ['signup', '/signup'],
  ['projects', '/projects'],
  ['files', '/projects/:projectId/files/*path'],
  ['files', '/projects/:projectId/files'],
  ['run', '/projects/:projectId/runs/:runId'],
  ['project', '/projects/:projectId'],
  ['keys', '/keys'],
  ['usage', '/usage'],
  ['plugins', '/admin/plugins'],
  ['audit', '/admin/audit'],
];

function decode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

export function parseHash(hash) {
  const raw = hash.replace(/^#/, '') || '/';
  const [pathPart, queryPart = ''] = raw.split('?', 2);
  const path = pathPart.startsWith('/') ? pathPart : `/${pathPart}`;
  const query = Object.fromEntries(new URLSearchParams(queryPart));
  const parts = path.split('/').filter(Boolean);
  for (const [name, pattern] of ROUTES) {
    const want = pattern.split('/').filter(Boolean);
    const params = {};
    let ok = true;
    for (let i = 0; i < want.length; i++) {
      const w = want[i];
      if (w.startsWith('*')) {
        if (i >= parts.length) ok = false;
        else params[w.slice(1)] = parts.slice(i).map(decode).join('/');
        break;
      }
      if (i >= parts.length) {
        ok = false;
        break;
      }
      if (w.startsWith(':')) params[w.slice(1)] = decode(parts[i]);
      else if (w !== parts[i]) ok = false;
      if (!ok) break;
    }
    const exact = want.some((w) => w.startsWith('*')) ? parts.length >= want.length : parts.length === want.length;
    if (ok && exact) return { name, params, query, path };
  }
  return { name: parts.length === 0 ? 'home' : 'notfound', params: {}, query, path };
}

// Builds a `#/...` link from segments, percent-encoding each one.
export function link(...segments) {
  return `#/${segments.map((s) => String(s).split('/').map(encodeURIComponent).join('/')).join('/')}`;
}

export function navigate(hash, { replace = false } = {}) {
  const target = hash.startsWith('#') ? hash : `#${hash}`;
  if (replace) {
    history.replaceState(null, '', target);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    window.location.hash = target;
  }
}

export function useRoute() {
  const [route, setRoute] = useState(() => parseHash(window.location.hash));
  useEffect(() => {
    const update = () => setRoute(parseHash(window.location.hash));
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return route;
}
