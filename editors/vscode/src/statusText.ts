// The status bar text from the server's state (ckls.stats and ckls.tune.status replies).

export interface StatusInput {
  running: boolean;
  enabled: boolean;
  model?: string;         // ckls.stats "model": "loaded /path/m.gguf" | "loading" | "not loaded" | an error
  tune?: unknown;         // ckls.tune.status reply, when the server has it
  error?: string;
}

export interface StatusView {
  text: string;
  tooltip: string;
  state: 'ready' | 'loading' | 'off' | 'error' | 'stopped';
}

export function modelName(model: string | undefined): string | undefined {
  if (!model || !model.startsWith('loaded ')) return undefined;
  const p = model.slice('loaded '.length).trim();
  const base = p.split(/[\\/]/).pop() ?? p;
  return base.replace(/\.gguf$/i, '');
}

/**
 * From a ckls.tune.status reply ({running, paused, progress: {phase, step, total, fraction, ...}, progress_line}):
 * "42%" while a round trains ("42% waiting" while it gives way to the user), "paused: on battery" while an automatic
 * round waits for mains power; undefined when no round runs.
 */
export function tuneProgress(tune: unknown): string | undefined {
  if (!tune || typeof tune !== 'object') return undefined;
  const t = tune as Record<string, unknown>;
  if (t.running !== true) return undefined;
  if (typeof t.paused === 'string' && t.paused) return `paused: ${t.paused}`;
  const p = t.progress && typeof t.progress === 'object' ? t.progress as Record<string, unknown> : {};
  const phase = typeof p.phase === 'string' ? p.phase : '';
  const frac = typeof p.fraction === 'number' ? p.fraction
    : typeof p.step === 'number' && typeof p.total === 'number' && p.total > 0 ? p.step / p.total : undefined;
  if (frac === undefined || !Number.isFinite(frac)) return phase || 'running';
  return `${Math.round(Math.min(1, Math.max(0, frac)) * 100)}%${phase === 'waiting' ? ' waiting' : ''}`;
}

export function statusView(s: StatusInput): StatusView {
  if (!s.running) {
    return { text: '$(circle-slash) ckls', tooltip: s.error ? `ckls: ${s.error}` : 'ckls: server not running', state: 'stopped' };
  }
  const name = modelName(s.model);
  const tune = tuneProgress(s.tune);
  const tuneText = tune ? ` $(mortar-board) ${tune}` : '';
  let state: StatusView['state'];
  let icon: string;
  if (!s.enabled) { state = 'off'; icon = '$(circle-outline)'; }
  else if (name) { state = 'ready'; icon = '$(sparkle)'; }
  else if (!s.model || s.model === 'loading' || s.model === 'not loaded') { state = 'loading'; icon = '$(loading~spin)'; }
  else { state = 'error'; icon = '$(warning)'; }
  const label = name ?? (state === 'loading' ? 'loading' : state === 'off' ? 'off' : 'no model');
  const lines = [`ckls: ${state === 'off' ? 'completions off' : state}`, `model: ${s.model ?? 'unknown'}`];
  if (tune) {
    const line = (s.tune as Record<string, unknown>).progress_line;
    lines.push(`fine-tuning: ${typeof line === 'string' && line ? line : tune}`);
  }
  lines.push('Click to toggle completions');
  return { text: `${icon} ckls ${label}${state === 'off' && name ? ' (off)' : ''}${tuneText}`, tooltip: lines.join('\n'), state };
}
