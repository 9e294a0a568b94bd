// The hash routes the pages and links rely on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { link, parseHash } from '../src/router.js';

test('parses each route with its parameters', () => {
  assert.deepEqual(parseHash('#/login').name, 'login');
  assert.equal(parseHash('').name, 'home');
  assert.equal(parseHash('#/').name, 'home');
  const run = parseHash('#/projects/p1/runs/r2');
  assert.equal(run.name, 'run');
  assert.deepEqual(run.params, { projectId: 'p1', runId: 'r2' });
  assert.equal(parseHash('#/projects/p1').name, 'project');
  assert.equal(parseHash('#/admin/audit').name, 'audit');
  assert.equal(parseHash('#/nowhere').name, 'notfound');
  assert.equal(parseHash('#/projects/p1/runs').name, 'notfound');
});

test('a file path keeps its slashes and decodes each segment', () => {
  const route = parseHash('#/projects/p1/files/src/my%20app/index.js');
  assert.equal(route.name, 'files');
  assert.equal(route.params.path, 'src/my app/index.js');
  assert.equal(parseHash('#/projects/p1/files').params.path, undefined);
});

test('the query after ? is parsed', () => {
  const route = parseHash('#/login?next=%2Fprojects%2Fp1&registered=1');
  assert.equal(route.name, 'login');
  assert.deepEqual(route.query, { next: '/projects/p1', registered: '1' });
});

test('link encodes segments and round-trips through parseHash', () => {
  const hash = link('projects', 'p1', 'files', 'a b/c#d.txt');
  assert.equal(hash, '#/projects/p1/files/a%20b/c%23d.txt');
  assert.equal(parseHash(hash).params.path, 'a b/c#d.txt');
});
