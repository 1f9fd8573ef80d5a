import { describe, expect, it } from 'vitest';
import { agentArgs, flatten, knownFromStats, SERVER_KEYS, serverSettings, tuneArgs } from '../src/settings';

const section = {
  serverCommand: ['/x/ckls'], modelPath: '~/m.gguf', threads: 2, latencyMs: 300, disabledLanguages: ['markdown'],
  enabled: false, tune: { enabled: true, rank: 16, budgetMinutes: 5, idleSeconds: 30 },
  agent: { model: 'claude-x', maxTurns: 3, budgetTokens: 9000, baseUrl: 'http://127.0.0.1:9', lang: 'cuda' },
  nCtx: null,
};
const cfg = (o: Record<string, unknown>) => ({ get: <T,>(k: string) => flatten(o)[k.replace(/\.(\w)/g, (_m, c) => c.toUpperCase())] as T });

describe('settings', () => {
  it('sends the server only names it knows', () => {
    expect(serverSettings(section)).toEqual({ modelPath: '~/m.gguf', threads: 2, latencyMs: 300, disabledLanguages: ['markdown'], enabled: false });
    expect(serverSettings(undefined)).toEqual({});
  });

  it('learns newer names from ckls.stats (snake_case there) and flattens nested ones', () => {
    const known = knownFromStats({ settings: { model_path: '', tune_rank: 8, tune_enabled: false } });
    expect(known).toContain('tuneRank');
    expect(known).toContain('tuneEnabled');
    expect(known.length).toBe(SERVER_KEYS.length + 2);
    expect(serverSettings(section, known)).toMatchObject({ tuneRank: 16, tuneEnabled: true });
    expect(serverSettings(section, known)).not.toHaveProperty('serverCommand');
    expect(knownFromStats(null)).toEqual([...SERVER_KEYS]);
  });

  it('gives the command arguments for fine-tuning and the agent', () => {
    expect(tuneArgs(cfg(section))).toEqual({ rank: 16, budgetMinutes: 5, idleSeconds: 30 });
    expect(tuneArgs(cfg({}))).toEqual({ rank: 8, budgetMinutes: 30, idleSeconds: 60 });
    expect(agentArgs(cfg(section))).toEqual({ model: 'claude-x', maxTurns: 3, budgetTokens: 9000, lang: 'cuda', baseUrl: 'http://127.0.0.1:9' });
    expect(agentArgs(cfg({}))).toEqual({ model: 'claude-sonnet-5-5', maxTurns: 12, budgetTokens: 400000, lang: 'c' });
  });
});
