// What the run view shows, folded from the run document and its events. Pure functions over plain
// objects: a new model per batch, old event objects kept as they are, so the list re-renders only the
// items that changed.

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
export const isTerminal = (state) => TERMINAL.has(state);
export const isActive = (state) => state === 'queued' || state === 'running' || state === 'input_required';

const MAX_LIVE_LINES = 400;

// `initialSeq`: the run's last_event_seq when the page opened it. Events up to it are history being
// replayed; only later ones count as news (a reload of the preview, an announcement).
export function initialModel(run) {
  return {
    run,
    state: run.state,
    stateSeq: run.last_event_seq || 0,
    error: run.error || null,
    question: run.state === 'input_required' ? run.question || null : null,
    initialSeq: run.last_event_seq || 0,
    events: [],
    live: [], // in-progress model text and command output: {key, kind, agent, text | lines}
    lastSeq: 0,
    activity: '', // what is happening now, one line for the status region
    filesVersion: 0, // bumped when a new event committed files
    previewVersion: 0, // bumped when an agent started the preview
  };
}

// The run document read again (after a reconnect): it wins over what the events said, unless events
// newer than the document were already applied.
export function withRun(model, run) {
  const next = { ...model, run };
  if ((run.last_event_seq || 0) >= model.stateSeq) {
    next.state = run.state;
    next.stateSeq = run.last_event_seq || 0;
    next.error = run.error || null;
    next.question = run.state === 'input_required' ? run.question || null : null;
  }
  return next;
}

const liveKey = (kind, p) => `${kind}:${p.base}.${p.branch}.${p.index}`;

function stateFor(event) {
  const p = event.payload || {};
  switch (event.type) {
    case 'run.created':
      return 'queued';
    case 'run.started':
      return 'running';
    case 'run.resumed':
      // By the API (a resume, a message to a finished run): queued until a node claims it.
      return p.by ? 'queued' : 'running';
    case 'step.started':
      return 'running';
    case 'run.paused':
      return 'input_required';
    case 'question.answered':
      return 'queued';
    case 'run.finished':
      return 'succeeded';
    case 'run.failed':
      return 'failed';
    case 'run.cancelled':
      return 'cancelled';
    default:
      return null;
  }
}

export function applyCommitted(model, events) {
  const next = { ...model, events: model.events.concat(events) };
  let live = model.live;
  for (const event of events) {
    const p = event.payload || {};
    next.lastSeq = event.seq;
    const state = stateFor(event);
    if (state && event.seq > next.stateSeq) {
      next.state = state;
      next.stateSeq = event.seq;
      if (state === 'failed') next.error = p.reason || null;
      else if (state !== 'input_required') next.error = null;
      if (state !== 'input_required') next.question = null;
    }
    switch (event.type) {
      case 'question.asked':
        if (event.seq > model.stateSeq || !next.question) {
          next.question = { question_id: p.question_id, text: p.text, options: p.options || [], agent: p.agent };
        }
        break;
      case 'question.answered':
        if (next.question && next.question.question_id === p.question_id) next.question = null;
        break;
      case 'run.paused':
        live = []; // the step that streamed them is over
        // A resumed step that asks again replays its recorded question instead of asking anew, so
        // the pause may name a question asked before a cancel: find it in the events already seen.
        if (next.state === 'input_required' && (!next.question || next.question.question_id !== p.question_id)) {
          const asked = findQuestion(next.events, p.question_id);
          if (asked) next.question = asked;
        }
        break;
      case 'llm.exchange':
        live = live.filter((l) => l.key !== liveKey('llm', p));
        break;
      case 'command.finished':
        live = live.filter((l) => l.key !== liveKey('cmd', p));
        break;
      case 'run.finished':
      case 'run.failed':
      case 'run.cancelled':
        live = []; // the step that streamed them is over
        break;
      default:
        break;
    }
    if (event.seq > model.initialSeq) {
      if (event.type === 'step.committed' && Array.isArray(p.files) && p.files.length > 0) next.filesVersion += 1;
      if (event.type === 'app.preview' && p.started) next.previewVersion += 1;
    }
    next.activity = activityOf(event) || next.activity;
  }
  next.live = live;
  return next;
}

export function applyTransient(model, event) {
  const p = event.payload || {};
  if (event.type === 'llm.delta') {
    const key = liveKey('llm', p);
    const found = model.live.find((l) => l.key === key);
    const item = found
      ? { ...found, text: found.text + (p.text || '') }
      : { key, kind: 'llm', type: event.type, agent: p.agent, text: p.text || '' };
    return { ...model, live: replaceOrAppend(model.live, item), activity: `${p.agent || 'a model'} is writing…` };
  }
  if (event.type === 'command.output') {
    const key = liveKey('cmd', p);
    const found = model.live.find((l) => l.key === key);
    const line = { stream: p.stream, text: p.line };
    const lines = found ? found.lines.concat([line]).slice(-MAX_LIVE_LINES) : [line];
    const item = found ? { ...found, lines } : { key, kind: 'cmd', type: event.type, agent: p.agent, lines };
    return { ...model, live: replaceOrAppend(model.live, item), activity: 'a command is running…' };
  }
  return model;
}

function findQuestion(events, questionId) {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    if (e.type === 'question.asked' && e.payload && e.payload.question_id === questionId) {
      const p = e.payload;
      return { question_id: p.question_id, text: p.text, options: p.options || [], agent: p.agent };
    }
  }
  return null;
}

function replaceOrAppend(list, item) {
  const index = list.findIndex((l) => l.key === item.key);
  if (index < 0) return list.concat([item]);
  const copy = list.slice();
  copy[index] = item;
  return copy;
}

// One line for the status region, for the events that mark progress.
function activityOf(event) {
  const p = event.payload || {};
  switch (event.type) {
    case 'run.started':
    case 'run.resumed':
      return 'The run is under way.';
    case 'step.started':
      return `Step ${p.sequence}: ${p.agent} is working.`;
    case 'step.committed':
      return `Step ${p.sequence} done: ${p.summary || p.agent}.`;
    case 'run.paused':
      return 'The run waits for your answer.';
    case 'run.finished':
      return 'The run finished.';
    case 'run.failed':
      return `The run failed: ${p.reason || 'no reason given'}.`;
    case 'run.cancelled':
      return 'The run was cancelled.';
    default:
      return '';
  }
}
