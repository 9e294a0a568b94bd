// Folding a run's events into what the run view shows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyCommitted, applyTransient, initialModel, withRun } from '../src/runModel.js';

const run = { id: 'r', state: 'queued', last_event_seq: 1, error: null, question: null, description: 'd' };
let seq = 0;
const ev = (type, payload = {}) => ({ seq: ++seq, type, payload, created_at: '2026-01-01T00:00:00Z' });

test('state follows the lifecycle events, and a question shows while the run waits', () => {
  seq = 0;
  let m = initialModel({ ...run, last_event_seq: 0 });
  m = applyCommitted(m, [ev('run.created'), ev('run.started', { step: 1 }), ev('step.started', { sequence: 2, agent: 'agent.spec_writer' })]);
  assert.equal(m.state, 'running');
  m = applyCommitted(m, [ev('question.asked', { question_id: '1.step.q', text: 'Why?', options: [] }), ev('run.paused', { question_id: '1.step.q' })]);
  assert.equal(m.state, 'input_required');
  assert.equal(m.question.question_id, '1.step.q');
  m = applyCommitted(m, [ev('question.answered', { question_id: '1.step.q', answer: 'because' })]);
  assert.equal(m.state, 'queued');
  assert.equal(m.question, null);
  m = applyCommitted(m, [ev('run.failed', { reason: 'limit' })]);
  assert.equal(m.state, 'failed');
  assert.equal(m.error, 'limit');
  m = applyCommitted(m, [ev('run.resumed', { by: 'user', was: 'failed' })]);
  assert.equal(m.state, 'queued');
  assert.equal(m.error, null);
  assert.equal(m.events.length, 8);
});

test('replayed history does not override the newer run document', () => {
  seq = 0;
  const doc = { ...run, state: 'succeeded', last_event_seq: 5 };
  let m = initialModel(doc);
  m = applyCommitted(m, [ev('run.created'), ev('run.started'), ev('step.started', { sequence: 2 })]);
  assert.equal(m.state, 'succeeded');
  m = applyCommitted(m, [ev('step.committed', { sequence: 2, files: [{ path: 'a' }] }), ev('run.finished', { steps: 2 })]);
  assert.equal(m.filesVersion, 0, 'history is not news');
  m = applyCommitted(m, [ev('run.resumed', { by: 'message', was: 'succeeded' })]);
  assert.equal(m.state, 'queued');
  m = applyCommitted(m, [ev('step.committed', { sequence: 3, files: [{ path: 'b' }] }), ev('app.preview', { started: true })]);
  assert.equal(m.filesVersion, 1);
  assert.equal(m.previewVersion, 1);
});

test('a run document read later wins unless newer events were applied', () => {
  seq = 0;
  let m = initialModel({ ...run, last_event_seq: 0 });
  m = applyCommitted(m, [ev('run.created'), ev('run.started')]);
  m = withRun(m, { ...run, state: 'input_required', last_event_seq: 4, question: { question_id: 'q', text: 't', options: [] } });
  assert.equal(m.state, 'input_required');
  assert.equal(m.question.question_id, 'q');
  m = withRun(m, { ...run, state: 'running', last_event_seq: 3 });
  assert.equal(m.state, 'input_required', 'an older document is ignored');
});

test('model text and command output stream into live items that the committed result replaces', () => {
  seq = 0;
  let m = initialModel({ ...run, last_event_seq: 0 });
  const p = { base: 3, branch: -1, index: 0, agent: 'agent.developer' };
  m = applyTransient(m, { seq: null, type: 'llm.delta', payload: { ...p, text: 'Hel' } });
  m = applyTransient(m, { seq: null, type: 'llm.delta', payload: { ...p, text: 'lo' } });
  m = applyTransient(m, { seq: null, type: 'command.output', payload: { ...p, stream: 'stdout', line: 'ok' } });
  assert.equal(m.live.length, 2);
  assert.equal(m.live[0].text, 'Hello');
  assert.deepEqual(m.live[1].lines, [{ stream: 'stdout', text: 'ok' }]);
  m = applyCommitted(m, [ev('llm.exchange', { ...p, content: 'Hello' })]);
  assert.equal(m.live.length, 1);
  m = applyCommitted(m, [ev('command.finished', { ...p, exit_code: 0 })]);
  assert.equal(m.live.length, 0);
});

test('a pause after a resume shows the question asked before the cancel', () => {
  seq = 0;
  let m = initialModel({ ...run, last_event_seq: 0 });
  m = applyCommitted(m, [ev('run.created'), ev('question.asked', { question_id: '1.step.q', text: 'Why?', options: [] }), ev('run.paused', { question_id: '1.step.q' })]);
  m = applyCommitted(m, [ev('run.cancelled', { by: 'user', was: 'input_required' })]);
  assert.equal(m.question, null);
  m = applyCommitted(m, [ev('run.resumed', { by: 'user', was: 'cancelled' }), ev('run.resumed', { node: 'n' }), ev('run.paused', { question_id: '1.step.q' })]);
  assert.equal(m.state, 'input_required');
  assert.equal(m.question.text, 'Why?');
});
