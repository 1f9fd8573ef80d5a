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

/** "42%" (or "round 3") when a fine-tuning run is active, else undefined. */
export function tuneProgress(tune: unknown): string | undefined {
  if (!tune || typeof tune !== 'object') return undefined;
  const t = tune as Record<string, unknown>;
  const state = String(t.state ?? t.status ?? '');
  const active = t.running === true || /^(running|training|waiting|idle-wait|scheduled)$/i.test(state);
  if (!active) return undefined;
  const frac = typeof t.progress === 'number' ? t.progress
    : typeof t.step === 'number' && typeof t.total_steps === 'number' && t.total_steps > 0 ? t.step / t.total_steps
      : typeof t.step === 'number' && typeof t.totalSteps === 'number' && t.totalSteps > 0 ? t.step / t.totalSteps
        : undefined;
  if (frac !== undefined && Number.isFinite(frac)) return `${Math.round(Math.min(1, Math.max(0, frac)) * 100)}%`;
  return state || 'running';
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
  if (tune) lines.push(`fine-tuning: ${tune}`);
  lines.push('Click to toggle completions');
  return { text: `${icon} ckls ${label}${state === 'off' && name ? ' (off)' : ''}${tuneText}`, tooltip: lines.join('\n'), state };
}
