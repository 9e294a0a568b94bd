// Small building blocks every page uses, so that waiting, errors, labels and confirmations look and
// behave the same everywhere (and screen readers hear them the same way).
import { useEffect, useRef, useState } from 'preact/hooks';

// A form that sends one request at a time: `busy` while `action` runs, the `error` it threw (an ApiError
// from a problem+json answer, or one the form made itself), and `submit`, the handler for the form's
// submit event or a button's click, which does nothing while a request is under way.
export function useSubmit(action) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (event) => {
    if (event) event.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, setError, submit };
}

export function Spinner({ label = 'Working…' }) {
  return (
    <span class="spinner-wrap">
      <span class="spinner" aria-hidden="true" />
      <span class="sr-only">{label}</span>
    </span>
  );
}

// A region that is waiting for data: aria-busy tells assistive technology the content is not ready.
export function Loading({ label = 'Loading…', testid = 'loading' }) {
  return (
    <div class="loading" aria-busy="true" role="status" data-testid={testid}>
      <span class="spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

// A problem+json error: its title, detail, the field errors no input shows itself, and the request
// id to quote when asking an operator. role="alert" announces it when it appears.
export function ErrorBox({ error, fields = [], testid = 'error', onDismiss }) {
  if (!error) return null;
  const rest = (error.errors || []).filter((e) => !fields.includes(e.path));
  return (
    <div class="error-box" role="alert" data-testid={testid} data-status={error.status || undefined}>
      <p class="error-title">{error.title || 'Something went wrong'}</p>
      {error.detail && <p class="error-detail">{error.detail}</p>}
      {rest.length > 0 && (
        <ul class="error-list">
          {rest.map((e) => (
            <li key={e.path}>
              {e.path ? <code>{e.path}</code> : null} {e.message}
            </li>
          ))}
        </ul>
      )}
      {error.requestId && <p class="error-meta">Request id: {error.requestId}</p>}
      {onDismiss && (
        <button type="button" class="link-button" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}

// A labelled form control with its error message next to it. `path` is the JSON pointer the API uses
// for this field in `errors[]`; the control gets aria-invalid and aria-describedby when it has one.
export function Field({ id, label, error, path, hint, children, class: className = '' }) {
  const message = error && path && error.fieldError ? error.fieldError(path) : null;
  const describedBy = [hint ? `${id}-hint` : null, message ? `${id}-error` : null].filter(Boolean).join(' ');
  const control = children({ id, 'aria-invalid': message ? 'true' : undefined, 'aria-describedby': describedBy || undefined });
  return (
    <div class={`field ${className}`}>
      <label for={id}>{label}</label>
      {control}
      {hint && (
        <p class="field-hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {message && (
        <p class="field-error" id={`${id}-error`} data-testid={`${id}-error`}>
          {message}
        </p>
      )}
    </div>
  );
}

// A button that shows a spinner and aria-busy while its action runs. It stays focusable (aria-disabled
// instead of disabled) so keyboard focus is not thrown to the page body; a second press is ignored.
export function BusyButton({ busy, children, class: className = 'button', onClick, type = 'button', ...rest }) {
  const guard = (event) => {
    if (busy) {
      event.preventDefault();
      return;
    }
    if (onClick) onClick(event);
  };
  return (
    <button
      type={type}
      class={className}
      aria-busy={busy ? 'true' : undefined}
      aria-disabled={busy || rest.disabled ? 'true' : undefined}
      onClick={guard}
      {...rest}
    >
      {busy && <span class="spinner spinner-inline" aria-hidden="true" />}
      {children}
    </button>
  );
}

// The page's h1: it names the page in the tab title and takes focus when the page opens, so a
// screen reader announces where a link led (hash routing does no page load that would do it).
export function PageHeading({ children, title }) {
  const ref = useRef(null);
  const text = title || (typeof children === 'string' ? children : '');
  useEffect(() => {
    if (text) document.title = `${text} · Samokoder`;
  }, [text]);
  useEffect(() => {
    if (ref.current) ref.current.focus({ preventScroll: true });
  }, []);
  return (
    <h1 tabIndex={-1} ref={ref}>
      {children}
    </h1>
  );
}

// useConfirm(): [dialog element to render, ask(options) -> Promise<boolean>]. A modal <dialog> (focus
// stays inside, Escape cancels) instead of window.confirm, so it can be styled and tested.
export function useConfirm() {
  const dialogRef = useRef(null);
  const resolveRef = useRef(null);
  const openerRef = useRef(null);
  const [options, setOptions] = useState(null);

  useEffect(() => {
    if (options && dialogRef.current && !dialogRef.current.open) dialogRef.current.showModal();
  }, [options]);

  const close = (answer) => {
    if (dialogRef.current && dialogRef.current.open) dialogRef.current.close();
    setOptions(null);
    const resolve = resolveRef.current;
    resolveRef.current = null;
    if (resolve) resolve(answer);
    const opener = openerRef.current;
    if (opener && opener.isConnected) opener.focus();
  };

  const ask = (next) =>
    new Promise((resolve) => {
      openerRef.current = document.activeElement;
      resolveRef.current = resolve;
      setOptions(next);
    });

  const element = options ? (
    <dialog
      ref={dialogRef}
      class="dialog"
      aria-labelledby="confirm-title"
      aria-describedby="confirm-body"
      data-testid="confirm-dialog"
      onCancel={(event) => {
        event.preventDefault();
        close(false);
      }}
    >
      <h2 id="confirm-title">{options.title}</h2>
      <p id="confirm-body">{options.body}</p>
      <div class="dialog-actions">
        <button type="button" class="button" onClick={() => close(false)} data-testid="confirm-cancel">
          {options.cancelLabel || 'Cancel'}
        </button>
        <button
          type="button"
          class={options.danger ? 'button button-danger' : 'button button-primary'}
          onClick={() => close(true)}
          data-testid="confirm-ok"
        >
          {options.confirmLabel || 'OK'}
        </button>
      </div>
    </dialog>
  ) : null;

  return [element, ask];
}

// A status badge for run and plugin states; the state is in text, colour only repeats it.
export function StateBadge({ state, testid, label }) {
  return (
    <span class={`badge badge-${String(state || 'unknown').toLowerCase()}`} data-testid={testid} data-state={state}>
      {label || String(state || 'unknown').replace(/_/g, ' ')}
    </span>
  );
}
