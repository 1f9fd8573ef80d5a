// Maps the editor's "ckls" settings onto what the server reads (its workspace/configuration section "ckls",
// camelCase names) and onto the arguments of the fine-tuning and kernel commands.

/** Completion settings the server's schema has had from the start (ckls/config.py). */
export const SERVER_KEYS = [
  'modelPath', 'threads', 'nCtx', 'latencyMs', 'quickStart', 'prefillIdleMs', 'maxTokens', 'maxLines', 'prefixTokens', 'suffixTokens',
  'extraTokens', 'fimOrder', 'multiline', 'debounceMs', 'debounceMaxMs', 'triggerWithTextRight',
  'disabledLanguages', 'enabled', 'prefetch', 'telemetry',
  // the repository: retrieved windows in the prompt (ckls/completion/retrieval.py), memory at the logits (memory.py)
  'retrieval', 'memoryEnabled', 'memoryTokens',
  // speculative decoding from the context (ckls/runtime/draft.py)
  'speculativeTokens',
  // fine-tuning: contributed as ckls.tune.<name>, flattened to tune<Name> (the server's tune_* settings)
  'tuneEnabled', 'tuneRank', 'tuneAlpha', 'tuneLr', 'tuneBudgetS', 'tuneMaxSteps', 'tuneSeqLen', 'tuneSchedule',
  'tuneIdleMs', 'tuneThreads', 'tuneOnBattery', 'tuneDir', 'tuneUseAdapter',
  'logLevel', 'logFile',
] as const;

export interface ConfigLike {
  get<T>(key: string): T | undefined;
}

export function camel(snake: string): string {
  return snake.replace(/[_-]([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** Flattens nested settings: {tune: {rank: 8}} -> {tuneRank: 8}. */
export function flatten(obj: Record<string, unknown>, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? prefix + k.charAt(0).toUpperCase() + k.slice(1) : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, flatten(v as Record<string, unknown>, key));
    else out[key] = v;
  }
  return out;
}

/**
 * The object answered to the server's workspace/configuration request for section "ckls": only names the server
 * knows (it warns about unknown ones), so editor-only settings such as serverCommand never reach it. `known`
 * grows with the names a newer server reports in ckls.stats (e.g. fine-tuning settings).
 */
export function serverSettings(section: Record<string, unknown> | undefined | null,
  known: Iterable<string> = SERVER_KEYS): Record<string, unknown> {
  const flat = flatten(section ?? {});
  const out: Record<string, unknown> = {};
  for (const k of known) {
    if (flat[k] !== undefined && flat[k] !== null) out[k] = flat[k];
  }
  return out;
}

/** camelCase names from the `settings` object of a ckls.stats reply (snake_case there). */
export function knownFromStats(stats: unknown): string[] {
  const s = (stats as { settings?: unknown } | null)?.settings;
  if (!s || typeof s !== 'object') return [...SERVER_KEYS];
  return Array.from(new Set([...SERVER_KEYS, ...Object.keys(s as object).map(camel)]));
}

export interface TuneArgs {
  rank: number;
  budgetS: number;
  idleMs: number;
}

export function tuneArgs(cfg: ConfigLike): TuneArgs {
  return {
    rank: cfg.get<number>('tune.rank') ?? 8,
    budgetS: cfg.get<number>('tune.budgetS') ?? 600,
    idleMs: cfg.get<number>('tune.idleMs') ?? 3000,
  };
}

export interface AgentArgs {
  model: string;
  maxTurns: number;
  budgetTokens: number;
  lang: 'c' | 'cuda';
  baseUrl?: string;
}

export function agentArgs(cfg: ConfigLike): AgentArgs {
  const base = (cfg.get<string>('agent.baseUrl') ?? '').trim();
  const lang = cfg.get<string>('agent.lang') === 'cuda' ? 'cuda' : 'c';
  return {
    model: cfg.get<string>('agent.model') || 'claude-sonnet-5-5',
    maxTurns: cfg.get<number>('agent.maxTurns') ?? 12,
    budgetTokens: cfg.get<number>('agent.budgetTokens') ?? 400000,
    lang,
    ...(base ? { baseUrl: base } : {}),
  };
}
