import { beforeEach, describe, expect, it } from 'vitest';
import * as vscode from 'vscode';
import { activate, deactivate } from '../src/extension';

const mock = vscode as any;

function context() {
  const secrets = new Map<string, string>();
  return {
    subscriptions: [] as { dispose(): void }[],
    secrets: {
      get: async (k: string) => secrets.get(k),
      store: async (k: string, v: string) => void secrets.set(k, v),
      delete: async (k: string) => void secrets.delete(k),
    },
    secretMap: secrets,
  };
}

describe('activation without a server', () => {
  let ctx: ReturnType<typeof context>;
  beforeEach(async () => {
    mock.calls.length = 0;
    mock.configValues.clear();
    mock.registeredCommands.clear();
    process.env.PATH = '/nonexistent-ckls-test-dir';
    ctx = context();
    await activate(ctx as any);
  });

  it('says how to install ckls and registers its commands', async () => {
    const err = mock.calls.find((c: any) => c.name === 'showErrorMessage');
    expect(err.args[0]).toContain('pip install /path/to/ckls');
    for (const id of ['ckls.generateKernelAtCursor', 'ckls.startFineTuning', 'ckls.stopFineTuning', 'ckls.fineTuningStatus',
      'ckls.toggleCompletions', 'ckls.showStats', 'ckls.acceptNextWord', 'ckls.setAnthropicKey']) {
      expect(mock.registeredCommands.has(id)).toBe(true);
    }
    // server-side command ids stay free: vscode-languageclient registers those itself
    for (const id of ['ckls.generateKernel', 'ckls.tune.start', 'ckls.stats', 'ckls.didAccept']) {
      expect(mock.registeredCommands.has(id)).toBe(false);
    }
    ctx.subscriptions.forEach((d) => d.dispose());
    await deactivate();
  });

  it('toggles completions in the settings and reports commands that need the server', async () => {
    await vscode.commands.executeCommand('ckls.toggleCompletions');
    expect(mock.configValues.get('ckls.enabled')).toBe(false);
    await vscode.commands.executeCommand('ckls.toggleCompletions');
    expect(mock.configValues.get('ckls.enabled')).toBe(true);
    await vscode.commands.executeCommand('ckls.showStats');
    const err = mock.calls.filter((c: any) => c.name === 'showErrorMessage').pop();
    expect(err.args[0]).toContain('not running');
    ctx.subscriptions.forEach((d) => d.dispose());
  });

  it('keeps the API key in secret storage, not in settings', async () => {
    const orig = mock.window.showInputBox;
    mock.window.showInputBox = async () => ' sk-test ';
    await vscode.commands.executeCommand('ckls.setAnthropicKey');
    mock.window.showInputBox = orig;
    expect(ctx.secretMap.get('ckls.anthropicApiKey')).toBe('sk-test');
    expect([...mock.configValues.values()]).not.toContain('sk-test');
    await vscode.commands.executeCommand('ckls.clearAnthropicKey');
    expect(ctx.secretMap.has('ckls.anthropicApiKey')).toBe(false);
    ctx.subscriptions.forEach((d) => d.dispose());
  });
});
