// Administrators: the audit log, newest first, filtered by actor, action and time, paged by the API's
// cursor. "Newer" walks back through the cursors already used, since the API pages one way only.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { formatDateTime } from '../format.js';
import { BusyButton, ErrorBox, Field, Loading, PageHeading } from '../components/ui.jsx';

const EMPTY = { actor: '', action: '', since: '', until: '', limit: '50' };

// <input type="datetime-local"> gives local wall time without a zone; the API wants RFC 3339.
function toRfc3339(local) {
  if (!local) return '';
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? local : date.toISOString();
}

export function AuditPage() {
  const [form, setForm] = useState(EMPTY);
  const [applied, setApplied] = useState(EMPTY);
  const [cursors, setCursors] = useState([null]); // cursors[i] opens page i
  const [page, setPage] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  const fetchPage = async (filters, cursor) => {
    setBusy(true);
    setError(null);
    try {
      const query = new URLSearchParams();
      if (filters.actor.trim()) query.set('actor', filters.actor.trim());
      if (filters.action.trim()) query.set('action', filters.action.trim());
      if (filters.since) query.set('since', toRfc3339(filters.since));
      if (filters.until) query.set('until', toRfc3339(filters.until));
      if (filters.limit) query.set('limit', filters.limit);
      if (cursor) query.set('cursor', cursor);
      const answer = await api.get(`/admin/audit?${query}`);
      setPage(answer);
      return answer;
    } catch (e) {
      setError(e);
      return null;
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    fetchPage(EMPTY, null);
  }, []);

  const search = async (event) => {
    event.preventDefault();
    setApplied(form);
    setCursors([null]);
    await fetchPage(form, null);
  };
  const older = async () => {
    if (!page || !page.next_cursor) return;
    const answer = await fetchPage(applied, page.next_cursor);
    if (answer) setCursors((c) => c.concat([page.next_cursor]));
  };
  const newer = async () => {
    if (cursors.length < 2) return;
    const previous = cursors.slice(0, -1);
    const answer = await fetchPage(applied, previous[previous.length - 1]);
    if (answer) setCursors(previous);
  };
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.value });

  return (
    <section>
      <PageHeading>Audit log</PageHeading>
      <form class="form form-grid card" onSubmit={search} data-testid="audit-form" aria-busy={busy ? 'true' : undefined}>
        <Field id="audit-actor" label="Actor (user id)" error={error} path="/actor">
          {(a) => <input {...a} value={form.actor} onInput={set('actor')} data-testid="audit-actor" />}
        </Field>
        <Field id="audit-action" label="Action" error={error} path="/action" hint="Exact, e.g. auth.login or key.set">
          {(a) => <input {...a} value={form.action} onInput={set('action')} data-testid="audit-action" />}
        </Field>
        <Field id="audit-since" label="From (your time, inclusive)" error={error} path="/since">
          {(a) => <input {...a} type="datetime-local" step="1" value={form.since} onInput={set('since')} data-testid="audit-since" />}
        </Field>
        <Field id="audit-until" label="Until (exclusive)" error={error} path="/until">
          {(a) => <input {...a} type="datetime-local" step="1" value={form.until} onInput={set('until')} data-testid="audit-until" />}
        </Field>
        <Field id="audit-limit" label="Per page" error={error} path="/limit">
          {(a) => (
            <select {...a} value={form.limit} onChange={set('limit')} data-testid="audit-limit">
              {['10', '20', '50', '100', '500'].map((n) => <option key={n} value={n}>{n}</option>)}
            </select>
          )}
        </Field>
        <div class="actions">
          <BusyButton type="submit" busy={busy} class="button button-primary" data-testid="audit-submit">Search</BusyButton>
          <button type="button" class="button" onClick={() => setForm(EMPTY)}>Clear</button>
        </div>
      </form>
      <ErrorBox error={error} fields={['/actor', '/action', '/since', '/until', '/limit']} testid="audit-error" />
      {page === null && busy && <Loading label="Reading the audit log…" />}
      {page && page.items.length === 0 && <p data-testid="audit-empty">No audit events match.</p>}
      {page && page.items.length > 0 && (
        <div class="table-wrap" aria-busy={busy ? 'true' : undefined}>
          <table class="table" data-testid="audit-list">
            <caption class="sr-only">Audit events, newest first, page {cursors.length}</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Action</th>
                <th scope="col">Actor</th>
                <th scope="col">Target</th>
                <th scope="col">From</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((item) => (
                <tr key={item.id} data-testid="audit-item" data-action={item.action}>
                  <td>{formatDateTime(item.occurred_at)}</td>
                  <th scope="row"><code>{item.action}</code></th>
                  <td><code class="id">{item.actor_id || '—'}</code></td>
                  <td><code class="id">{item.target}</code></td>
                  <td>{item.source_address}</td>
                  <td><code class="detail">{item.detail && Object.keys(item.detail).length ? JSON.stringify(item.detail) : ''}</code></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav class="pager" aria-label="Audit pages">
        <BusyButton busy={false} class="button" onClick={newer} disabled={cursors.length < 2 || busy} data-testid="audit-newer">Newer</BusyButton>
        <span>Page {cursors.length}</span>
        <BusyButton busy={false} class="button" onClick={older} disabled={!page || !page.next_cursor || busy} data-testid="audit-older">Older</BusyButton>
      </nav>
    </section>
  );
}
