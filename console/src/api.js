// The one way the console talks to the server: fetch with the session cookies, the CSRF header on
// every unsafe request, a single refresh-and-retry on 401, and problem+json errors turned into
// ApiError so pages can show `title`, `detail` and the per-field `errors`.
//
// Tokens never reach JavaScript: login and refresh set HttpOnly cookies, and the only cookie read here
// is the CSRF one, which exists to be read (double-submit). The tokens the login answer also carries in
// its body (for API clients) are ignored on purpose.

export const API = '/api/v1';

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
// Production names it __Host-samokoder_csrf (Secure, host-only); development samokoder_csrf.
const CSRF_COOKIES = ['__Host-samokoder_csrf', 'samokoder_csrf'];

export class ApiError extends Error {
  constructor({ status = 0, type = '', title = '', detail = '', errors = [], requestId = '', retryAfter = null }) {
    super(detail ? `${title}: ${detail}` : title);
    this.name = 'ApiError';
    this.status = status;
    this.type = type;
    this.title = title;
    this.detail = detail;
    this.errors = Array.isArray(errors) ? errors : [];
    this.requestId = requestId;
    this.retryAfter = retryAfter;
    this.sessionLost = false;
  }

  // The last part of the problem type, e.g. "validation_failed", for branching on a kind of problem.
  get code() {
    return this.type ? this.type.slice(this.type.lastIndexOf('/') + 1) : '';
  }

  // The message of the first error whose JSON pointer is `path` ("/email"), or null.
  fieldError(path) {
    const found = this.errors.find((e) => e.path === path);
    return found ? found.message : null;
  }
}

export function csrfToken() {
  const jar = document.cookie ? document.cookie.split('; ') : [];
  for (const name of CSRF_COOKIES) {
    const entry = jar.find((c) => c.startsWith(`${name}=`));
    if (entry) return decodeURIComponent(entry.slice(name.length + 1));
  }
  return '';
}

// Path segments percent-encoded one by one; a file path keeps its slashes as separators.
export function seg(value) {
  return encodeURIComponent(String(value));
}
export function filePath(path) {
  return path.split('/').map(seg).join('/');
}

const sessionLostListeners = new Set();
export function onSessionLost(listener) {
  sessionLostListeners.add(listener);
  return () => sessionLostListeners.delete(listener);
}
function sessionLost() {
  for (const listener of sessionLostListeners) listener();
}

function networkError(error) {
  return new ApiError({
    status: 0,
    type: 'network',
    title: 'Cannot reach the server',
    detail: `Check your connection and try again (${error.message}).`,
  });
}

async function problemOf(response) {
  let body = null;
  const type = response.headers.get('Content-Type') || '';
  try {
    body = type.includes('json') ? await response.json() : null;
  } catch {
    body = null;
  }
  const retryAfter = Number(response.headers.get('Retry-After')) || null;
  let detail = body && typeof body.detail === 'string' ? body.detail : '';
  if (retryAfter && !detail.includes('again')) {
    detail = `${detail ? `${detail}. ` : ''}Try again in ${retryAfter} s.`;
  }
  return new ApiError({
    status: response.status,
    type: (body && body.type) || '',
    title: (body && body.title) || response.statusText || `HTTP ${response.status}`,
    detail,
    errors: body && body.errors,
    requestId: (body && body.request_id) || response.headers.get('X-Request-Id') || '',
    retryAfter,
  });
}

// One refresh at a time. Refresh tokens rotate and a used-up one presented again revokes the whole
// login (theft detection), so two refreshes racing, in this tab or another, would sign the user out.
// Within the tab one promise is shared; across tabs a Web Lock serialises them, and whoever gets the
// lock second sees that the CSRF cookie changed meanwhile (every refresh sets a new one) and only
// retries its request.
let refreshing = null;

function refreshSession(csrfSeen) {
  if (!refreshing) {
    const attempt = async () => {
      const current = csrfToken();
      if (current && current !== csrfSeen) return true;
      if (!current) return false;
      let response;
      try {
        response = await fetch(`${API}/auth/refresh`, {
          method: 'POST',
          headers: { 'X-CSRF-Token': current, Accept: 'application/json' },
          credentials: 'same-origin',
          cache: 'no-store',
        });
      } catch (error) {
        throw networkError(error);
      }
      return response.ok;
    };
    const locked =
      typeof navigator !== 'undefined' && navigator.locks && navigator.locks.request
        ? navigator.locks.request('samokoder-session-refresh', attempt)
        : attempt();
    refreshing = locked.finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// request(method, path, options): the parsed JSON answer (null for 204, text for a text body, the
// Response itself with `raw`). Throws ApiError. Options:
//   json      a value sent as the JSON body
//   body      a raw body (string, Blob), sent as it is
//   headers   extra request headers
//   accept    the Accept header (default application/json)
//   raw       return the Response (for blobs and headers)
//   auth      false for login/register: their 401 means wrong credentials, not an expired session
//   signal    an AbortSignal
export async function request(method, path, options = {}) {
  const { json, body, headers = {}, accept = 'application/json', raw = false, auth = true, signal } = options;
  const url = path.startsWith('/') && !path.startsWith(API) ? `${API}${path}` : path;

  const send = async () => {
    const sent = { Accept: accept, ...headers };
    let payload = body;
    if (json !== undefined) {
      sent['Content-Type'] = 'application/json';
      payload = JSON.stringify(json);
    }
    const csrf = csrfToken();
    if (UNSAFE.has(method) && csrf) sent['X-CSRF-Token'] = csrf;
    try {
      const response = await fetch(url, {
        method,
        headers: sent,
        body: payload,
        credentials: 'same-origin',
        cache: 'no-store',
        signal,
      });
      return { response, csrf };
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      throw networkError(error);
    }
  };

  let { response, csrf } = await send();
  if (response.status === 401 && auth) {
    const refreshed = await refreshSession(csrf);
    if (refreshed) ({ response } = await send());
    if (!refreshed || response.status === 401) {
      const error = await problemOf(response);
      error.sessionLost = true;
      sessionLost();
      throw error;
    }
  }
  if (!response.ok) throw await problemOf(response);
  if (raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get('Content-Type') || '';
  if (type.includes('json')) return response.json();
  return response.text();
}

export const api = {
  get: (path, options) => request('GET', path, options),
  post: (path, json, options) => request('POST', path, { ...options, json }),
  put: (path, json, options) => request('PUT', path, { ...options, json }),
  patch: (path, json, options) => request('PATCH', path, { ...options, json }),
  del: (path, options) => request('DELETE', path, options),
};

// Every page of a cursor-paginated list (`items`, `next_cursor`), at most `max` items, for lists the
// console shows whole (a project's file tree).
export async function getAll(path, { max = 5000, limit = 500 } = {}) {
  const items = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: String(limit) });
    if (cursor) query.set('cursor', cursor);
    const page = await api.get(`${path}${path.includes('?') ? '&' : '?'}${query}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return { items, truncated: Boolean(cursor) };
}
