// A run's event stream that survives network drops and expired sessions, and hands every committed
// event to the page exactly once, in seq order.
//
// How:
// - EventSource on GET /api/v1/runs/{id}/events?after=<last seq delivered>. The browser's own retry is
//   not used: after a drop, or after the server ends the stream because the access token it was opened
//   with expired, the retry would go out with the old (or no) cookie and fail for good. Instead every
//   error closes the source, `reconcile` runs (it reads the run through api.js, which refreshes the
//   session on 401) and a new source opens after the last seq delivered.
// - Committed events carry `seq` 1, 2, 3 ... without gaps. One that arrives twice (the server replays
//   from `after`, a gap fill overlaps the stream) is dropped; one that arrives early waits for the
//   missing ones. Transient events (`seq: null`: model text, command output) are passed on at once.
// - The server names each SSE event after its type, and EventSource only dispatches names it has a
//   listener for, so an agent's own event type the console does not know would never arrive. A gap in
//   the seqs shows that one was skipped, and the missing range is read from the JSON form of the same
//   route (Accept: application/json, ?after=).
import { API, api, seg } from './api.js';

// Every type docs/api.md ("Run events") and docs/pipeline.md ("Events") name.
export const KNOWN_TYPES = [
  'run.created', 'run.started', 'run.resumed', 'run.paused', 'run.finished', 'run.failed', 'run.cancelled',
  'step.started', 'step.committed', 'file.written', 'llm.exchange', 'llm.delta', 'question.asked',
  'question.answered', 'command.finished', 'command.output', 'message.received', 'budget.warning',
  'spec.written', 'spec.updated', 'architecture.chosen', 'architecture.warning', 'template.applied',
  'template.unknown', 'plan.made', 'app.finished', 'task.started', 'iteration.started', 'code.written',
  'code.review_exhausted', 'exec.skipped', 'error.diagnosed', 'app.checked', 'app.preview', 'docs.written',
  'task.completed',
];

const MAX_BACKOFF_MS = 15000;
const PAGE = 500;

// Connection states, as shown to the user and in data-state of the connection indicator.
export const CONNECTION = {
  connecting: 'connecting',
  live: 'live',
  reconnecting: 'reconnecting',
  offline: 'offline',
  stopped: 'stopped',
};

export class RunStream {
  // handlers:
  //   onCommitted(events)   committed events, in seq order, each once
  //   onTransient(event)    an event with seq null
  //   onConnection(status)  {state, attempt, retryInMs}
  //   reconcile()           async; called before each reconnect (reads the run, refreshing the session)
  //   onFatal(error)        optional; the stream stopped for good (the run is gone, the session ended)
  constructor(runId, handlers) {
    this.runId = runId;
    this.handlers = handlers;
    this.lastSeq = 0;
    this.pending = new Map();
    this.source = null;
    this.timer = null;
    this.attempt = 0;
    this.stopped = true;
    this.filling = false;
    this.onOnline = () => {
      if (!this.stopped && !this.source) this.reconnectNow();
    };
    this.onOffline = () => {
      if (!this.stopped) this.status(CONNECTION.offline);
    };
  }

  start(afterSeq = this.lastSeq) {
    if (!this.stopped) return;
    this.stopped = false;
    this.lastSeq = Math.max(this.lastSeq, afterSeq);
    this.attempt = 0;
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.source) this.source.close();
    this.source = null;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    this.status(CONNECTION.stopped);
  }

  status(state, extra = {}) {
    this.handlers.onConnection({ state, attempt: this.attempt, ...extra });
  }

  open() {
    this.status(CONNECTION.connecting);
    const source = new EventSource(`${API}/runs/${seg(this.runId)}/events?after=${this.lastSeq}`);
    this.source = source;
    const onMessage = (message) => this.receive(message.data);
    for (const type of KNOWN_TYPES) source.addEventListener(type, onMessage);
    source.onmessage = onMessage;
    source.onopen = () => {
      this.attempt = 0;
      this.status(CONNECTION.live);
    };
    source.onerror = () => {
      // Whatever the cause (a drop, the stream ended, a 401 on reconnecting), take over from the
      // browser: close, and reconnect with a fresh session after the last seq delivered.
      source.close();
      if (this.source !== source) return;
      this.source = null;
      if (!this.stopped) this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    clearTimeout(this.timer);
    this.attempt += 1;
    if (typeof navigator !== 'undefined' && navigator.onLine === false) {
      this.status(CONNECTION.offline);
      return; // the `online` event reconnects
    }
    // The first retry is quick (a stream ended by an expired token is normal, not an outage); later
    // ones back off so a server that is down is not hammered.
    const delay = this.attempt === 1 ? 250 : Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (this.attempt - 2));
    this.status(CONNECTION.reconnecting, { retryInMs: delay });
    this.timer = setTimeout(() => this.reconnectNow(), delay);
  }

  async reconnectNow() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped || this.source) return;
    this.status(CONNECTION.reconnecting, { retryInMs: 0 });
    try {
      await this.handlers.reconcile();
    } catch (error) {
      if (this.stopped) return;
      // No session (the shell sends the user to sign in), or the run is gone or not the user's:
      // retrying cannot help.
      if (error && (error.sessionLost || error.status === 403 || error.status === 404)) {
        this.stop();
        if (this.handlers.onFatal) this.handlers.onFatal(error);
        return;
      }
      this.scheduleReconnect();
      return;
    }
    if (!this.stopped && !this.source) this.open();
  }

  receive(data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return; // not a document of ours; nothing to show
    }
    if (event.seq === null || event.seq === undefined) {
      this.handlers.onTransient(event);
      return;
    }
    this.accept([event]);
  }

  accept(events) {
    for (const event of events) {
      if (typeof event.seq !== 'number' || event.seq <= this.lastSeq) continue;
      this.pending.set(event.seq, event);
    }
    const ready = [];
    while (this.pending.has(this.lastSeq + 1)) {
      const next = this.pending.get(this.lastSeq + 1);
      this.pending.delete(this.lastSeq + 1);
      this.lastSeq += 1;
      ready.push(next);
    }
    if (ready.length > 0) this.handlers.onCommitted(ready);
    if (this.pending.size > 0) this.fillGap();
  }

  // Reads committed events after lastSeq from the JSON list until the gap is closed.
  async fillGap() {
    if (this.filling) return;
    this.filling = true;
    try {
      while (this.pending.size > 0 && !this.stopped) {
        const page = await this.fetchAfter(this.lastSeq);
        if (page.length === 0) break;
        this.accept(page);
      }
    } catch {
      if (!this.stopped) setTimeout(() => this.fillGap(), 2000);
    } finally {
      this.filling = false;
    }
  }

  // Committed events after `after`, one page, through api.js (so an expired session is refreshed).
  async fetchAfter(after) {
    const page = await api.get(`/runs/${seg(this.runId)}/events?after=${after}&limit=${PAGE}`, {
      accept: 'application/json',
    });
    return page.items || [];
  }

  // Reads whatever was committed after the last delivered event, once: after the run stopped, an event
  // of a type without a listener may be the last one, and no later event would reveal the gap.
  async catchUp() {
    try {
      for (;;) {
        const page = await this.fetchAfter(this.lastSeq);
        if (page.length === 0) return;
        this.accept(page);
        if (page.length < PAGE) return;
      }
    } catch {
      // The stream or the next catch-up delivers it; nothing is lost, only later.
    }
  }
}
