// The user's projects: create one, open, rename, export or delete it. The list is paged by the API's
// cursor ("Show more").
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { formatDateTime } from '../format.js';
import { link, navigate } from '../router.js';
import { BusyButton, ErrorBox, Field, Loading, PageHeading, useConfirm, useSubmit } from '../components/ui.jsx';
import { ExportButton } from '../components/export.jsx';

const PAGE = 50;

export function ProjectsPage() {
  const [items, setItems] = useState(null);
  const [cursor, setCursor] = useState(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState(null);
  const [confirmDialog, confirm] = useConfirm();
  const listHeading = useRef(null);

  const loadPage = async (after) => {
    setLoading(true);
    setError(null);
    try {
      const query = new URLSearchParams({ limit: String(PAGE) });
      if (after) query.set('cursor', after);
      const page = await api.get(`/projects?${query}`);
      setItems((old) => (after && old ? old.concat(page.items) : page.items));
      setCursor(page.next_cursor);
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    loadPage(null);
  }, []);

  const replace = (project) => setItems((old) => old.map((p) => (p.id === project.id ? project : p)));
  // The deleted item's button goes with it; focus moves to the list's heading instead of the page body.
  const removeLocal = (id) => {
    setItems((old) => old.filter((p) => p.id !== id));
    if (listHeading.current) listHeading.current.focus();
  };

  return (
    <section>
      <PageHeading>Projects</PageHeading>
      <CreateProject />
      <h2 tabIndex={-1} ref={listHeading}>Your projects</h2>
      <ErrorBox error={error} />
      {items === null && loading && <Loading label="Loading your projects…" />}
      {items && items.length === 0 && <p data-testid="projects-empty">No projects yet. Create one above.</p>}
      {items && items.length > 0 && (
        <ul class="card-list" data-testid="project-list">
          {items.map((p) => (
            <ProjectItem key={p.id} project={p} confirm={confirm} onChanged={replace} onDeleted={removeLocal} />
          ))}
        </ul>
      )}
      {cursor && (
        <BusyButton busy={loading} class="button" onClick={() => loadPage(cursor)} data-testid="projects-more">
          Show more
        </BusyButton>
      )}
      {confirmDialog}
    </section>
  );
}

function CreateProject() {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');

  const { busy, error, submit } = useSubmit(async () => {
    const body = { name: name.trim() };
    if (description.trim()) body.description = description.trim();
    const project = await api.post('/projects', body);
    navigate(link('projects', project.id));
  });

  return (
    <form class="form card" onSubmit={submit} data-testid="project-form" aria-busy={busy ? 'true' : undefined}>
      <h2>New project</h2>
      <Field id="project-name" label="Name" error={error} path="/name" hint="1 to 100 characters.">
        {(a) => (
          <input {...a} required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} data-testid="project-name" />
        )}
      </Field>
      <Field id="project-description" label="Description (optional)" error={error} path="/description">
        {(a) => (
          <textarea {...a} rows={2} maxLength={1000} value={description}
            onInput={(e) => setDescription(e.currentTarget.value)} data-testid="project-description" />
        )}
      </Field>
      <ErrorBox error={error} fields={['/name', '/description']} testid="project-error" />
      <BusyButton type="submit" busy={busy} class="button button-primary" data-testid="project-create">
        {busy ? 'Creating…' : 'Create project'}
      </BusyButton>
    </form>
  );
}

function ProjectItem({ project, confirm, onChanged, onDeleted }) {
  const [renaming, setRenaming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [error, setError] = useState(null);

  const remove = async () => {
    const ok = await confirm({
      title: `Delete \u201c${project.name}\u201d?`,
      body: 'Its files, their whole history and its runs are deleted. This cannot be undone.',
      confirmLabel: 'Delete project',
      danger: true,
    });
    if (!ok) return;
    setDeleting(true);
    setError(null);
    try {
      await api.del(`/projects/${seg(project.id)}`);
      onDeleted(project.id);
    } catch (e) {
      setError(e);
      setDeleting(false);
    }
  };

  return (
    <li class="card project-item" data-testid="project-item" data-project-id={project.id}>
      {renaming ? (
        <RenameForm project={project} onDone={(updated) => {
          setRenaming(false);
          if (updated) onChanged(updated);
        }} />
      ) : (
        <div class="project-head">
          <h3>
            <a href={link('projects', project.id)} data-testid="project-open">{project.name}</a>
          </h3>
          {project.description && <p class="muted">{project.description}</p>}
          <p class="meta">Created {formatDateTime(project.created_at)}</p>
        </div>
      )}
      {!renaming && (
        <div class="actions">
          <a class="button button-small" href={link('projects', project.id, 'files')}>Files</a>
          <button type="button" class="button button-small" onClick={() => setRenaming(true)} data-testid="project-rename"
            aria-label={`Rename ${project.name}`}>
            Rename
          </button>
          <ExportButton project={project} small />
          <BusyButton busy={deleting} class="button button-small button-danger" onClick={remove} data-testid="project-delete"
            aria-label={`Delete ${project.name}`}>
            Delete
          </BusyButton>
        </div>
      )}
      <ErrorBox error={error} onDismiss={() => setError(null)} />
    </li>
  );
}

export function RenameForm({ project, onDone }) {
  const [name, setName] = useState(project.name);
  const id = `rename-${project.id}`;
  const inputRef = useRef(null);
  useEffect(() => {
    if (inputRef.current) inputRef.current.focus();
  }, []);

  const { busy, error, submit } = useSubmit(async () => {
    const updated = await api.patch(`/projects/${seg(project.id)}`, { name: name.trim() });
    onDone(updated);
  });

  return (
    <form class="form form-inline" onSubmit={submit} data-testid="rename-form" aria-busy={busy ? 'true' : undefined}>
      <Field id={id} label="New name" error={error} path="/name">
        {(a) => (
          <input {...a} required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)}
            data-testid="rename-input" ref={inputRef} />
        )}
      </Field>
      <div class="actions">
        <BusyButton type="submit" busy={busy} class="button button-primary button-small" data-testid="rename-save">Save</BusyButton>
        <button type="button" class="button button-small" onClick={() => onDone(null)} data-testid="rename-cancel">Cancel</button>
      </div>
      <ErrorBox error={error} fields={['/name']} />
    </form>
  );
}
