// A small stand-in for the `vscode` module: enough of the API for the extension to activate under vitest, with
// every call recorded in `calls` so tests can check what the user would have seen.
'use strict';

const calls = [];
const record = (name) => (...args) => { calls.push({ name, args }); return Promise.resolve(undefined); };

class Disposable {
  constructor(fn) { this.fn = fn; }
  dispose() { if (this.fn) this.fn(); }
  static from(...ds) { return new Disposable(() => ds.forEach((d) => d && d.dispose && d.dispose())); }
}

class EventEmitter {
  constructor() { this.listeners = []; this.event = (fn) => { this.listeners.push(fn); return new Disposable(() => {}); }; }
  fire(e) { this.listeners.forEach((fn) => fn(e)); }
  dispose() { this.listeners = []; }
}

const configValues = new Map();
const configChanged = new EventEmitter();
const docChanged = new EventEmitter();
const registeredCommands = new Map();

function getConfiguration(section) {
  const full = (k) => (section ? `${section}.${k}` : k);
  return {
    get: (k, d) => (configValues.has(full(k)) ? configValues.get(full(k)) : d),
    has: (k) => configValues.has(full(k)),
    update: async (k, v) => {
      configValues.set(full(k), v);
      configChanged.fire({ affectsConfiguration: (s) => full(k) === s || full(k).startsWith(s + '.') });
    },
    inspect: () => undefined,
  };
}

const base = {
  calls,
  configValues,
  registeredCommands,
  docChanged,
  Disposable,
  EventEmitter,
  ThemeColor: class ThemeColor { constructor(id) { this.id = id; } },
  StatusBarAlignment: { Left: 1, Right: 2 },
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  ConfigurationTarget: { Global: 1, Workspace: 2, WorkspaceFolder: 3 },
  ViewColumn: { Active: -1, Beside: -2, One: 1 },
  Uri: {
    parse: (s) => ({ toString: () => s, path: s.replace(/^[a-z-]+:\/\//, ''), fsPath: s.replace(/^file:\/\//, '') }),
    file: (p) => ({ toString: () => 'file://' + p, path: p, fsPath: p }),
    from: (c) => ({ ...c, toString: () => `${c.scheme}:${c.path}${c.query ? '?' + c.query : ''}` }),
  },
  window: {
    activeTextEditor: undefined,
    createOutputChannel: (name) => {
      const lines = [];
      const w = (lvl) => (m) => lines.push(`${lvl} ${m}`);
      return { name, lines, info: w('info'), warn: w('warn'), error: w('error'), debug: w('debug'), trace: w('trace'),
        append: w('raw'), appendLine: w('raw'), show: () => {}, dispose: () => {}, clear: () => {}, replace: () => {} };
    },
    createStatusBarItem: () => ({ text: '', tooltip: '', show() { this.visible = true; }, hide() {}, dispose() {} }),
    showErrorMessage: record('showErrorMessage'),
    showWarningMessage: record('showWarningMessage'),
    showInformationMessage: record('showInformationMessage'),
    setStatusBarMessage: (...args) => { calls.push({ name: 'setStatusBarMessage', args }); return new Disposable(); },
    showInputBox: record('showInputBox'),
    showTextDocument: record('showTextDocument'),
    withProgress: (opts, task) => task({ report: () => {} }, { isCancellationRequested: false, onCancellationRequested: () => new Disposable() }),
  },
  workspace: {
    workspaceFolders: undefined,
    getConfiguration,
    onDidChangeConfiguration: configChanged.event,
    onDidChangeTextDocument: docChanged.event,
    registerTextDocumentContentProvider: () => new Disposable(),
    openTextDocument: async (o) => ({ getText: () => (o && o.content) || '', ...o }),
    applyEdit: record('applyEdit'),
  },
  commands: {
    registerCommand: (id, fn) => {
      if (registeredCommands.has(id)) throw new Error(`command '${id}' already exists`);
      registeredCommands.set(id, fn);
      return new Disposable(() => registeredCommands.delete(id));
    },
    executeCommand: async (id, ...args) => {
      calls.push({ name: 'executeCommand', args: [id, ...args] });
      const fn = registeredCommands.get(id);
      return fn ? fn(...args) : undefined;
    },
  },
  extensions: { getExtension: () => undefined },
  env: { clipboard: { writeText: record('clipboard.writeText') } },
  languages: {},
};
// classes vscode-languageclient subclasses when it loads
for (const name of ['CallHierarchyItem', 'CodeLens', 'CompletionItem', 'DocumentLink', 'InlayHint', 'SymbolInformation',
  'TypeHierarchyItem', 'CodeAction', 'Diagnostic', 'CancellationError']) {
  base[name] = class { constructor(...a) { this.args = a; } };
}

// Any other API class the client touches: a plain class.
const generic = new Map();
module.exports = new Proxy(base, {
  get(t, k) {
    if (k in t) return t[k];
    if (typeof k === 'string' && /^[A-Z]/.test(k)) {
      if (!generic.has(k)) generic.set(k, class { constructor(...a) { this.args = a; } });
      return generic.get(k);
    }
    return undefined;
  },
});
