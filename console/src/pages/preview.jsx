// The project's live preview in a frame. Start it (POST .../preview), poll GET .../preview until it
// runs or fails, then show the `url` it returns: a link on the preview's own origin carrying a grant,
// which the preview origin trades for its cookie. Reloaded when the run commits files, so the frame
// follows the changes.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { BusyButton, ErrorBox, StateBadge } from '../components/ui.jsx';

const POLL_MS = 1000;
const POLL_LIMIT_MS = 10 * 60 * 1000; // npm install of a bigger app can take minutes
const RELOAD_DEBOUNCE_MS = 1500; // file writes of one step come together; the runner restarts once

export function PreviewPanel({ projectId, filesVersion, previewVersion }) {
  // preview: the API's document, or null when there is none (404).
  const [preview, setPreview] = useState(undefined);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(null);
  const [frameKey, setFrameKey] = useState(0);
  const [follow, setFollow] = useState(true);
  const [logs, setLogs] = useState(null);
  const pollRef = useRef({ timer: null, until: 0 });
  const alive = useRef(true);

  const base = `/projects/${seg(projectId)}/preview`;

  const read = async () => {
    try {
      const doc = await api.get(base);
      if (alive.current) setPreview(doc);
      return doc;
    } catch (e) {
      if (!alive.current) return null;
      if (e.status === 404) {
        setPreview(null);
        return null;
      }
      throw e;
    }
  };

  const stopPolling = () => {
    clearTimeout(pollRef.current.timer);
    pollRef.current.timer = null;
  };

  // Reads until the preview is running or failed (or gone), at most POLL_LIMIT_MS.
  const poll = () => {
    stopPolling();
    pollRef.current.until = Date.now() + POLL_LIMIT_MS;
    const tick = async () => {
      let doc = null;
      try {
        doc = await read();
        setError(null);
      } catch (e) {
        setError(e);
      }
      if (!alive.current) return;
      if (doc && doc.state === 'starting' && Date.now() < pollRef.current.until) {
        pollRef.current.timer = setTimeout(tick, POLL_MS);
      } else if (!doc || doc.state !== 'starting') {
        pollRef.current.timer = null;
      } else {
        pollRef.current.timer = null;
        setError({ title: 'The preview is taking long to start', detail: 'Check its log, or start it again.' });
      }
    };
    tick();
  };

  useEffect(() => {
    alive.current = true;
    poll();
    return () => {
      alive.current = false;
      stopPolling();
    };
  }, [projectId]);

  // An agent started the preview: follow it until it runs.
  useEffect(() => {
    if (previewVersion > 0) poll();
  }, [previewVersion]);

  // The run committed files: the runner restarts the app (or its dev server reloads), so after the
  // burst settles read the preview again (a fresh grant, maybe "starting") and reload the frame.
  useEffect(() => {
    if (filesVersion === 0 || !follow) return undefined;
    const timer = setTimeout(async () => {
      try {
        const doc = await read();
        if (doc && doc.state === 'starting') poll();
        setFrameKey((k) => k + 1);
      } catch (e) {
        setError(e);
      }
    }, RELOAD_DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [filesVersion]);

  const start = async () => {
    setBusy('start');
    setError(null);
    setLogs(null);
    try {
      setPreview(await api.post(base));
      poll();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };

  const stop = async () => {
    setBusy('stop');
    setError(null);
    try {
      await api.del(base);
      stopPolling();
      setPreview(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };

  const showLogs = async () => {
    setBusy('logs');
    try {
      const answer = await api.get(`${base}/logs?max_bytes=65536`);
      setLogs(answer);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };

  const reload = async () => {
    try {
      await read();
      setFrameKey((k) => k + 1);
    } catch (e) {
      setError(e);
    }
  };

  const state = preview ? preview.state : preview === null ? 'none' : 'loading';
  const running = preview && preview.state === 'running' && preview.url;
  const starting = preview && preview.state === 'starting';
  return (
    <section class="preview" aria-labelledby="preview-title" data-testid="preview-panel">
      <div class="preview-head">
        <h2 id="preview-title">Preview</h2>
        <StateBadge state={state} testid="preview-state" label={state === 'none' ? 'not running' : state === 'loading' ? 'checking…' : null} />
      </div>
      <div class="actions">
        {(!preview || preview.state === 'failed' || preview.state === 'stopped') && (
          <BusyButton busy={busy === 'start'} class="button button-primary button-small" onClick={start} data-testid="preview-start">
            Start preview
          </BusyButton>
        )}
        {running && (
          <>
            <button type="button" class="button button-small" onClick={reload} data-testid="preview-reload">Reload</button>
            <a class="button button-small" href={preview.url} target="_blank" rel="noopener noreferrer" data-testid="preview-open">
              Open in a new tab<span class="sr-only"> (opens a new tab)</span>
            </a>
          </>
        )}
        {preview && (preview.state === 'running' || preview.state === 'starting') && (
          <>
            <button type="button" class="button button-small" onClick={showLogs} aria-busy={busy === 'logs' ? 'true' : undefined} data-testid="preview-logs-button">
              Log
            </button>
            <BusyButton busy={busy === 'stop'} class="button button-small" onClick={stop} data-testid="preview-stop">Stop</BusyButton>
          </>
        )}
      </div>
      <div class="check">
        <input id="preview-follow" type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} data-testid="preview-follow" />
        <label for="preview-follow">Reload when the run changes files</label>
      </div>
      <ErrorBox error={error} onDismiss={() => setError(null)} testid="preview-error" />
      {state === 'loading' && <p class="muted" aria-busy="true"><span class="spinner spinner-inline" aria-hidden="true" /> Looking for a preview…</p>}
      {preview === null && <p class="muted" data-testid="preview-none">No preview is running. The agents start one when the app passes its checks, or start it yourself.</p>}
      {starting && (
        <p class="muted" role="status" aria-busy="true" data-testid="preview-starting">
          <span class="spinner spinner-inline" aria-hidden="true" /> Starting the app… {preview.detail || ''}
        </p>
      )}
      {preview && preview.state === 'failed' && (
        <div class="error-box" role="alert" data-testid="preview-failed">
          <p class="error-title">The preview failed.</p>
          {preview.detail && <pre class="preview-detail">{preview.detail}</pre>}
          {!logs && (
            <BusyButton busy={busy === 'logs'} class="button button-small" onClick={showLogs} data-testid="preview-logs-button">
              Show the log
            </BusyButton>
          )}
        </div>
      )}
      {preview && preview.state === 'stopped' && preview.detail && <p class="muted">Stopped: {preview.detail}</p>}
      {logs && (
        <details class="preview-logs" open data-testid="preview-logs">
          <summary>Log{logs.truncated ? ' (older output dropped)' : ''}</summary>
          <pre>{logs.text || '(empty)'}</pre>
        </details>
      )}
      {running && (
        <>
          <div class="frame-wrap">
            <iframe key={frameKey} src={preview.url} title="Preview of the app" data-testid="preview-frame"
              sandbox="allow-scripts allow-forms allow-same-origin allow-popups allow-modals allow-downloads"
              referrerpolicy="no-referrer" />
          </div>
          <p class="field-hint">
            If the frame asks you to open the preview from the console, this browser refused the preview's
            cookie inside a frame; use “Open in a new tab”.
          </p>
        </>
      )}
    </section>
  );
}
