// A project's files: the current tree, a read-only viewer, every version of a file, and the
// difference between any two of them. The selected path is in the hash (#/projects/<id>/files/<path>),
// so a file can be linked to, e.g. from a run's events.
import { structuredPatch } from 'diff';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, filePath, getAll, request, seg } from '../api.js';
import { formatBytes, formatDateTime } from '../format.js';
import { link } from '../router.js';
import { BusyButton, ErrorBox, Loading, PageHeading } from '../components/ui.jsx';

const MAX_SHOWN_BYTES = 1024 * 1024; // larger text is cut in the viewer: a browser renders it slowly
const TEXT_TYPES = /^(text\/|application\/(json|javascript|xml|x-sh|toml|yaml|x-yaml|sql))/;

export function FilesPage({ projectId, path }) {
  const [project, setProject] = useState(null);
  const [tree, setTree] = useState(null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(false);

  const load = async () => {
    setLoading(true);
    setError(null);
    try {
      setTree(await getAll(`/projects/${seg(projectId)}/files`));
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    api.get(`/projects/${seg(projectId)}`).then(setProject).catch(setError);
    load();
  }, [projectId]);

  const nested = useMemo(() => (tree ? buildTree(tree.items) : null), [tree]);
  const name = project ? project.name : 'Project';
  return (
    <section class="files-page" data-testid="files-page">
      <div class="page-head">
        <PageHeading title={`Files of ${name}`}>Files of {name}</PageHeading>
        <div class="actions">
          <a class="button button-small" href={link('projects', projectId)} data-testid="back-to-project">Back to the run</a>
          <BusyButton busy={loading} class="button button-small" onClick={load} data-testid="files-refresh">Refresh</BusyButton>
        </div>
      </div>
      <ErrorBox error={error} />
      <div class="files-layout">
        <nav class="file-tree card" aria-label="File tree" data-testid="file-tree">
          {tree === null && loading && <Loading label="Loading the files…" />}
          {tree && tree.items.length === 0 && <p class="muted" data-testid="files-empty">No files yet.</p>}
          {nested && <TreeLevel node={nested} projectId={projectId} selected={path} />}
          {tree && tree.truncated && <p class="muted">Only the first {tree.items.length} files are listed.</p>}
        </nav>
        <div class="file-main">
          {path ? (
            <FileDetail key={path} projectId={projectId} path={path} />
          ) : (
            <p class="muted">Choose a file to see its content and history.</p>
          )}
        </div>
      </div>
    </section>
  );
}

// {dirs: Map name -> node, files: [item]} from the flat, path-ordered list.
function buildTree(items) {
  const root = { name: '', path: '', dirs: new Map(), files: [] };
  for (const item of items) {
    const parts = item.path.split('/');
    let node = root;
    for (let i = 0; i < parts.length - 1; i++) {
      if (!node.dirs.has(parts[i])) {
        node.dirs.set(parts[i], { name: parts[i], path: parts.slice(0, i + 1).join('/'), dirs: new Map(), files: [] });
      }
      node = node.dirs.get(parts[i]);
    }
    node.files.push({ ...item, name: parts[parts.length - 1] });
  }
  return root;
}

function TreeLevel({ node, projectId, selected }) {
  const dirs = [...node.dirs.values()].sort((a, b) => a.name.localeCompare(b.name));
  return (
    <ul class="tree">
      {dirs.map((dir) => (
        <li key={dir.path}>
          {/* Native <details>: opens and closes with Enter and Space, no script needed. */}
          <details open={!selected || selected.startsWith(`${dir.path}/`) || dirs.length + node.files.length < 12}>
            <summary data-testid="tree-dir">{dir.name}/</summary>
            <TreeLevel node={dir} projectId={projectId} selected={selected} />
          </details>
        </li>
      ))}
      {node.files.map((file) => (
        <li key={file.path}>
          <a href={link('projects', projectId, 'files', file.path)} aria-current={file.path === selected ? 'page' : undefined}
            data-testid="tree-file" data-path={file.path}>
            {file.name}
          </a>
          <span class="meta"> v{file.version}</span>
        </li>
      ))}
    </ul>
  );
}

async function readVersion(projectId, path, version) {
  const query = version ? `?version=${version}` : '';
  const response = await request('GET', `/projects/${seg(projectId)}/files/${filePath(path)}${query}`, {
    raw: true,
    accept: '*/*',
  });
  const type = response.headers.get('Content-Type') || '';
  const size = Number(response.headers.get('Content-Length')) || null;
  const fileVersion = Number(response.headers.get('X-File-Version')) || version || null;
  if (!TEXT_TYPES.test(type)) {
    return { binary: true, type, size, version: fileVersion };
  }
  const text = await response.text();
  return { binary: false, type, size: size ?? text.length, version: fileVersion, text };
}

function FileDetail({ projectId, path }) {
  const [history, setHistory] = useState(null);
  const [version, setVersion] = useState(null); // null: the newest
  const [content, setContent] = useState(null);
  const [error, setError] = useState(null);
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [diff, setDiff] = useState(null);
  const [diffBusy, setDiffBusy] = useState(false);

  useEffect(() => {
    api
      .get(`/projects/${seg(projectId)}/history/${filePath(path)}?limit=500`)
      .then((answer) => {
        setHistory(answer.items);
        const live = answer.items.filter((i) => !i.deleted);
        if (live.length >= 2) {
          setFrom(String(live[1].version));
          setTo(String(live[0].version));
        }
      })
      .catch(setError);
  }, [projectId, path]);

  useEffect(() => {
    setContent(null);
    readVersion(projectId, path, version).then(setContent).catch(setError);
  }, [projectId, path, version]);

  const compare = async (event) => {
    event.preventDefault();
    if (!from || !to) return;
    setDiffBusy(true);
    setError(null);
    try {
      const [a, b] = await Promise.all([readVersion(projectId, path, Number(from)), readVersion(projectId, path, Number(to))]);
      if (a.binary || b.binary) {
        setDiff({ binary: true, from, to });
      } else {
        setDiff({ from, to, patch: structuredPatch(path, path, a.text, b.text, `v${from}`, `v${to}`, { context: 3 }) });
      }
    } catch (e) {
      setError(e);
    } finally {
      setDiffBusy(false);
    }
  };

  const versions = history ? history.filter((h) => !h.deleted) : [];
  return (
    <div class="file-detail">
      <h2 class="file-path"><code data-testid="file-path">{path}</code></h2>
      <ErrorBox error={error} onDismiss={() => setError(null)} />
      <section class="card" aria-labelledby="viewer-title">
        <h3 id="viewer-title">
          {version ? `Version ${version}` : 'Current version'}
          {version && (
            <button type="button" class="link-button" onClick={() => setVersion(null)}>Show the current one</button>
          )}
        </h3>
        {content === null && !error && <Loading label="Loading the file…" />}
        {content && content.binary && (
          <p data-testid="file-binary">A binary file ({content.type}{content.size ? `, ${formatBytes(content.size)}` : ''}); it is not shown here.</p>
        )}
        {content && !content.binary && (
          <>
            {content.text.length > MAX_SHOWN_BYTES && <p class="muted">The first {formatBytes(MAX_SHOWN_BYTES)} are shown.</p>}
            <pre class="file-content" tabIndex={0} aria-label={`Content of ${path}`} data-testid="file-content">
              {content.text.length > MAX_SHOWN_BYTES ? content.text.slice(0, MAX_SHOWN_BYTES) : content.text}
            </pre>
          </>
        )}
      </section>

      <section class="card" aria-labelledby="history-title">
        <h3 id="history-title">History</h3>
        {history === null && !error && <Loading label="Loading the history…" />}
        {history && (
          <div class="table-wrap">
            <table class="table" data-testid="file-history">
              <caption class="sr-only">Versions of {path}, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Written</th>
                  <th scope="col">Size</th>
                  <th scope="col">By</th>
                  <th scope="col"><span class="sr-only">Actions</span></th>
                </tr>
              </thead>
              <tbody>
                {history.map((h) => (
                  <tr key={h.version} data-testid="history-item" data-version={h.version}>
                    <th scope="row">v{h.version}</th>
                    <td>{formatDateTime(h.created_at)}</td>
                    <td>{h.deleted ? 'deleted' : formatBytes(h.size)}</td>
                    <td>{h.run_step_id ? 'a run' : 'you'}</td>
                    <td>
                      {!h.deleted && (
                        <button type="button" class="button button-small" onClick={() => setVersion(h.version)}
                          aria-label={`View version ${h.version}`} data-testid="history-view">
                          View
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {versions.length >= 2 && (
          <form class="form form-inline diff-form" onSubmit={compare} data-testid="diff-form">
            <div class="field">
              <label for="diff-from">From</label>
              <select id="diff-from" value={from} onChange={(e) => setFrom(e.currentTarget.value)} data-testid="diff-from">
                {versions.map((v) => <option key={v.version} value={v.version}>v{v.version}</option>)}
              </select>
            </div>
            <div class="field">
              <label for="diff-to">To</label>
              <select id="diff-to" value={to} onChange={(e) => setTo(e.currentTarget.value)} data-testid="diff-to">
                {versions.map((v) => <option key={v.version} value={v.version}>v{v.version}</option>)}
              </select>
            </div>
            <BusyButton type="submit" busy={diffBusy} class="button" data-testid="diff-submit">Compare</BusyButton>
          </form>
        )}
        {diff && <DiffView diff={diff} />}
      </section>
    </div>
  );
}

function DiffView({ diff }) {
  if (diff.binary) return <p data-testid="diff-view">Binary versions cannot be compared here.</p>;
  const hunks = diff.patch.hunks;
  return (
    <div class="diff" data-testid="diff-view" role="region" aria-label={`Changes from v${diff.from} to v${diff.to}`} tabIndex={0}>
      {hunks.length === 0 && <p>v{diff.from} and v{diff.to} are the same.</p>}
      {hunks.map((hunk, i) => (
        <pre key={i} class="diff-hunk">
          <span class="diff-header">{`@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@\n`}</span>
          {hunk.lines.map((line, j) => {
            const kind = line[0] === '+' ? 'diff-add' : line[0] === '-' ? 'diff-del' : line[0] === '\\' ? 'diff-note' : 'diff-same';
            return <span key={j} class={kind}>{`${line}\n`}</span>;
          })}
        </pre>
      ))}
    </div>
  );
}
