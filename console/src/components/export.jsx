// "Export": downloads the project's tar.gz. A plain link would work while the access cookie is fresh,
// but after it expired the browser would save (or show) a 401 problem document instead of the archive,
// and a 413/429 would replace the console with JSON. So the archive is fetched through api.js (which
// refreshes the session and turns problems into messages) and handed to the browser as a blob. The
// link's href stays the real route, for "copy link" and for reading where it goes.
import { API, request, seg } from '../api.js';
import { ErrorBox, useSubmit } from './ui.jsx';

export function ExportButton({ project, small = false }) {
  const href = `${API}/projects/${seg(project.id)}/export`;

  const { busy, error, setError, submit: download } = useSubmit(async () => {
    const response = await request('GET', href, { raw: true, accept: 'application/gzip' });
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const anchor = document.createElement('a');
    anchor.href = url;
    anchor.download = `${project.name.replace(/[^\w.-]+/g, '-') || 'project'}-${project.id}.tar.gz`;
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });

  return (
    <>
      <a href={href} download class={small ? 'button button-small' : 'button'} onClick={download}
        aria-busy={busy ? 'true' : undefined} data-testid="project-export"
        aria-label={`Export ${project.name} as a tar.gz archive`}>
        {busy && <span class="spinner spinner-inline" aria-hidden="true" />}
        Export
      </a>
      {error && <ErrorBox error={error} onDismiss={() => setError(null)} testid="export-error" />}
    </>
  );
}
