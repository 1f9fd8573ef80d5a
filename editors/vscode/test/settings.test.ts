import { describe, expect, it } from 'vitest';
import { agentArgs, flatten, knownFromStats, SERVER_KEYS, serverSettings, tuneArgs } from '../src/settings';

const section = {
  serverCommand: ['/x/ckls'], modelPath: '~/m.gguf', threads: 2, latencyMs: 300, disabledLanguages: ['markdown'],
  enabled: false, tune: { enabled: true, rank: 16, budgetS: 300, idleMs: 500 },
  agent: { model: 'claude-x', maxTurns: 3, budgetTokens: 9000, baseUrl: 'http://127.0.0.1:9', lang: 'cuda' },
  nCtx: null,
};
const cfg = (o: Record<string, unknown>) => ({ get: <T,>(k: string) => flatten(o)[k.replace(/\.(\w)/g, (_m, c) => c.toUpperCase())] as T });

describe('settings', () => {
  it('sends the server only names it knows', () => {
    expect(serverSettings(section)).toEqual({ modelPath: '~/m.gguf', threads: 2, latencyMs: 300, disabledLanguages: ['markdown'], enabled: false,
      tuneEnabled: true, tuneRank: 16, tuneBudgetS: 300, tuneIdleMs: 500 });
    expect(serverSettings(undefined)).toEqual({});
  });

  it('learns newer names from ckls.stats (snake_case there) and flattens nested ones', () => {
    const known = knownFromStats({ settings: { model_path: '', tune_rank: 8, newer_knob: 1 } });
    expect(known).toContain('tuneRank');
    expect(known).toContain('newerKnob');
    expect(known.length).toBe(SERVER_KEYS.length + 1);
    expect(serverSettings({ ...section, newerKnob: 3 }, known)).toMatchObject({ tuneRank: 16, tuneEnabled: true, newerKnob: 3 });
    expect(serverSettings(section, known)).not.toHaveProperty('serverCommand');
    expect(knownFromStats(null)).toEqual([...SERVER_KEYS]);
  });

  it('gives the command arguments for fine-tuning and the agent', () => {
    expect(tuneArgs(cfg(section))).toEqual({ rank: 16, budgetS: 300, idleMs: 500 });
    expect(tuneArgs(cfg({}))).toEqual({ rank: 8, budgetS: 600, idleMs: 3000 });
    expect(agentArgs(cfg(section))).toEqual({ model: 'claude-x', maxTurns: 3, budgetTokens: 9000, lang: 'cuda', baseUrl: 'http://127.0.0.1:9' });
    expect(agentArgs(cfg({}))).toEqual({ model: 'claude-sonnet-5-5', maxTurns: 12, budgetTokens: 400000, lang: 'c' });
  });
});
