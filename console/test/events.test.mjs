// RunStream: every committed event exactly once and in order, across duplicates, gaps and reconnects.
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';

// The browser pieces RunStream touches, as small fakes.
class FakeEventSource {
  static all = [];
  constructor(url) {
    this.url = url;
    this.listeners = {};
    this.closed = false;
    FakeEventSource.all.push(this);
  }
  addEventListener(type, fn) {
    this.listeners[type] = fn;
  }
  close() {
    this.closed = true;
  }
  // Like a browser: a named event reaches only a listener for its name, never onmessage.
  emit(doc) {
    const fn = this.listeners[doc.type];
    if (fn) fn({ data: JSON.stringify(doc) });
  }
}
globalThis.EventSource = FakeEventSource;
globalThis.window = { addEventListener() {}, removeEventListener() {} };
let pages = [];
globalThis.fetch = async (url) => {
  const after = Number(new URL(url, 'http://x').searchParams.get('after'));
  const items = pages.filter((e) => e.seq > after);
  return new Response(JSON.stringify({ items }), { status: 200, headers: { 'Content-Type': 'application/json' } });
};
globalThis.document = { cookie: '' };

const { RunStream } = await import('../src/events.js');
const doc = (seq, type = 'step.started') => ({ seq, type, payload: {}, run_id: 'r' });
const tick = () => new Promise((resolve) => setTimeout(resolve, 10));

let delivered;
let stream;
beforeEach(() => {
  FakeEventSource.all = [];
  pages = [];
  delivered = [];
  stream = new RunStream('r', {
    onCommitted: (events) => delivered.push(...events.map((e) => e.seq)),
    onTransient: () => {},
    onConnection: () => {},
    reconcile: async () => {},
  });
});

test('duplicates are dropped and transient events pass by', () => {
  stream.start(0);
  const source = FakeEventSource.all[0];
  assert.match(source.url, /\/api\/v1\/runs\/r\/events\?after=0$/);
  source.emit(doc(1));
  source.emit(doc(2));
  source.emit(doc(2));
  source.emit({ seq: null, type: 'llm.delta', payload: {} });
  source.emit(doc(1));
  source.emit(doc(3));
  assert.deepEqual(delivered, [1, 2, 3]);
  stream.stop();
});

test('a gap (an event type without a listener) is filled from the JSON list, in order', async () => {
  stream.start(0);
  const source = FakeEventSource.all[0];
  pages = [doc(1), doc(2, 'agent.custom'), doc(3)];
  source.emit(doc(1));
  source.emit(doc(2, 'agent.custom')); // no listener: the fake drops it like a browser would
  source.emit(doc(3));
  assert.deepEqual(delivered, [1]);
  await tick();
  assert.deepEqual(delivered, [1, 2, 3]);
  stream.stop();
});

test('after an error the stream reopens after the last delivered seq', async () => {
  stream.start(0);
  const first = FakeEventSource.all[0];
  first.emit(doc(1));
  first.emit(doc(2));
  first.onerror();
  assert.equal(first.closed, true);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const second = FakeEventSource.all[1];
  assert.ok(second, 'a new source was opened');
  assert.match(second.url, /after=2$/);
  second.emit(doc(2));
  second.emit(doc(3));
  assert.deepEqual(delivered, [1, 2, 3]);
  stream.stop();
});
