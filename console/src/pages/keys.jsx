// Provider keys (bring your own key): the stored ones, masked as the API returns them; add or replace
// one, optionally verified by the server against the provider first; delete one.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { formatDateTime } from '../format.js';
import { BusyButton, ErrorBox, Field, Loading, PageHeading, useConfirm, useSubmit } from '../components/ui.jsx';

export function KeysPage() {
  const [keys, setKeys] = useState(null);
  const [providers, setProviders] = useState([]);
  const [loadError, setLoadError] = useState(null);
  const [confirmDialog, confirm] = useConfirm();
  const [deleting, setDeleting] = useState(null);
  const [deleteError, setDeleteError] = useState(null);
  const listHeading = useRef(null);

  const load = () =>
    api
      .get('/keys')
      .then((answer) => setKeys(answer.items))
      .catch(setLoadError);

  useEffect(() => {
    load();
    // The configured providers, to offer as choices. /models is the only route that lists them; if it
    // fails, the provider is typed instead.
    api
      .get('/models')
      .then((answer) => setProviders(answer.items.map((i) => i.provider)))
      .catch(() => setProviders([]));
  }, []);

  const remove = async (provider) => {
    const ok = await confirm({
      title: `Delete the ${provider} key?`,
      body: 'Runs that need this provider will use the server\u2019s key, if it has one, or fail.',
      confirmLabel: 'Delete key',
      danger: true,
    });
    if (!ok) return;
    setDeleting(provider);
    setDeleteError(null);
    try {
      await api.del(`/keys/${seg(provider)}`);
      await load();
      // The deleted row's button is gone; keep keyboard focus near where it was.
      if (listHeading.current) listHeading.current.focus();
    } catch (e) {
      setDeleteError(e);
    } finally {
      setDeleting(null);
    }
  };

  return (
    <section>
      <PageHeading>Provider keys</PageHeading>
      <p class="lead">
        Your API keys for model providers. They are stored encrypted and never shown again in full.
      </p>
      <KeyForm providers={providers} onSaved={load} />
      <h2 tabIndex={-1} ref={listHeading}>Stored keys</h2>
      <ErrorBox error={loadError} />
      <ErrorBox error={deleteError} onDismiss={() => setDeleteError(null)} testid="key-delete-error" />
      {keys === null && !loadError && <Loading label="Loading your keys…" />}
      {keys && keys.length === 0 && <p data-testid="keys-empty">No keys stored yet.</p>}
      {keys && keys.length > 0 && (
        <div class="table-wrap">
          <table class="table" data-testid="key-list">
            <caption class="sr-only">Stored provider keys</caption>
            <thead>
              <tr>
                <th scope="col">Provider</th>
                <th scope="col">Key</th>
                <th scope="col">Updated</th>
                <th scope="col"><span class="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k.provider} data-testid="key-item" data-provider={k.provider}>
                  <th scope="row">{k.provider}</th>
                  <td><code data-testid="key-masked">{k.masked_key}</code></td>
                  <td>{formatDateTime(k.updated_at)}</td>
                  <td>
                    <BusyButton busy={deleting === k.provider} class="button button-small button-danger"
                      onClick={() => remove(k.provider)} data-testid="key-delete" aria-label={`Delete the ${k.provider} key`}>
                      Delete
                    </BusyButton>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {confirmDialog}
    </section>
  );
}

function KeyForm({ providers, onSaved }) {
  const [provider, setProvider] = useState('openai');
  const [apiKey, setApiKey] = useState('');
  const [verify, setVerify] = useState(true);
  const [result, setResult] = useState(null);

  const { busy, error, submit } = useSubmit(async () => {
    setResult(null);
    const saved = await api.put(`/keys/${seg(provider.trim())}`, { api_key: apiKey, verify });
    setResult(saved);
    setApiKey('');
    await onSaved();
  });

  // The default (openai) may not be configured here; then the first configured provider is chosen.
  useEffect(() => {
    if (providers.length > 0 && !providers.includes(provider)) setProvider(providers[0]);
  }, [providers]);

  const choices = providers.length > 0 ? providers : null;
  return (
    <form class="form card" onSubmit={submit} data-testid="key-form" aria-busy={busy ? 'true' : undefined}>
      <h2>Add or replace a key</h2>
      <Field id="key-provider" label="Provider" error={error}>
        {(a) =>
          choices ? (
            <select {...a} value={provider} onChange={(e) => setProvider(e.currentTarget.value)} data-testid="key-provider">
              {choices.map((p) => (
                <option key={p} value={p}>{p}</option>
              ))}
            </select>
          ) : (
            <input {...a} value={provider} required pattern="[a-z0-9_\-]{1,32}" onInput={(e) => setProvider(e.currentTarget.value)} data-testid="key-provider" />
          )
        }
      </Field>
      <Field id="key-value" label="API key" error={error} path="/api_key" hint="Sent once to the server; shown masked afterwards.">
        {(a) => (
          <input {...a} type="password" autocomplete="off" spellcheck={false} required value={apiKey}
            onInput={(e) => setApiKey(e.currentTarget.value)} data-testid="key-value" />
        )}
      </Field>
      <div class="check">
        <input id="key-verify" type="checkbox" checked={verify} onChange={(e) => setVerify(e.currentTarget.checked)} data-testid="key-verify" />
        <label for="key-verify">Check the key with the provider before storing it</label>
      </div>
      <ErrorBox error={error} fields={['/api_key']} testid="key-error" />
      {result && (
        <p class="success" role="status" data-testid="key-result" data-verified={String(Boolean(result.verified))}>
          {result.verified
            ? `The ${result.provider} key ${result.masked_key} was accepted by the provider and stored.`
            : `The ${result.provider} key ${result.masked_key} was stored without a check.`}
        </p>
      )}
      <BusyButton type="submit" busy={busy} class="button button-primary" data-testid="key-submit">
        {busy ? (verify ? 'Checking and saving…' : 'Saving…') : 'Save key'}
      </BusyButton>
    </form>
  );
}
