// The web console driven in Debian's Chromium, headless, through playwright-core: what a new user does
// from sign-up to a previewed app. Run by console_browser_test.cpp, which starts the server and the
// scripted model server and checks the outcome through the API afterwards; this script fails (exit 1,
// with the step that failed) on anything the browser did not show, and writes OUTPUT_DIR/report.json:
//   {project_id, run_id, committed_seqs, reloaded_mid_run, screenshots: {page: file},
//    axe: {page: {serious, violations}}, csp_violations: [...]}
// Environment: CONSOLE_URL, CHROMIUM, NODE_MODULES, OUTPUT_DIR, EMAIL, PASSWORD, MODEL_KEY, DESCRIPTION,
// QUESTION, ANSWER, PAGE_TITLE.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const consoleUrl = env('CONSOLE_URL');
const outputDir = env('OUTPUT_DIR');
// ES modules ignore NODE_PATH: the packages live in the build tree, reached through a require rooted there.
const require = createRequire(path.join(env('NODE_MODULES'), 'index.js'));
const { chromium } = require('playwright-core');
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const report = {
  project_id: null,
  run_id: null,
  committed_seqs: [],
  reloaded_mid_run: false,
  screenshots: {},
  axe: {},
  csp_violations: [],
};
let step = 'starting Chromium';
const log = (message) => console.log(`[${new Date().toISOString()}] ${message}`);
const testid = (page, id) => page.locator(`[data-testid="${id}"]`);

// A screenshot and an axe-core check of the page as it is now. axe runs through the DevTools protocol,
// which the page's CSP does not govern, so the check needs no exception in the policy.
async function capture(page, name) {
  const file = `${name}.png`;
  await page.screenshot({ path: path.join(outputDir, file) });  // what the user sees, not the whole scroll
  report.screenshots[name] = file;
  await page.evaluate(axeSource);
  const results = await page.evaluate(() =>
    globalThis.axe.run(document, { resultTypes: ['violations'] }));
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  report.axe[name] = {
    serious: serious.length,
    violations: results.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
    })),
  };
  if (serious.length > 0) log(`axe on ${name}: ${JSON.stringify(report.axe[name].violations)}`);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: env('CHROMIUM'),
    // Root in a container has no user namespace for Chromium's own sandbox; the page is our own console.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    page.on('console', (message) => {
      const text = message.text();
      if (text.includes('Content Security Policy') || text.includes('Content-Security-Policy')) {
        report.csp_violations.push(text);
      }
    });
    page.on('pageerror', (error) => log(`page error: ${error.message}`));
    await page.exposeBinding('__reportCsp', (_source, text) => report.csp_violations.push(text));
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) =>
        globalThis.__reportCsp(`${event.violatedDirective}: ${event.blockedURI}`));
    });

    try {
      await flow(page);
    } catch (error) {
      // What the page showed when the step failed, for whoever reads the failure.
      await page.screenshot({ path: path.join(outputDir, 'failure.png'), fullPage: true }).catch(() => {});
      const shown = await page.locator('[data-testid="event"]').evaluateAll((items) =>
        items.map((item) => `${item.getAttribute('data-seq')} ${item.getAttribute('data-type')}`)).catch(() => []);
      log(`events on the page when it failed: ${shown.join(', ')}`);
      throw error;
    }
  } finally {
    await browser.close();
  }
}

const seqsOnPage = (page) =>
  page.locator('[data-testid="event"][data-seq]').evaluateAll((items) =>
    items.map((item) => Number(item.getAttribute('data-seq'))));

function expectGapless(seqs, when) {
  seqs.forEach((seq, index) => {
    if (seq !== index + 1) {
      throw new Error(`${when}: the event list is ${JSON.stringify(seqs)}, expected 1..${seqs.length} once each`);
    }
  });
}

async function expectText(locator, text, what) {
  const shown = await locator.innerText();
  if (!shown.includes(text)) throw new Error(`${what} shows ${JSON.stringify(shown)}, expected ${JSON.stringify(text)}`);
}

async function flow(page) {
  step = 'opening the console';
  await page.goto(env('CONSOLE_URL'));
  await testid(page, 'login-form').waitFor();

  step = 'signing up';
  await testid(page, 'to-signup').click();
  await testid(page, 'signup-email').fill(env('EMAIL'));
  await testid(page, 'signup-password').fill(env('PASSWORD'));
  await testid(page, 'signup-confirm').fill(env('PASSWORD'));
  await testid(page, 'signup-submit').click();
  await testid(page, 'registered-notice').waitFor();
  await capture(page, 'login');

  step = 'logging in with the keyboard';
  if ((await testid(page, 'login-email').inputValue()) !== env('EMAIL')) {
    throw new Error('the sign-in form does not carry the address just registered');
  }
  await testid(page, 'login-password').focus();
  await page.keyboard.type(env('PASSWORD'));
  await page.keyboard.press('Enter');
  await expectText(testid(page, 'user-email'), env('EMAIL'), 'the header');

  step = 'adding an OpenAI key, verified';
  await testid(page, 'nav-keys').click();
  await testid(page, 'key-form').waitFor();
  // The provider field becomes a list of the server's providers once the page has read them.
  await page.locator('select[data-testid="key-provider"]').selectOption('openai');
  await testid(page, 'key-value').fill(env('MODEL_KEY'));
  await testid(page, 'key-verify').check();
  await testid(page, 'key-submit').click();
  const key = page.locator('[data-testid="key-item"][data-provider="openai"]');
  await key.waitFor();
  if ((await key.innerText()).includes(env('MODEL_KEY'))) throw new Error('the key list shows the whole key');
  await capture(page, 'keys');

  step = 'creating a project';
  await testid(page, 'nav-projects').click();
  await testid(page, 'project-name').fill('To-do list');
  await testid(page, 'project-create').click();
  await testid(page, 'project-page').waitFor();
  report.project_id = await testid(page, 'project-page').getAttribute('data-project-id');
  await testid(page, 'nav-projects').click();
  await page.locator(`[data-testid="project-item"][data-project-id="${report.project_id}"]`).waitFor();
  await capture(page, 'projects');
  await page.locator(`[data-testid="project-item"][data-project-id="${report.project_id}"]`)
    .getByTestId('project-open').click();

  step = 'starting a run';
  await testid(page, 'run-description').fill(env('DESCRIPTION'));
  await testid(page, 'run-start').click();
  await testid(page, 'run-view').waitFor();
  report.run_id = await testid(page, 'run-view').getAttribute('data-run-id');

  step = 'waiting for the clarifying question';
  await testid(page, 'question').waitFor({ timeout: 60000 });
  await expectText(testid(page, 'question-text'), env('QUESTION'), 'the question');
  const clarifyId = await testid(page, 'question').getAttribute('data-question-id');

  step = 'reloading the page while the run waits';
  const before = await seqsOnPage(page);
  expectGapless(before, 'before the reload');
  await page.reload();
  await testid(page, 'question').waitFor();
  await page.locator('[data-testid="connection-state"][data-state="live"]').waitFor();
  await page.waitForFunction(
    (count) => document.querySelectorAll('[data-testid="event"][data-seq]').length >= count, before.length);
  const after = await seqsOnPage(page);
  expectGapless(after, 'after the reload');
  report.reloaded_mid_run = true;

  step = 'answering the question';
  await testid(page, 'answer-input').fill(env('ANSWER'));
  await testid(page, 'answer-submit').click();
  await page.locator(`[data-testid="question"][data-question-id="${clarifyId}"]`).waitFor({ state: 'detached' });

  // The troubleshooter brings the preview up and asks the user to try the app at each epic's end: look
  // at it in the frame, then say it works, until the run finishes.
  step = 'trying the app in the preview frame when the run asks';
  const finished = page.locator('[data-testid="run-state"][data-state="succeeded"]');
  const review = page.locator('[data-testid="question"][data-question-id*="review."]');
  let reviews = 0;
  for (;;) {
    await finished.or(review).first().waitFor({ timeout: 120000 });
    if (await finished.isVisible()) break;
    await page.locator('[data-testid="preview-state"][data-state="running"]').waitFor({ timeout: 60000 });
    const frame = page.frameLocator('[data-testid="preview-frame"]');
    await frame.getByText(env('PAGE_TITLE')).first().waitFor({ timeout: 30000 });
    if (reviews === 0) await capture(page, 'preview');
    const id = await review.getAttribute('data-question-id');
    await testid(page, 'answer-input').fill('works');
    await testid(page, 'answer-submit').click();
    await page.locator(`[data-testid="question"][data-question-id="${id}"]`).waitFor({ state: 'detached' });
    reviews += 1;
  }
  if (reviews === 0) throw new Error('the run finished without asking the user to try the app');

  step = 'reading the finished run';
  await page.locator('[data-testid="event"][data-type="run.finished"]').waitFor();
  await page.waitForFunction(() => {
    const items = [...document.querySelectorAll('[data-testid="event"][data-seq]')];
    return items.length > 0 && items.at(-1).getAttribute('data-type') === 'run.finished';
  });
  report.committed_seqs = await seqsOnPage(page);
  expectGapless(report.committed_seqs, 'after the run finished');
  await capture(page, 'run');

  step = 'browsing the files';
  await testid(page, 'project-files').click();
  await testid(page, 'file-tree').waitFor();
  await page.locator('[data-testid="tree-file"][data-path="server.js"]').click();
  await testid(page, 'file-content').waitFor();
  await expectText(testid(page, 'file-content'), 'listen', 'server.js');
  await capture(page, 'files');

  step = 'reading the usage';
  await testid(page, 'nav-usage').click();
  await testid(page, 'usage-report').waitFor();
  await expectText(testid(page, 'usage-by-model'), 'test-model', 'usage by model');
  await capture(page, 'usage');

  step = 'reading the projects on a phone-sized screen';
  await page.setViewportSize({ width: 390, height: 844 });
  await testid(page, 'nav-projects').click();
  await testid(page, 'project-list').waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`the projects page is ${overflow}px wider than a 390px screen`);
  await page.screenshot({ path: path.join(outputDir, 'projects-phone.png'), fullPage: true });

  step = 'logging out';
  await testid(page, 'logout').click();
  await testid(page, 'login-form').waitFor();
}

try {
  await main();
  writeFileSync(path.join(outputDir, 'report.json'), JSON.stringify(report, null, 2));
  log('console flow passed');
} catch (error) {
  writeFileSync(path.join(outputDir, 'report.json'), JSON.stringify(report, null, 2));
  console.error(`console flow failed while ${step}: ${error.stack || error}`);
  process.exit(1);
}
