// End-to-end check of the extension in a real VS Code (code-server) driven through headless Chromium: the .vsix
// is installed, a Python file is opened, typing shows ghost text from the real ckls server and model, Tab accepts
// it and the saved file changes, Ctrl+Right accepts one word, the statistics count the acceptances, and (when the
// local Messages-API server and the server's kernel command exist) the kernel command shows its report.
//
// node e2e/run.mjs --code-server BIN --vsix FILE --ckls "CMD ..." --out DIR [--repo DIR] [--chromium BIN]
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { chromium } from 'playwright-core';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const codeServer = opt('code-server');
const vsix = path.resolve(opt('vsix', 'ckls.vsix'));
const cklsCmd = JSON.parse(opt('ckls', '["ckls"]'));
const out = path.resolve(opt('out', 'e2e-out'));
const repo = path.resolve(opt('repo', path.join(import.meta.dirname, '..', '..', '..')));
const chromiumBin = opt('chromium', '/usr/bin/chromium');
const pythonBin = opt('python', 'python3');
const shots = path.join(out, 'screenshots');
fs.mkdirSync(shots, { recursive: true });

const results = [];
let shotNo = 0;
const t0 = Date.now();
const say = (m) => console.log(`[e2e +${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);

async function check(name, fn) {
  try {
    const detail = await fn();
    results.push({ name, ok: true });
    say(`PASS ${name}${detail ? `: ${detail}` : ''}`);
    return true;
  } catch (e) {
    results.push({ name, ok: false });
    say(`FAIL ${name}: ${e instanceof Error ? e.message : e}`);
    return false;
  }
}

function skip(name, why) {
  say(`SKIP ${name}: ${why}`);
}

async function shot(page, name) {
  const f = path.join(shots, `${String(++shotNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: f });
  say(`screenshot ${f}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let text = '';
    p.stdout.on('data', (d) => (text += d));
    p.stderr.on('data', (d) => (text += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`${cmd} exited ${code}: ${text.slice(-2000)}`))));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(fn, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${last.message})` : ''}`);
}

// ---- workspace, user settings, extension ------------------------------------------------------------------------
const ws = path.join(out, 'workspace');
const userData = path.join(out, 'user-data');
const extDir = path.join(out, 'extensions');
for (const d of [ws, userData, extDir]) fs.rmSync(d, { recursive: true, force: true });
fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
fs.mkdirSync(ws, { recursive: true });
const pyFile = path.join(ws, 'shapes.py');
const pyText = 'import math\n\n\ndef area(r):\n    return math.pi * r * r\n\n\ndef add(a, b):\n    return a + b\n\n\n';
fs.writeFileSync(pyFile, pyText);

const kernelServerPy = path.join(repo, 'tests', 'messages_api_server.py');
const kernelCase = path.join(repo, 'tests', 'kernels_corpus', 'relu');
const kernelWanted = fs.existsSync(kernelServerPy) && fs.existsSync(path.join(kernelCase, 'ok.c'));
let apiServer;
let apiUrl;
if (kernelWanted) {
  fs.copyFileSync(path.join(kernelCase, 'original.py'), path.join(ws, 'relu.py'));
  // the contract checked in beside the source (<stem>.<func>.spec.json): the server asks no questions
  const spec = JSON.parse(fs.readFileSync(path.join(kernelCase, 'spec.json'), 'utf8'));
  if (spec.numpy) spec.numpy = 'relu.py::relu';  // the vectorised reference, now in the workspace's relu.py
  fs.writeFileSync(path.join(ws, 'relu.relu.spec.json'), JSON.stringify(spec, null, 2));
  apiServer = spawn(pythonBin, [path.join(import.meta.dirname, 'messages_api.py'), '--repo', repo,
    '--kernel', path.join(kernelCase, 'ok.c')], { stdio: ['ignore', 'pipe', 'inherit'] });
  apiUrl = await new Promise((resolve, reject) => {
    let buf = '';
    apiServer.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/^url (\S+)$/m);
      if (m) resolve(m[1]);
    });
    apiServer.on('close', (c) => reject(new Error(`the Messages-API test server exited ${c}`)));
  }).catch((e) => { say(`kernel step: ${e.message}`); return undefined; });
}

// ckls.serverCommand is machine-scoped (it runs a program): a remote window such as code-server reads it from the
// Machine settings, not from the User settings
fs.mkdirSync(path.join(userData, 'Machine'), { recursive: true });
// ckls.agent.baseUrl is machine-overridable (it decides where the API key is sent): the same place
fs.writeFileSync(path.join(userData, 'Machine', 'settings.json'), JSON.stringify({
  'ckls.serverCommand': cklsCmd, ...(apiUrl ? { 'ckls.agent.baseUrl': apiUrl } : {}),
}, null, 2));
fs.writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify({
  'editor.inlineSuggest.enabled': true,
  'security.workspace.trust.enabled': false,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'extensions.ignoreRecommendations': true,
  'editor.minimap.enabled': false,
  'editor.quickSuggestions': { other: false, comments: false, strings: false },
  'editor.suggestOnTriggerCharacters': false,
  'files.autoSave': 'off',
  'window.restoreWindows': 'none',
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'chat.disableAIFeatures': true,
  'ckls.threads': 2,
  'ckls.latencyMs': 3000,
  ...(apiUrl ? { 'ckls.agent.maxTurns': 4 } : {}),
}, null, 2));

let cs;
let browser;
try {
  await check('the .vsix installs into code-server', async () => {
    const text = await run(codeServer, ['--extensions-dir', extDir, '--user-data-dir', userData, '--install-extension', vsix]);
    if (!/successfully installed/i.test(text)) throw new Error(text.slice(-500));
    return fs.readdirSync(extDir).filter((d) => d.startsWith('ckls.')).join(', ');
  });

  const port = await freePort();
  const csLog = fs.openSync(path.join(out, 'code-server.log'), 'w');
  cs = spawn(codeServer, ['--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry',
    '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override',
    '--config', path.join(out, 'code-server.yaml'), '--extensions-dir', extDir, '--user-data-dir', userData, ws], {
    stdio: ['ignore', csLog, csLog],
    // the Messages-API test server checks this key; a real key would sit in VS Code's secret storage
    env: { ...process.env, ...(apiUrl ? { ANTHROPIC_API_KEY: 'sk-ant-test-key' } : {}) },
  });
  fs.writeFileSync(path.join(out, 'code-server.yaml'), 'auth: none\ncert: false\n');
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 60000, 'code-server /healthz');
  say(`code-server on port ${port}`);

  browser = await chromium.launch({
    executablePath: chromiumBin,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const bctx = await browser.newContext({ viewport: { width: 1400, height: 860 } });
  await bctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: `http://127.0.0.1:${port}` });
  const page = await bctx.newPage();
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 90000 });
  await sleep(2000);

  const openFile = async (name) => {
    await page.keyboard.press('Control+P');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ timeout: 20000 });
    await input.fill(name);
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first();
    await row.waitFor({ timeout: 20000 });
    await sleep(300);
    await row.click();
    const editor = page.locator(`.monaco-editor[data-uri$="${name}"]`);
    await editor.waitFor({ timeout: 30000 });
    await editor.locator('.view-lines').click();
    return editor;
  };
  const ghost = async (editor) => (await editor.locator('.ghost-text-decoration, .ghost-text-decoration-preview, .ghost-text')
    .allTextContents()).join('');
  const line = async (editor, n) => (await editor.locator('.view-line').nth(n).textContent() ?? '').replace(/\u00a0/g, ' ');
  const lineWith = async (editor, needle) => {
    for (const t of await editor.locator('.view-line').allTextContents()) {
      const s = t.replace(/\u00a0/g, ' ');
      if (s.includes(needle)) return s;
    }
    return undefined;
  };
  const command = async (title) => {
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ timeout: 20000 });
    await input.fill(`>${title}`);
    await sleep(800);
    await page.keyboard.press('Enter');
  };

  const editor = await openFile('shapes.py');
  await check('the status bar shows the model once the server has loaded it', async () => {
    const text = await waitFor(async () => {
      const t = (await page.locator('.statusbar').textContent()) ?? '';
      return /ckls \w/.test(t) && !/loading/.test(t) ? t : undefined;
    }, 90000, 'the ckls status bar item');
    const item = (await page.locator('.statusbar-item', { hasText: /^\s*ckls / }).first().textContent())?.trim() ?? '';
    if (!item || /no model/.test(item)) throw new Error(`status bar: ${text}`);
    return item;
  });
  await shot(page, 'opened');

  // type a new function body: the ghost text must come from the real server and model
  await page.keyboard.press('Control+End');
  await page.keyboard.type('def mul(a, b):', { delay: 40 });
  await page.keyboard.press('Enter');
  await page.keyboard.type('ret', { delay: 60 });
  let suggestion = '';
  const sawGhost = await check('typing shows ghost text from the ckls server', async () => {
    suggestion = await waitFor(async () => (await ghost(editor)).trim() ? ghost(editor) : undefined, 30000, 'ghost text');
    return JSON.stringify(suggestion);
  });
  await shot(page, 'ghost-text');

  if (sawGhost) {
    await page.keyboard.press('Tab');
    await sleep(500);
    const first = suggestion.replace(/\u00a0/g, ' ').split('\n')[0];
    await check('Tab accepts the suggestion into the editor', async () => {
      const t = await waitFor(() => lineWith(editor, 'ret' + first.trimEnd()), 5000, `a line with ret${first}`);
      return JSON.stringify(t);
    });
    await shot(page, 'accepted');
    await page.keyboard.press('Control+S');
    await check('the saved file holds the accepted text', async () => {
      const t = await waitFor(() => {
        const s = fs.readFileSync(pyFile, 'utf8');
        return s !== pyText && s.includes('ret' + first.trimEnd()) ? s : undefined;
      }, 10000, 'the file on disk to change');
      return `${t.length - pyText.length} characters added`;
    });
  }

  // partial accept: a second suggestion, one word taken with Ctrl+Right
  await page.keyboard.press('Control+End');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Enter');
  for (let i = 0; i < 3; i++) await page.keyboard.press('Shift+Tab');  // back to column 0: a top-level function
  await page.keyboard.type('def sub(a, b):', { delay: 40 });
  await page.keyboard.press('Enter');
  let partial = false;
  await check('Ctrl+Right accepts the next word of a suggestion', async () => {
    const g = await waitFor(async () => (await ghost(editor)).trim() ? ghost(editor) : undefined, 30000, 'ghost text on a new line');
    // a suggestion that starts with spaces gives them up as the first "word": take words until one has text
    let after = g;
    let taken = '';
    for (let i = 0; i < 3 && !taken.trim(); i++) {
      await page.keyboard.press('Control+ArrowRight');
      await sleep(500);
      after = await ghost(editor);
      taken = g.slice(0, g.length - after.length);
    }
    if (!taken.trim() || !g.endsWith(after)) {
      throw new Error(`no word accepted (ghost ${JSON.stringify(g)} -> ${JSON.stringify(after)})`);
    }
    partial = after.trim().length > 0;
    return `took ${JSON.stringify(taken)}, left ${JSON.stringify(after)}`;
  });
  await shot(page, 'partial-accept');
  await page.keyboard.press('Escape');

  await check('ckls: Show Statistics counts the accepted suggestions', async () => {
    await sleep(500);
    await command('ckls: Show Statistics');
    const stats = await waitFor(async () => {
      const t = (await page.locator('.monaco-editor[data-uri^="untitled:"] .view-lines').first().textContent()) ?? '';
      return t.includes('"accepted"') ? t.replace(/\u00a0/g, ' ') : undefined;
    }, 20000, 'the statistics document');
    const n = (k) => Number((stats.match(new RegExp(`"${k}":\\s*(\\d+)`)) ?? [])[1] ?? NaN);
    if (!(n('accepted') >= 1)) throw new Error(`accepted = ${n('accepted')}`);
    if (partial && !(n('partially_accepted') >= 1)) throw new Error(`partially_accepted = ${n('partially_accepted')}`);
    return `shown ${n('shown')}, accepted ${n('accepted')}, partially accepted ${n('partially_accepted')}`;
  });
  await shot(page, 'stats');
  await page.keyboard.press('Control+W');
  await sleep(300);
  const dontSave = page.getByRole('button', { name: /Don't Save/ });
  if (await dontSave.count()) await dontSave.first().click();

  // the status bar item switches completions off through the settings the server pulls, and back on
  await check('clicking the status bar item turns completions off and on', async () => {
    const item = page.locator('.statusbar-item', { hasText: /^\s*ckls / }).first();
    await item.click();
    await waitFor(async () => /\(off\)|ckls off/.test((await item.textContent()) ?? ''), 10000, 'the item to say off');
    await editor.locator('.view-lines').click();
    await page.keyboard.press('Control+End');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Enter');
    for (let i = 0; i < 3; i++) await page.keyboard.press('Shift+Tab');
    await page.keyboard.type('def div(a, b):', { delay: 40 });
    await page.keyboard.press('Enter');
    await sleep(3000);
    const g = await ghost(editor);
    if (g.trim()) throw new Error(`ghost text while off: ${JSON.stringify(g)}`);
    await shot(page, 'completions-off');
    await item.click();
    await waitFor(async () => !/\(off\)/.test((await item.textContent()) ?? ''), 10000, 'the item to say on');
    await editor.locator('.view-lines').click();  // the click on the status bar took the focus
    await page.keyboard.press('Control+End');
    await page.keyboard.type('ret', { delay: 60 });
    const back = await waitFor(async () => (await ghost(editor)).trim() ? ghost(editor) : undefined, 30000, 'ghost text once on again');
    await page.keyboard.press('Escape');
    return `off: none in 3 s; on again: ${JSON.stringify(back)}`;
  });

  // the kernel command, against the local Messages-API server
  if (!kernelWanted) {
    skip('kernel command', 'tests/messages_api_server.py is not in this checkout');
  } else if (!apiUrl) {
    await check('the Messages-API test server starts', async () => { throw new Error('no URL'); });
  } else {
    const relu = await openFile('relu.py');
    await relu.locator('.view-line', { hasText: 'return' }).first().click();
    await command('ckls: Generate a Verified Kernel for This Function');
    const questions = [];
    await check('the kernel command shows the verification report', async () => {
      const text = await waitFor(async () => {
        // Monaco renders spaces as no-break spaces
        const t = ((await page.locator('.monaco-editor[data-uri^="untitled:"] .view-lines').first().textContent()
          .catch(() => '')) ?? '').replace(/\u00a0/g, ' ');
        if (t.includes('ckls kernel:')) return t;
        // what the server cannot infer it asks (window/showMessageRequest): take the first choice, its default
        const question = page.locator('.notifications-toasts .notification-toast', { hasText: /ckls: [^]*\?/ })
          .filter({ hasNotText: 'Cancel' }).first();
        if (await question.count().catch(() => 0)) {
          questions.push(((await question.textContent().catch(() => '')) ?? '').slice(0, 80));
          await question.locator('.monaco-button').first().click({ timeout: 5000 }).catch(() => {});
          return undefined;
        }
        const toast = (await page.locator('.notifications-toasts').textContent().catch(() => '')) ?? '';
        if (/has no ckls\.generateKernel|error|failed/i.test(toast)) throw new Error(`notification: ${toast}`);
        return undefined;
      }, 240000, 'the kernel report');
      const m = text.match(/ckls kernel: (\w+)/);
      if (!m || m[1] !== 'PASS') throw new Error(`report: ${text.slice(0, 300)}`);
      return `${m[0]} (answered ${questions.length} question(s) with their defaults)`;
    });
    await shot(page, 'kernel-report');
    const before = new Set(fs.readdirSync(ws));
    const reluText = fs.readFileSync(path.join(ws, 'relu.py'), 'utf8');
    await check('the kernel change is shown as a diff, then applied on confirmation', async () => {
      await page.locator('.notifications-toasts .monaco-button', { hasText: 'Review and apply' }).first().click({ timeout: 20000 });
      await page.locator('.monaco-diff-editor').first().waitFor({ timeout: 30000 });
      await shot(page, 'kernel-diff');
      await page.locator('.monaco-dialog-box .monaco-button', { hasText: /^Apply$/ }).first().click({ timeout: 20000 });
      await sleep(1000);
      await page.keyboard.press('Control+K');
      await page.keyboard.press('S');  // save all
      const changed = await waitFor(() => {
        const added = fs.readdirSync(ws).filter((f) => !before.has(f));
        const edited = fs.readFileSync(path.join(ws, 'relu.py'), 'utf8') !== reluText;
        return added.length || edited ? `new files ${JSON.stringify(added)}, relu.py ${edited ? 'edited' : 'unchanged'}` : undefined;
      }, 20000, 'the workspace to change');
      return changed;
    });
    await shot(page, 'kernel-applied');
  }

  // a server command that does not exist: the extension restarts on the change and says how to install ckls
  await check('a broken ckls.serverCommand gives a clear message with the install command', async () => {
    // through the settings editor, as a user would (code-server does not watch the file for outside writes)
    const settings = { 'ckls.serverCommand': ['/nonexistent/bin/ckls'] };
    await command('Preferences: Open Remote Settings (JSON)');
    const json = page.locator('.monaco-editor[data-uri$="settings.json"]');
    await json.waitFor({ timeout: 20000 });
    await json.locator('.view-lines').click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.evaluate((text) => navigator.clipboard.writeText(text), JSON.stringify(settings));
    await page.keyboard.press('Control+V');
    await page.keyboard.press('Control+S');
    const toast = await waitFor(async () => {
      const t = (await page.locator('.notifications-toasts').textContent().catch(() => '')) ?? '';
      return /did not start/.test(t) ? t : undefined;
    }, 30000, 'the error notification').finally(() => shot(page, 'server-missing'));
    if (!toast.includes('pip install /path/to/ckls')) throw new Error(`notification: ${toast}`);
    const item = (await page.locator('.statusbar-item', { hasText: /ckls/ }).first().textContent()) ?? '';
    return `${JSON.stringify(toast.trim().slice(0, 120))}; status bar ${JSON.stringify(item.trim())}`;
  });
} catch (e) {
  results.push({ name: 'the run itself', ok: false });
  say(`FAIL the run itself: ${e instanceof Error ? e.stack : e}`);
  if (browser) {
    const pages = browser.contexts().flatMap((c) => c.pages());
    if (pages[0]) await shot(pages[0], 'failure').catch(() => undefined);
  }
} finally {
  await browser?.close().catch(() => undefined);
  cs?.kill('SIGTERM');
  apiServer?.kill('SIGTERM');
}

const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
console.log(`screenshots: ${shots}`);
console.log(`code-server log: ${path.join(out, 'code-server.log')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
