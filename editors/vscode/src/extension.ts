// The ckls extension: starts the ckls language server, passes settings, shows state in the status bar, and
// drives the kernel and fine-tuning commands. Completions themselves are LSP inline completions, which
// vscode-languageclient registers as an inline completion provider.
import * as vscode from 'vscode';
import {
  ExecuteCommandRequest, LanguageClient, LanguageClientOptions, ServerOptions, State, WorkDoneProgress,
} from 'vscode-languageclient/node';
import { findServer, notFoundMessage, INSTALL_HINT, ServerCommand } from './serverCommand';
import { knownFromStats, serverSettings, SERVER_KEYS, tuneArgs, agentArgs } from './settings';
import { PartialAcceptTracker } from './partialAccept';
import { statusView } from './statusText';
import { editOf, previewEdit, reportMarkdown, verdictOf } from './kernelResult';

const SECRET_KEY = 'ckls.anthropicApiKey';
const PREVIEW_SCHEME = 'ckls-preview';

let client: LanguageClient | undefined;
let log: vscode.LogOutputChannel;
let status: vscode.StatusBarItem;
let known: string[] = [...SERVER_KEYS];
let lastStats: Record<string, unknown> | undefined;
let lastTune: unknown;
let startError: string | undefined;
let poll: NodeJS.Timeout | undefined;
const previews = new Map<string, string>();

function cfg(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('ckls');
}

function serverHas(command: string): boolean {
  const cmds = client?.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
  return cmds.includes(command);
}

/** workspace/executeCommand with a work-done token whose reports go to `onReport`. */
async function execute<T>(command: string, args: unknown[], token?: vscode.CancellationToken,
  onReport?: (message: string, percentage?: number) => void): Promise<T> {
  if (!client || client.state !== State.Running) throw new Error('the ckls server is not running');
  const progressToken = `ckls-${command}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const sub = onReport ? client.onProgress(WorkDoneProgress.type, progressToken, (v) => {
    if (v.kind === 'end') return;
    const msg = [('title' in v ? v.title : undefined), v.message].filter(Boolean).join(': ');
    onReport(msg, v.percentage);
  }) : undefined;
  try {
    return await client.sendRequest(ExecuteCommandRequest.type,
      { command, arguments: args, workDoneToken: onReport ? progressToken : undefined }, token) as T;
  } finally {
    sub?.dispose();
  }
}

function missing(command: string): boolean {
  if (serverHas(command)) return false;
  void vscode.window.showWarningMessage(
    `ckls: this ckls server has no ${command} command; update it (${INSTALL_HINT} --upgrade).`);
  return true;
}

// ---- status bar ----------------------------------------------------------------------------------------------

function renderStatus(): void {
  const v = statusView({
    running: client?.state === State.Running,
    enabled: cfg().get<boolean>('enabled') ?? true,
    model: typeof lastStats?.model === 'string' ? lastStats.model : undefined,
    tune: lastTune,
    error: startError,
  });
  status.text = v.text;
  status.tooltip = v.tooltip;
  status.backgroundColor = v.state === 'error' || v.state === 'stopped'
    ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
}

async function refreshStatus(): Promise<void> {
  if (client?.state === State.Running) {
    try {
      lastStats = await execute<Record<string, unknown>>('ckls.stats', []);
      const k = knownFromStats(lastStats);
      if (k.length !== known.length) {
        known = k;  // a newer server knows more settings: let it pull them
        void client.sendNotification('workspace/didChangeConfiguration', { settings: null });
      }
    } catch (e) {
      log.debug(`ckls.stats failed: ${e}`);
    }
    if (serverHas('ckls.tune.status')) {
      try { lastTune = await execute('ckls.tune.status', [{ workspace: workspaceRoot() }]); } catch { lastTune = undefined; }
    }
  }
  renderStatus();
}

function workspaceRoot(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

// ---- the server ------------------------------------------------------------------------------------------------

async function pythonInterpreter(): Promise<string | undefined> {
  const ext = vscode.extensions.getExtension('ms-python.python');
  if (!ext) return undefined;
  const api = (ext.isActive ? ext.exports : await ext.activate()) as any;
  const resource = vscode.workspace.workspaceFolders?.[0]?.uri;
  try {
    const envPath = api?.environments?.getActiveEnvironmentPath?.(resource);
    const env = envPath ? await api.environments.resolveEnvironment(envPath) : undefined;
    const exe = env?.executable?.uri?.fsPath;
    if (exe) return exe;
  } catch { /* older extension: below */ }
  const cmd = api?.settings?.getExecutionDetails?.(resource)?.execCommand;
  return Array.isArray(cmd) && cmd.length ? cmd[0] : undefined;
}

function clientOptions(tracker: PartialAcceptTracker): LanguageClientOptions {
  return {
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    outputChannel: log,
    synchronize: { configurationSection: 'ckls' },
    initializationOptions: serverSettings(cfg() as unknown as Record<string, unknown>, known),
    middleware: {
      workspace: {
        configuration: async (params, token, next) => {
          const res = await next(params, token);
          if (!Array.isArray(res)) return res;
          return res.map((v, i) => params.items[i]?.section === 'ckls'
            ? serverSettings(v as Record<string, unknown>, known) : v);
        },
      },
      provideInlineCompletionItems: async (doc, pos, ctx, token, next) => {
        const r = await next(doc, pos, ctx, token);
        const items = Array.isArray(r) ? r : r?.items;
        const item = items?.[0];
        const arg = item?.command?.arguments?.[0];
        if (item && typeof item.insertText === 'string' && arg && typeof arg === 'object') {
          const at = item.range ? item.range.start : pos;
          tracker.show({ uri: doc.uri.toString(), offset: doc.offsetAt(at), text: item.insertText, arg });
        }
        return r;
      },
    },
  };
}

async function startServer(context: vscode.ExtensionContext, tracker: PartialAcceptTracker): Promise<void> {
  startError = undefined;
  const found = await findServer({
    setting: cfg().get('serverCommand'),
    pythonInterpreter: vscode.extensions.getExtension('ms-python.python') ? pythonInterpreter : undefined,
  });
  if (!found.found) {
    startError = notFoundMessage(found.tried);
    log.error(startError);
    renderStatus();
    const pick = await vscode.window.showErrorMessage(startError, 'Copy install command', 'Open settings');
    if (pick === 'Copy install command') await vscode.env.clipboard.writeText(INSTALL_HINT);
    if (pick === 'Open settings') await vscode.commands.executeCommand('workbench.action.openSettings', 'ckls.serverCommand');
    return;
  }
  const sc: ServerCommand = found.found;
  log.info(`starting ${sc.command} ${sc.args.join(' ')} (from ${sc.source})`);
  const server: ServerOptions = { command: sc.command, args: sc.args, options: { env: { ...process.env } } };
  client = new LanguageClient('ckls', 'ckls', server, clientOptions(tracker));
  client.onDidChangeState(() => renderStatus());
  try {
    await client.start();
  } catch (e) {
    startError = `the server did not start: ${e instanceof Error ? e.message : e}`;
    log.error(startError);
    void vscode.window.showErrorMessage(`ckls: ${startError}. Is "${sc.command}" a working ckls? (${INSTALL_HINT})`);
  }
  await refreshStatus();
}

async function stopServer(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) await c.stop().catch(() => undefined);
}

// ---- commands --------------------------------------------------------------------------------------------------

async function toggleCompletions(): Promise<void> {
  const on = !(cfg().get<boolean>('enabled') ?? true);
  await cfg().update('enabled', on, vscode.ConfigurationTarget.Global);
  void vscode.window.setStatusBarMessage(`ckls: completions ${on ? 'on' : 'off'}`, 3000);
  renderStatus();
}

async function showStats(): Promise<void> {
  const stats = await execute<unknown>('ckls.stats', []);
  const doc = await vscode.workspace.openTextDocument({ language: 'json', content: JSON.stringify(stats, null, 2) });
  await vscode.window.showTextDocument(doc, { preview: true });
}

async function apiKey(context: vscode.ExtensionContext, ask: boolean): Promise<string | undefined> {
  const stored = await context.secrets.get(SECRET_KEY);
  if (stored || !ask) return stored;
  const v = await vscode.window.showInputBox({
    title: 'ckls: Anthropic API key', prompt: 'Kept in VS Code\'s secret storage, never in settings.json',
    password: true, ignoreFocusOut: true,
  });
  if (v) await context.secrets.store(SECRET_KEY, v.trim());
  return v?.trim() || undefined;
}

async function generateKernel(context: vscode.ExtensionContext): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor) { void vscode.window.showWarningMessage('ckls: put the cursor in a function first.'); return; }
  if (missing('ckls.generateKernel')) return;
  const agent = agentArgs(cfg());
  let key = await apiKey(context, false);
  if (!key && !process.env.ANTHROPIC_API_KEY) {
    key = await apiKey(context, true);
    if (!key) return;
  }
  const doc = editor.document;
  if (doc.isDirty) await doc.save();
  const sel = editor.selection;
  const args = {
    uri: doc.uri.toString(),
    position: { line: sel.active.line, character: sel.active.character },
    ...(sel.isEmpty ? {} : { range: { start: sel.start, end: sel.end } }),
    ...agent,
    ...(key ? { apiKey: key } : {}),
  };
  const result = await vscode.window.withProgress({
    location: vscode.ProgressLocation.Notification, title: 'ckls: kernel', cancellable: true,
  }, async (progress, token) => {
    let last = 0;
    return execute<Record<string, unknown>>('ckls.generateKernel', [args], token, (message, pct) => {
      const inc = pct !== undefined && pct > last ? pct - last : undefined;
      if (pct !== undefined) last = Math.max(last, pct);
      progress.report({ message, increment: inc });
      log.info(`kernel: ${message}`);
    });
  });
  if (!result) return;
  const verdict = verdictOf(result);
  const report = await vscode.workspace.openTextDocument({ language: 'markdown', content: reportMarkdown(result) });
  await vscode.window.showTextDocument(report, { preview: false, viewColumn: vscode.ViewColumn.Beside });
  const pass = verdict === 'PASS';
  const choice = await vscode.window.showInformationMessage(
    `ckls: the kernel ${pass ? 'passed' : `did not pass (${verdict})`} verification.`,
    ...(pass ? ['Review and apply'] : ['Review and apply anyway']));
  if (!choice) return;
  await reviewAndApply(result, doc.uri, !pass);
}

async function reviewAndApply(result: Record<string, unknown>, uri: vscode.Uri, force: boolean): Promise<void> {
  if (missing('ckls.applyKernel')) return;
  const reply = await execute<unknown>('ckls.applyKernel', [{ ...result, uri: uri.toString(), force }]);
  const edit = editOf(reply);
  if (!edit) { void vscode.window.showErrorMessage('ckls: the server sent no change to apply.'); return; }
  const files = await previewEdit(edit, async (u) => {
    try { return (await vscode.workspace.openTextDocument(vscode.Uri.parse(u))).getText(); } catch { return undefined; }
  });
  for (const f of files) {
    const target = vscode.Uri.parse(f.uri);
    const left = vscode.Uri.from({ scheme: PREVIEW_SCHEME, path: target.path, query: 'before' });
    const right = vscode.Uri.from({ scheme: PREVIEW_SCHEME, path: target.path, query: 'after' });
    previews.set(left.toString(), f.before);
    previews.set(right.toString(), f.after);
    const name = target.path.split('/').pop();
    await vscode.commands.executeCommand('vscode.diff', left, right,
      `${name} ${f.created ? '(new)' : ''} ↔ with the kernel`, { preview: false });
  }
  const ok = await vscode.window.showInformationMessage(
    `ckls: apply the kernel change to ${files.length} file(s)?`, { modal: true }, 'Apply');
  if (ok !== 'Apply') return;
  const wsEdit = await client!.protocol2CodeConverter.asWorkspaceEdit(edit as any);
  const applied = wsEdit ? await vscode.workspace.applyEdit(wsEdit) : false;
  void vscode.window.showInformationMessage(applied ? 'ckls: kernel applied.' : 'ckls: the change could not be applied.');
}

async function tune(action: 'start' | 'stop' | 'status'): Promise<void> {
  const command = `ckls.tune.${action}`;
  if (missing(command)) return;
  const arg = { workspace: workspaceRoot(), ...(action === 'start' ? tuneArgs(cfg()) : {}) };
  const reply = await execute<unknown>(command, [arg]);
  lastTune = action === 'status' ? reply : undefined;
  await refreshStatus();
  const text = typeof reply === 'string' ? reply : JSON.stringify(reply, null, 2);
  log.info(`${command}: ${text}`);
  if (action === 'status') {
    const doc = await vscode.workspace.openTextDocument({ language: 'json', content: text });
    await vscode.window.showTextDocument(doc, { preview: true });
  } else {
    void vscode.window.showInformationMessage(`ckls: fine-tuning ${action === 'start' ? 'started' : 'stopped'}.`);
  }
}

function guarded(name: string, fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      log.error(`${name}: ${msg}`);
      void vscode.window.showErrorMessage(`ckls: ${msg}`);
    }
  };
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  log = vscode.window.createOutputChannel('ckls', { log: true });
  status = vscode.window.createStatusBarItem('ckls.status', vscode.StatusBarAlignment.Right, 100);
  status.name = 'ckls';
  status.command = 'ckls.toggleCompletions';
  status.show();
  renderStatus();

  const tracker = new PartialAcceptTracker((arg) => {
    // after the didChange the client sends for the same edit, so the server prefetches at the new text's end
    setTimeout(() => {
      execute('ckls.didPartiallyAccept', [arg]).catch((e) => log.debug(`didPartiallyAccept: ${e}`));
    }, 30);
  });

  context.subscriptions.push(
    log, status,
    vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, {
      provideTextDocumentContent: (uri) => previews.get(uri.toString()) ?? '',
    }),
    vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.contentChanges.length === 0) return;
      tracker.onChange(e.contentChanges.map((c) => ({
        uri: e.document.uri.toString(), offset: c.rangeOffset, removed: c.rangeLength, text: c.text,
      })));
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration('ckls.serverCommand')) {
        await stopServer();
        await startServer(context, tracker);
      } else if (e.affectsConfiguration('ckls')) {
        setTimeout(() => void refreshStatus(), 500);
      }
    }),
    vscode.commands.registerCommand('ckls.toggleCompletions', guarded('toggle', toggleCompletions)),
    vscode.commands.registerCommand('ckls.showStats', guarded('stats', showStats)),
    vscode.commands.registerCommand('ckls.reloadModelNow', guarded('reload', async () => {
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'ckls: loading model' },
        () => execute('ckls.reloadModel', []));
      await refreshStatus();
    })),
    vscode.commands.registerCommand('ckls.restartServer', guarded('restart', async () => {
      await stopServer();
      await startServer(context, tracker);
    })),
    vscode.commands.registerCommand('ckls.showLog', () => log.show()),
    vscode.commands.registerCommand('ckls.generateKernelAtCursor', guarded('kernel', () => generateKernel(context))),
    vscode.commands.registerCommand('ckls.startFineTuning', guarded('tune', () => tune('start'))),
    vscode.commands.registerCommand('ckls.stopFineTuning', guarded('tune', () => tune('stop'))),
    vscode.commands.registerCommand('ckls.fineTuningStatus', guarded('tune', () => tune('status'))),
    vscode.commands.registerCommand('ckls.setAnthropicKey', guarded('key', async () => {
      await context.secrets.delete(SECRET_KEY);
      if (await apiKey(context, true)) void vscode.window.showInformationMessage('ckls: API key saved in secret storage.');
    })),
    vscode.commands.registerCommand('ckls.clearAnthropicKey', guarded('key', async () => {
      await context.secrets.delete(SECRET_KEY);
      void vscode.window.showInformationMessage('ckls: API key forgotten.');
    })),
    vscode.commands.registerCommand('ckls.acceptNextWord', async () => {
      tracker.expectAccept();
      await vscode.commands.executeCommand('editor.action.inlineSuggest.acceptNextWord');
    }),
    vscode.commands.registerCommand('ckls.acceptNextLine', async () => {
      tracker.expectAccept();
      await vscode.commands.executeCommand('editor.action.inlineSuggest.acceptNextLine');
    }),
  );
  await startServer(context, tracker);
  poll = setInterval(() => void refreshStatus(), 10000);
  context.subscriptions.push({ dispose: () => poll && clearInterval(poll) });
}

export async function deactivate(): Promise<void> {
  await stopServer();
}
