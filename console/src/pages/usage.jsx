// Tokens and cost of the user's model requests over whole UTC days: totals, by provider, by model, by
// day, and the budgets in force (GET /api/v1/usage).
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { formatCost, formatDateTime, formatInt, formatNumber, utcDay } from '../format.js';
import { BusyButton, ErrorBox, Field, Loading, PageHeading } from '../components/ui.jsx';

function defaultRange() {
  const until = new Date();
  const since = new Date(until.getTime() - 29 * 24 * 3600 * 1000);
  return { since: utcDay(since), until: utcDay(until) };
}

export function UsagePage() {
  const [range, setRange] = useState(defaultRange);
  const [usage, setUsage] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  const load = async (event) => {
    if (event) event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const query = new URLSearchParams();
      if (range.since) query.set('since', range.since);
      if (range.until) query.set('until', range.until);
      setUsage(await api.get(`/usage?${query}`));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    load();
  }, []);

  return (
    <section>
      <PageHeading>Usage</PageHeading>
      <form class="form form-inline card" onSubmit={load} data-testid="usage-form" aria-busy={busy ? 'true' : undefined}>
        <Field id="usage-since" label="From (UTC day)" error={error} path="/since">
          {(a) => <input {...a} type="date" value={range.since} onInput={(e) => setRange({ ...range, since: e.currentTarget.value })} data-testid="usage-since" />}
        </Field>
        <Field id="usage-until" label="To (UTC day, inclusive)" error={error} path="/until">
          {(a) => <input {...a} type="date" value={range.until} onInput={(e) => setRange({ ...range, until: e.currentTarget.value })} data-testid="usage-until" />}
        </Field>
        <BusyButton type="submit" busy={busy} class="button button-primary" data-testid="usage-submit">Show</BusyButton>
      </form>
      <ErrorBox error={error} fields={['/since', '/until']} testid="usage-error" />
      {usage === null && busy && <Loading label="Adding up your usage…" />}
      {usage && <UsageReport usage={usage} />}
    </section>
  );
}

const COLUMNS = [
  ['requests', 'Requests', formatInt],
  ['prompt_tokens', 'Prompt tokens', formatInt],
  ['completion_tokens', 'Completion tokens', formatInt],
  ['cached_prompt_tokens', 'Cached prompt tokens', formatInt],
  ['cost_micro_usd', 'Cost', formatCost],
];

function UsageReport({ usage }) {
  const t = usage.totals || {};
  return (
    <div data-testid="usage-report">
      <p class="muted">
        {usage.since} to {usage.until} (UTC).
      </p>
      <dl class="stats" data-testid="usage-totals">
        <div><dt>Requests</dt><dd>{formatInt(t.requests)}</dd></div>
        <div><dt>Tokens</dt><dd>{formatInt((t.prompt_tokens || 0) + (t.completion_tokens || 0))}</dd></div>
        <div><dt>Cached prompt tokens</dt><dd>{formatInt(t.cached_prompt_tokens)}</dd></div>
        <div><dt>Cost</dt><dd data-testid="usage-total-cost">{formatCost(t.cost_micro_usd)}</dd></div>
      </dl>
      <Budgets budgets={usage.budgets} />
      <UsageTable title="By model" testid="usage-by-model" rows={usage.by_model} keys={[['provider', 'Provider'], ['model', 'Model']]} />
      <UsageTable title="By day" testid="usage-by-day" rows={usage.by_day}
        keys={[['day', 'Day'], ...(usage.by_day.some((r) => r.user_id) ? [['user_id', 'User']] : []), ['provider', 'Provider'], ['model', 'Model']]} />
      <UsageTable title="By provider" testid="usage-by-provider" rows={usage.by_provider} keys={[['provider', 'Provider']]} />
    </div>
  );
}

function UsageTable({ title, rows, keys, testid }) {
  const id = `${testid}-title`;
  return (
    <section aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {(!rows || rows.length === 0) ? (
        <p class="muted">No requests in this range.</p>
      ) : (
        <div class="table-wrap">
          <table class="table table-numbers" data-testid={testid}>
            <thead>
              <tr>
                {keys.map(([k, label]) => <th key={k} scope="col">{label}</th>)}
                {COLUMNS.map(([k, label]) => <th key={k} scope="col" class="num">{label}</th>)}
              </tr>
            </thead>
            <tbody>
              {rows.map((row, i) => (
                <tr key={i} data-testid="usage-row">
                  {keys.map(([k], j) => (j === 0 ? <th key={k} scope="row">{row[k]}</th> : <td key={k}>{row[k]}</td>))}
                  {COLUMNS.map(([k, , format]) => <td key={k} class="num">{format(row[k])}</td>)}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

const BUDGET_NAMES = {
  user_daily_tokens: 'Your tokens today',
  user_daily_cost_usd: 'Your cost today (USD)',
  run_tokens: 'Tokens per run',
  run_cost_usd: 'Cost per run (USD)',
};

function Budgets({ budgets }) {
  if (!budgets) return null;
  const entries = Object.entries(budgets).filter(([, v]) => v && typeof v === 'object');
  if (entries.length === 0) return null;
  return (
    <section aria-labelledby="budgets-title" data-testid="usage-budgets">
      <h2 id="budgets-title">Budgets</h2>
      <ul class="budgets">
        {entries.map(([name, b]) => (
          <li key={name}>
            <span>{BUDGET_NAMES[name] || name}</span>
            <meter min={0} max={b.limit} value={b.used} aria-label={BUDGET_NAMES[name] || name} />
            <span>{formatNumber(b.used)} of {formatNumber(b.limit)} used, {formatNumber(b.remaining)} left</span>
          </li>
        ))}
      </ul>
      {budgets.resets_at && <p class="muted">Daily budgets reset {formatDateTime(budgets.resets_at)}.</p>}
    </section>
  );
}
