// One run, live: its state, the connection to its event stream, the events as they come (model text
// streaming in, files written, command output), the question it waits for, messages to it, cancel and
// resume. The stream logic is in events.js and the folding of events in runModel.js; this file shows.
import { Component } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, seg } from '../api.js';
import { RunStream, CONNECTION } from '../events.js';
import { applyCommitted, applyTransient, initialModel, isActive, withRun } from '../runModel.js';
import { agentName, formatBytes, formatCost, formatInt, formatTime } from '../format.js';
import { link } from '../router.js';
import { useSession } from '../session.js';
import { BusyButton, ErrorBox, Field, Loading, StateBadge, useConfirm } from '../components/ui.jsx';

const FLUSH_MS = 50;

export function RunView({ runId, projectId, onFilesChanged, onPreviewStarted, onStateChanged }) {
  const { announce } = useSession();
  const [model, setModel] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [connection, setConnection] = useState({ state: CONNECTION.connecting, attempt: 0 });
  const [streamError, setStreamError] = useState(null);
  const streamRef = useRef(null);

  // Open: read the run, then stream its events from the start. Events are applied in batches (one
  // render per FLUSH_MS) so a burst of replayed history or of model deltas does not render per event.
  useEffect(() => {
    let closed = false;
    let queue = [];
    let timer = null;
    const flush = () => {
      timer = null;
      const batch = queue;
      queue = [];
      setModel((m) => {
        let next = m;
        let committed = [];
        for (const item of batch) {
          if (item.transient) {
            if (committed.length) next = applyCommitted(next, committed);
            committed = [];
            next = applyTransient(next, item.transient);
          } else {
            committed = committed.concat(item.committed);
          }
        }
        return committed.length ? applyCommitted(next, committed) : next;
      });
    };
    const enqueue = (item) => {
      queue.push(item);
      if (!timer) timer = setTimeout(flush, FLUSH_MS);
    };

    const stream = new RunStream(runId, {
      onCommitted: (events) => {
        enqueue({ committed: events });
        // A run that stopped may have ended on an event type without a listener: read the rest.
        if (events.some((e) => e.type === 'run.paused' || e.type === 'run.finished' || e.type === 'run.failed' || e.type === 'run.cancelled')) {
          stream.catchUp();
        }
      },
      onTransient: (event) => enqueue({ transient: event }),
      onConnection: (status) => {
        if (!closed) setConnection(status);
      },
      onFatal: (error) => {
        if (!closed && !error.sessionLost) setStreamError(error);
      },
      reconcile: async () => {
        const run = await api.get(`/runs/${seg(runId)}`);
        if (!closed) setModel((m) => (m ? withRun(m, run) : m));
      },
    });
    streamRef.current = stream;

    api
      .get(`/runs/${seg(runId)}`)
      .then((run) => {
        if (closed) return;
        setModel(initialModel(run));
        stream.start(0);
      })
      .catch((e) => {
        if (!closed) setLoadError(e);
      });

    return () => {
      closed = true;
      clearTimeout(timer);
      stream.stop();
    };
  }, [runId]);

  // Waiting for an answer to a question none of the events showed (its event type went missing):
  // the run document names it.
  const missingQuestion = model && model.state === 'input_required' && !model.question;
  useEffect(() => {
    if (!missingQuestion) return;
    api
      .get(`/runs/${seg(runId)}`)
      .then((run) => setModel((m) => withRun(m, run)))
      .catch(() => {});
  }, [missingQuestion]);

  // Tell the page and the user about changes that happened after the page opened.
  const state = model && model.state;
  const previous = useRef(null);
  useEffect(() => {
    if (!state) return;
    if (previous.current && previous.current !== state) {
      announce(stateSentence(state, model.question, model.error));
      onStateChanged(state);
    }
    previous.current = state;
  }, [state]);
  const filesVersion = model ? model.filesVersion : 0;
  useEffect(() => {
    if (filesVersion > 0) onFilesChanged();
  }, [filesVersion]);
  const previewVersion = model ? model.previewVersion : 0;
  useEffect(() => {
    if (previewVersion > 0) onPreviewStarted();
  }, [previewVersion]);

  if (loadError) return <ErrorBox error={loadError} testid="run-error" />;
  if (!model) return <Loading label="Opening the run…" testid="run-loading" />;

  const update = (run) => setModel((m) => withRun(m, run));
  return (
    <section class="run" aria-labelledby="run-heading" data-testid="run-view" data-run-id={runId}>
      <div class="run-head">
        <h2 id="run-heading">Run</h2>
        <StateBadge state={model.state} testid="run-state" />
        <ConnectionState connection={connection} onRetry={() => streamRef.current && streamRef.current.reconnectNow()} />
      </div>
      <ErrorBox error={streamError} testid="stream-error" />
      <p class="run-description pre" data-testid="run-description-text">{model.run.description}</p>
      {model.state === 'failed' && model.error && (
        <p class="error-box" role="alert" data-testid="run-failure">
          <span class="error-title">The run failed.</span> {model.error}
        </p>
      )}
      <p class="run-activity" role="status" aria-live="polite" data-testid="run-status">
        {isActive(model.state) && model.state !== 'input_required' && <span class="spinner spinner-inline" aria-hidden="true" />}
        {model.activity || stateSentence(model.state, model.question, model.error)}
      </p>
      {model.state === 'input_required' && model.question && (
        <QuestionBox key={model.question.question_id} runId={runId} question={model.question}
          onAnswered={() => setModel((m) => ({ ...m, question: null, state: 'queued' }))} />
      )}
      <RunControls runId={runId} state={model.state} onRun={update} />
      <EventList events={model.events} live={model.live} projectId={projectId} />
      <MessageForm runId={runId} state={model.state} onRun={update} />
    </section>
  );
}

function stateSentence(state, question, error) {
  switch (state) {
    case 'queued':
      return 'The run is queued; a worker takes it in a moment.';
    case 'running':
      return 'The agents are working.';
    case 'input_required':
      return question ? `The run asks: ${question.text}` : 'The run waits for your answer.';
    case 'succeeded':
      return 'The run finished. Send a message to continue it with a new feature.';
    case 'failed':
      return `The run failed${error ? `: ${error}` : ''}. Resume it to try the failed step again.`;
    case 'cancelled':
      return 'The run was cancelled. Resume it to continue.';
    default:
      return '';
  }
}

const CONNECTION_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline: waiting for the network',
  stopped: 'Not watching',
};

function ConnectionState({ connection, onRetry }) {
  const { state, attempt, retryInMs } = connection;
  let text = CONNECTION_TEXT[state] || state;
  if (state === CONNECTION.reconnecting && retryInMs > 0) {
    text = `Connection lost; retrying in ${Math.ceil(retryInMs / 1000)} s (attempt ${attempt})`;
  }
  return (
    <span class={`connection connection-${state}`} data-testid="connection-state" data-state={state}>
      <span class="connection-dot" aria-hidden="true" />
      <span>{text}</span>
      {(state === CONNECTION.reconnecting || state === CONNECTION.offline) && (
        <button type="button" class="link-button" onClick={onRetry} data-testid="connection-retry">
          Retry now
        </button>
      )}
    </span>
  );
}

function RunControls({ runId, state, onRun }) {
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const [confirmDialog, confirm] = useConfirm();

  const act = async (action) => {
    if (action === 'cancel') {
      const ok = await confirm({
        title: 'Cancel this run?',
        body: 'The step under way stops and its unfinished file writes are undone. You can resume the run later.',
        confirmLabel: 'Cancel run',
        cancelLabel: 'Keep running',
        danger: true,
      });
      if (!ok) return;
    }
    setBusy(action);
    setError(null);
    try {
      onRun(await api.post(`/runs/${seg(runId)}/${action}`));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };

  const canCancel = isActive(state);
  const canResume = state === 'failed' || state === 'cancelled';
  if (!canCancel && !canResume && !error) return null;
  return (
    <div class="actions run-controls">
      {canCancel && (
        <BusyButton busy={busy === 'cancel'} class="button button-danger" onClick={() => act('cancel')} data-testid="run-cancel">
          Cancel run
        </BusyButton>
      )}
      {canResume && (
        <BusyButton busy={busy === 'resume'} class="button button-primary" onClick={() => act('resume')} data-testid="run-resume">
          Resume run
        </BusyButton>
      )}
      <ErrorBox error={error} onDismiss={() => setError(null)} testid="run-control-error" />
      {confirmDialog}
    </div>
  );
}

function QuestionBox({ runId, question, onAnswered }) {
  const [answer, setAnswer] = useState('');
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const options = question.options || [];

  const send = async (value) => {
    if (busy !== null) return;
    setBusy(value);
    setError(null);
    try {
      await api.post(`/runs/${seg(runId)}/answers`, { question_id: question.question_id, answer: value });
      onAnswered();
    } catch (e) {
      setError(e);
      setBusy(null);
    }
  };

  return (
    <section class="question card" aria-labelledby="question-title" data-testid="question" data-question-id={question.question_id}>
      <h3 id="question-title">{agentName(question.agent) || 'The run'} asks</h3>
      <p class="pre" data-testid="question-text">{question.text}</p>
      {options.length > 0 ? (
        <div class="actions" role="group" aria-label="Answers">
          {options.map((option) => (
            <BusyButton key={option} busy={busy === option} class="button button-primary" onClick={() => send(option)}
              data-testid="answer-option" data-option={option}>
              {option}
            </BusyButton>
          ))}
        </div>
      ) : (
        <form class="form" onSubmit={(e) => { e.preventDefault(); send(answer); }} data-testid="answer-form">
          <Field id="answer-input" label="Your answer" error={error} path="/answer">
            {(a) => (
              <textarea {...a} rows={3} maxLength={8000} value={answer} onInput={(e) => setAnswer(e.currentTarget.value)}
                data-testid="answer-input" />
            )}
          </Field>
          <BusyButton type="submit" busy={busy !== null} class="button button-primary" data-testid="answer-submit">
            {busy !== null ? 'Sending…' : 'Send answer'}
          </BusyButton>
        </form>
      )}
      <ErrorBox error={error} fields={['/answer']} testid="answer-error" />
    </section>
  );
}

function MessageForm({ runId, state, onRun }) {
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [sent, setSent] = useState(false);
  const blocked = state === 'failed' || state === 'cancelled';
  const continuing = state === 'succeeded';

  const submit = async (event) => {
    event.preventDefault();
    if (busy || blocked || !text.trim()) return;
    setBusy(true);
    setError(null);
    setSent(false);
    try {
      await api.post(`/runs/${seg(runId)}/messages`, { text: text.trim() });
      setText('');
      setSent(true);
      // A message to a finished run queues it again; read it so the state shows that at once.
      if (continuing) onRun(await api.get(`/runs/${seg(runId)}`));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="form card message-form" onSubmit={submit} data-testid="message-form" aria-busy={busy ? 'true' : undefined}>
      <Field id="message-input" label={continuing ? 'Ask for a change or a new feature' : 'Message to the agents'}
        error={error} path="/text"
        hint={blocked ? 'Resume the run first: a failed or cancelled run takes no messages.'
          : continuing ? 'The finished run continues with your request.' : 'Taken before the next step; the step under way is not interrupted.'}>
        {(a) => (
          <textarea {...a} rows={2} maxLength={8000} value={text} disabled={blocked}
            onInput={(e) => setText(e.currentTarget.value)} data-testid="message-input" />
        )}
      </Field>
      <ErrorBox error={error} fields={['/text']} testid="message-error" />
      {sent && <p class="success" role="status" data-testid="message-sent">Sent.</p>}
      <BusyButton type="submit" busy={busy} class="button" disabled={blocked} data-testid="message-send">
        {continuing ? 'Continue the run' : 'Send message'}
      </BusyButton>
    </form>
  );
}

// The events, oldest first, then what is streaming now. Each item re-renders only when its event
// object changes (they never do; live items get a new object per delta). The list follows new
// events while the reader is at its end, and stays put when they scrolled up to read.
function EventList({ events, live, projectId }) {
  const ref = useRef(null);
  const following = useRef(true);
  const autoTop = useRef(0);
  // Only a scroll up by the reader stops following; the scroll events our own scrolling causes
  // arrive after more events may have made the list taller, so they must not count.
  const onScroll = () => {
    const el = ref.current;
    if (!el) return;
    if (el.scrollHeight - el.scrollTop - el.clientHeight < 40) following.current = true;
    else if (el.scrollTop < autoTop.current - 8) following.current = false;
  };
  useEffect(() => {
    const el = ref.current;
    if (el && following.current) {
      el.scrollTop = el.scrollHeight;
      autoTop.current = el.scrollTop;
    }
  }, [events.length, live]);

  return (
    <div class="events-wrap" ref={ref} onScroll={onScroll} tabIndex={0} role="region" aria-label="Run events">
      {events.length === 0 && live.length === 0 && <p class="muted">No events yet.</p>}
      <ol class="events" data-testid="event-list" data-count={events.length}>
        {events.map((event) => (
          <EventItem key={event.seq} event={event} projectId={projectId} />
        ))}
        {live.map((item) => (
          <LiveItem key={item.key} item={item} />
        ))}
      </ol>
    </div>
  );
}

class EventItem extends Component {
  shouldComponentUpdate(next) {
    return next.event !== this.props.event;
  }

  render({ event, projectId }) {
    const { summary, body } = describe(event, projectId);
    return (
      <li class={`event event-${event.type.replace(/\./g, '-')}`} data-testid="event" data-type={event.type} data-seq={event.seq}>
        <span class="event-time">{formatTime(event.created_at)}</span>
        <span class="event-type">{event.type}</span>
        <span class="event-summary">{summary}</span>
        <details class="event-raw">
          <summary>
            JSON<span class="sr-only"> payload of event {event.seq}</span>
          </summary>
          <pre>{JSON.stringify(event.payload, null, 2)}</pre>
        </details>
        {body}
      </li>
    );
  }
}

function LiveItem({ item }) {
  if (item.kind === 'llm') {
    return (
      <li class="event event-live" data-testid="event" data-type="llm.delta" data-live="true">
        <span class="event-type">llm.delta</span>
        <span class="event-summary">{agentName(item.agent) || 'A model'} is writing…</span>
        <pre class="stream-text" data-testid="llm-stream">{item.text}</pre>
      </li>
    );
  }
  return (
    <li class="event event-live" data-testid="event" data-type="command.output" data-live="true">
      <span class="event-type">command.output</span>
      <span class="event-summary">A command is running…</span>
      <pre class="stream-text" data-testid="command-stream">
        {item.lines.map((l, i) => (
          <span key={i} class={l.stream === 'stderr' ? 'stderr' : undefined}>{l.text}{'\n'}</span>
        ))}
      </pre>
    </li>
  );
}

function fileLink(projectId, path) {
  return (
    <a href={link('projects', projectId, 'files', path)}>
      <code>{path}</code>
    </a>
  );
}

// The one-line summary and optional body of an event, by type.
function describe(event, projectId) {
  const p = event.payload || {};
  const agent = agentName(p.agent);
  switch (event.type) {
    case 'run.created':
      return { summary: 'Run created.' };
    case 'run.started':
      return { summary: `Started (step ${p.step}).` };
    case 'run.resumed':
      return { summary: p.by === 'message' ? 'Reopened by your message.' : p.by === 'user' ? 'Resumed by you.' : `Resumed (was ${p.was}).` };
    case 'run.paused':
      return { summary: 'Waiting for your answer.' };
    case 'run.finished':
      return { summary: `Finished after ${p.steps} steps.`, body: p.summary ? <p class="pre event-body">{p.summary}</p> : null };
    case 'run.failed':
      return { summary: `Failed: ${p.reason || 'no reason given'}` };
    case 'run.cancelled':
      return { summary: p.by === 'user' ? 'Cancelled by you.' : `Stopped: ${p.reason || 'cancelled'}` };
    case 'step.started':
      return { summary: `Step ${p.sequence}: ${agent || p.agent}${p.branches ? ` (${p.branches} tasks in parallel)` : ''}` };
    case 'step.committed':
      return {
        summary: `Step ${p.sequence} done by ${agent || p.agent}: ${p.summary || ''}`,
        body:
          Array.isArray(p.files) && p.files.length > 0 ? (
            <ul class="event-files">
              {p.files.map((f) => (
                <li key={f.path}>{f.deleted ? <><code>{f.path}</code> deleted</> : <>{fileLink(projectId, f.path)} v{f.version}, {formatBytes(f.size)}</>}</li>
              ))}
            </ul>
          ) : null,
      };
    case 'file.written':
      return {
        summary: p.deleted ? <>Deleted <code>{p.path}</code></> : <>Wrote {fileLink(projectId, p.path)} (v{p.version}, {formatBytes(p.size)})</>,
      };
    case 'llm.exchange': {
      const usage = p.usage || {};
      return {
        summary: `${agent} ← ${p.model}: ${formatInt((usage.prompt_tokens || 0) + (usage.completion_tokens || 0))} tokens, ${formatCost(p.cost_micro_usd)}`,
        body: (
          <details class="event-body">
            <summary>Model answer</summary>
            <pre>{p.content}</pre>
          </details>
        ),
      };
    }
    case 'question.asked':
      return { summary: `${agent || 'The run'} asks: ${p.text}${p.options && p.options.length ? ` (${p.options.join(' / ')})` : ''}` };
    case 'question.answered':
      return { summary: `Answered: ${p.answer}` };
    case 'command.finished': {
      const full = Array.isArray(p.argv) ? p.argv.join(' ') : String(p.argv || '');
      // An inline script (python3 -c ...) can be kilobytes: the summary names the command, the title
      // attribute keeps all of it.
      const argv = full.length > 160 ? `${full.slice(0, 157)}…` : full;
      const how = p.timed_out ? 'timed out' : p.exit_code === null ? `was stopped by signal ${p.signal}` : `exited with ${p.exit_code}`;
      return {
        summary: <><code title={full}>{argv}</code> {how} after {formatInt(p.wall_ms)} ms</>,
        body:
          p.stdout_tail || p.stderr_tail ? (
            <details class="event-body" open={p.exit_code !== 0}>
              <summary>Output</summary>
              {p.stdout_tail && <pre data-testid="command-stdout">{p.stdout_tail}</pre>}
              {p.stderr_tail && <pre class="stderr" data-testid="command-stderr">{p.stderr_tail}</pre>}
            </details>
          ) : null,
      };
    }
    case 'message.received':
      return { summary: <>You: <q>{p.text}</q></> };
    case 'budget.warning':
      return { summary: `Budget: ${formatInt(p.used)} of ${formatInt(p.max)} ${p.limit === 'tokens' ? 'tokens' : 'µ$'} used.` };
    case 'spec.written':
      return { summary: `Spec written (${p.complexity}).` };
    case 'spec.updated':
      return { summary: `Spec updated: new epic ${p.name || p.epic || ''}.` };
    case 'architecture.chosen':
      return { summary: `Architecture: ${p.app_type}. ${p.summary || ''}` };
    case 'template.applied':
      return { summary: `Template ${p.name} applied (${(p.files || []).length} files).` };
    case 'plan.made':
      return {
        summary: `Plan for ${p.name || `epic ${p.epic}`}: ${(p.tasks || []).length} tasks.`,
        body: Array.isArray(p.tasks) ? <ol class="event-files">{p.tasks.map((t, i) => <li key={i}>{typeof t === 'string' ? t : t.description}</li>)}</ol> : null,
      };
    case 'task.started':
      return { summary: `Task ${p.task}: ${p.description}` };
    case 'task.completed':
      return { summary: `Task ${p.task} done.` };
    case 'iteration.started':
      return { summary: `Fix iteration ${p.iteration} (${p.steps} steps).` };
    case 'code.written':
      return { summary: <>Code written: {(p.paths || []).map((path, i) => <span key={path}>{i ? ', ' : ''}{fileLink(projectId, path)}</span>)}</> };
    case 'error.diagnosed':
      return { summary: `Diagnosis: ${p.diagnosis}` };
    case 'app.checked':
      return { summary: p.passed ? `The app passed its ${p.checks} checks.` : 'The app failed its checks.' };
    case 'app.preview':
      return { summary: p.started ? 'The preview was started.' : 'The preview could not start.' };
    case 'app.finished':
      return { summary: 'The app is finished.', body: p.summary ? <p class="pre event-body">{p.summary}</p> : null };
    case 'docs.written':
      return { summary: 'Documentation written.' };
    default:
      return { summary: agent ? `${agent}` : '' };
  }
}
