// Administrators: every configured plugin with its state and the reason of a failed load, and a reload
// (plus enable / disable) per plugin. GET /api/v1/plugins includes failure_message for an admin's
// session only.
import { useEffect, useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { formatDateTime } from '../format.js';
import { BusyButton, ErrorBox, Loading, PageHeading, StateBadge, useConfirm } from '../components/ui.jsx';

export function PluginsPage() {
  const [plugins, setPlugins] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(false);
  const [confirmDialog, confirm] = useConfirm();

  const load = async () => {
    setLoading(true);
    setError(null);
    try {
      setPlugins((await api.get('/plugins')).items);
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    load();
  }, []);

  const replace = (plugin) => setPlugins((old) => old.map((p) => (p.id === plugin.id ? plugin : p)));

  return (
    <section>
      <div class="page-head">
        <PageHeading>Plugins</PageHeading>
        <BusyButton busy={loading} class="button button-small" onClick={load} data-testid="plugins-refresh">Refresh</BusyButton>
      </div>
      <ErrorBox error={error} />
      {plugins === null && loading && <Loading label="Loading the plugins…" />}
      {plugins && (
        <ul class="card-list" data-testid="plugin-list">
          {plugins.map((p) => (
            <PluginItem key={p.id} plugin={p} onChanged={replace} reloadAll={load} confirm={confirm} />
          ))}
        </ul>
      )}
      {confirmDialog}
    </section>
  );
}

function PluginItem({ plugin, onChanged, reloadAll, confirm }) {
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const [result, setResult] = useState(null);

  const act = async (action) => {
    if (action === 'disable') {
      const ok = await confirm({
        title: `Disable ${plugin.id}?`,
        body: plugin.required
          ? 'This plugin is marked required: the server reports not ready while it is disabled.'
          : 'Calls in flight finish first; nothing new reaches the plugin until it is enabled again.',
        confirmLabel: 'Disable',
        danger: true,
      });
      if (!ok) return;
    }
    setBusy(action);
    setError(null);
    setResult(null);
    try {
      const answer = await api.post(`/admin/plugins/${seg(plugin.id)}/${action}`);
      if (answer && answer.plugin) onChanged(answer.plugin);
      else await reloadAll();
      setResult(
        action === 'reload' && answer
          ? `Reloaded: generation ${answer.generation}, version ${answer.version}${answer.drain_ms !== undefined ? `, drained in ${Math.round(answer.drain_ms)} ms` : ''}.`
          : `${action === 'enable' ? 'Enabled' : 'Disabled'}.`,
      );
    } catch (e) {
      setError(e);
      // A failed reload changes the plugin's state and failure reason: show them.
      reloadAll();
    } finally {
      setBusy(null);
    }
  };

  const p = plugin;
  return (
    <li class="card plugin-item" data-testid="plugin-item" data-plugin-id={p.id}>
      <div class="plugin-head">
        <h2 class="plugin-id"><code>{p.id}</code></h2>
        <StateBadge state={p.state} testid="plugin-state" />
        {!p.enabled && <span class="badge">disabled in config</span>}
        {p.required && <span class="badge">required</span>}
      </div>
      {p.description && <p class="muted">{p.description}</p>}
      <dl class="facts">
        <div><dt>Kind</dt><dd>{p.kind}</dd></div>
        <div><dt>Version</dt><dd>{p.version || '—'}</dd></div>
        <div><dt>Generation</dt><dd>{p.generation}</dd></div>
        <div><dt>Loaded</dt><dd>{formatDateTime(p.loaded_at) || '—'}</dd></div>
        {p.retired_generations && p.retired_generations.length > 0 && (
          <div><dt>Old generations</dt><dd>{p.retired_generations.map((g) => `${g.generation} (${g.version}, ${g.state})`).join(', ')}</dd></div>
        )}
        {p.pinned_generations > 0 && <div><dt>Pinned so far</dt><dd>{p.pinned_generations}</dd></div>}
      </dl>
      {(p.failure_reason || p.failure_message) && (
        <div class="error-box" data-testid="plugin-failure">
          <p class="error-title">Last load failed: {p.failure_reason}</p>
          {p.failure_message && <pre class="pre">{p.failure_message}</pre>}
        </div>
      )}
      <div class="actions">
        <BusyButton busy={busy === 'reload'} class="button button-small" onClick={() => act('reload')} data-testid="plugin-reload"
          aria-label={`Reload ${p.id}`}>
          Reload
        </BusyButton>
        {p.enabled ? (
          <BusyButton busy={busy === 'disable'} class="button button-small button-danger" onClick={() => act('disable')} data-testid="plugin-disable"
            aria-label={`Disable ${p.id}`}>
            Disable
          </BusyButton>
        ) : (
          <BusyButton busy={busy === 'enable'} class="button button-small" onClick={() => act('enable')} data-testid="plugin-enable"
            aria-label={`Enable ${p.id}`}>
            Enable
          </BusyButton>
        )}
      </div>
      {result && <p class="success" role="status" data-testid="plugin-result">{result}</p>}
      <ErrorBox error={error} onDismiss={() => setError(null)} testid="plugin-error" />
    </li>
  );
}
