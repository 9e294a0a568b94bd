// A project's workbench: its runs (the newest opens by default), a box to start a new run, the live
// run view, and the app's preview beside it (below it on a phone).
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { formatDateTime } from '../format.js';
import { link, navigate } from '../router.js';
import { BusyButton, ErrorBox, Field, Loading, PageHeading, useSubmit } from '../components/ui.jsx';
import { ExportButton } from '../components/export.jsx';
import { RenameForm } from './projects.jsx';
import { RunView } from './run.jsx';
import { PreviewPanel } from './preview.jsx';

export function ProjectPage({ projectId, runId }) {
  const [project, setProject] = useState(null);
  const [runs, setRuns] = useState(null);
  const [error, setError] = useState(null);
  const [renaming, setRenaming] = useState(false);
  const [newRun, setNewRun] = useState(false);
  // Bumped by the run view: files committed (the preview reloads) or the preview started by an agent.
  const [filesVersion, setFilesVersion] = useState(0);
  const [previewVersion, setPreviewVersion] = useState(0);

  const loadRuns = useCallback(
    () =>
      api
        .get(`/projects/${seg(projectId)}/runs?limit=50`)
        .then((answer) => setRuns(answer.items))
        .catch(setError),
    [projectId],
  );

  useEffect(() => {
    api.get(`/projects/${seg(projectId)}`).then(setProject).catch(setError);
    loadRuns();
  }, [projectId, loadRuns]);

  // The project's page without a run opens its newest run, if it has one.
  useEffect(() => {
    if (!runId && runs && runs.length > 0 && !newRun) {
      navigate(link('projects', projectId, 'runs', runs[0].id), { replace: true });
    }
  }, [runId, runs, newRun, projectId]);

  // A run opened by its link that the list (newest 50) does not hold yet: read the list again.
  useEffect(() => {
    if (runId && runs && !runs.some((r) => r.id === runId)) loadRuns();
    setNewRun(false);
  }, [runId]);

  if (error && !project) {
    return (
      <section>
        <PageHeading>Project</PageHeading>
        <ErrorBox error={error} />
        <p><a href={link('projects')}>Back to your projects</a></p>
      </section>
    );
  }
  if (!project) return <Loading label="Opening the project…" />;

  const showForm = newRun || (runs && runs.length === 0 && !runId);
  return (
    <section class="project-page" data-testid="project-page" data-project-id={projectId}>
      <div class="page-head">
        {renaming ? (
          <RenameForm project={project} onDone={(updated) => {
            setRenaming(false);
            if (updated) setProject(updated);
          }} />
        ) : (
          <PageHeading title={project.name}>
            <span data-testid="project-title">{project.name}</span>
          </PageHeading>
        )}
        <div class="actions">
          <a class="button button-small" href={link('projects', projectId, 'files')} data-testid="project-files">Files</a>
          {!renaming && (
            <button type="button" class="button button-small" onClick={() => setRenaming(true)} data-testid="project-rename">
              Rename
            </button>
          )}
          <ExportButton project={project} small />
        </div>
      </div>
      {project.description && <p class="muted">{project.description}</p>}

      <div class="workbench">
        <div class="workbench-main">
          <RunPicker projectId={projectId} runs={runs} runId={runId} onNew={() => setNewRun(true)} newRun={showForm} />
          {showForm && (
            <RunForm projectId={projectId} onCancel={runs && runs.length > 0 ? () => setNewRun(false) : null}
              onStarted={(run) => {
                setRuns((old) => [run, ...(old || [])]);
                setNewRun(false);
                navigate(link('projects', projectId, 'runs', run.id));
              }} />
          )}
          {!showForm && runId && (
            <RunView key={runId} runId={runId} projectId={projectId}
              onFilesChanged={() => setFilesVersion((v) => v + 1)}
              onPreviewStarted={() => setPreviewVersion((v) => v + 1)}
              onStateChanged={(state) => setRuns((old) => old && old.map((r) => (r.id === runId ? { ...r, state } : r)))} />
          )}
          {!showForm && !runId && runs === null && <Loading label="Loading the runs…" />}
        </div>
        <aside class="workbench-side" aria-label="Preview">
          <PreviewPanel projectId={projectId} filesVersion={filesVersion} previewVersion={previewVersion} />
        </aside>
      </div>
    </section>
  );
}

function RunPicker({ projectId, runs, runId, onNew, newRun }) {
  if (!runs || runs.length === 0) return null;
  return (
    <div class="run-picker">
      <label for="run-picker">Run</label>
      <select id="run-picker" value={runId || ''} data-testid="run-picker"
        onChange={(e) => navigate(link('projects', projectId, 'runs', e.currentTarget.value))}>
        {!runId && <option value="">Choose a run</option>}
        {runs.map((r) => (
          <option key={r.id} value={r.id}>
            {formatDateTime(r.created_at)} · {r.state.replace('_', ' ')} · {r.description.slice(0, 60)}
          </option>
        ))}
      </select>
      {!newRun && (
        <button type="button" class="button button-small" onClick={onNew} data-testid="run-new">
          New run
        </button>
      )}
    </div>
  );
}

function RunForm({ projectId, onStarted, onCancel }) {
  const [description, setDescription] = useState('');

  const { busy, error, submit } = useSubmit(async () => {
    const run = await api.post(`/projects/${seg(projectId)}/runs`, { description: description.trim() });
    onStarted(run);
  });

  return (
    <form class="form card" onSubmit={submit} data-testid="run-form" aria-busy={busy ? 'true' : undefined}>
      <h2>Describe the app</h2>
      <Field id="run-description" label="What should the app do?" error={error} path="/description"
        hint="The agents ask when something is unclear. You can send more wishes while they work.">
        {(a) => (
          <textarea {...a} rows={5} required maxLength={20000} value={description}
            onInput={(e) => setDescription(e.currentTarget.value)} data-testid="run-description" />
        )}
      </Field>
      <ErrorBox error={error} fields={['/description']} testid="run-form-error" />
      <div class="actions">
        <BusyButton type="submit" busy={busy} class="button button-primary" data-testid="run-start">
          {busy ? 'Starting…' : 'Start run'}
        </BusyButton>
        {onCancel && (
          <button type="button" class="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}
