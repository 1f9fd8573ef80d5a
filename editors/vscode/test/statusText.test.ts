import { describe, expect, it } from 'vitest';
import { modelName, statusView, tuneProgress } from '../src/statusText';

describe('status bar', () => {
  it('names the model and its state', () => {
    expect(modelName('loaded /home/u/.cache/ckls/default.gguf')).toBe('default');
    expect(modelName('loading')).toBeUndefined();
    expect(statusView({ running: true, enabled: true, model: 'loaded /m/qwen.gguf' })).toMatchObject({ text: '$(sparkle) ckls qwen', state: 'ready' });
    expect(statusView({ running: true, enabled: true, model: 'loading' }).state).toBe('loading');
    expect(statusView({ running: true, enabled: true, model: 'cannot load model: bad magic' })).toMatchObject({ state: 'error', text: '$(warning) ckls no model' });
    expect(statusView({ running: true, enabled: false, model: 'loaded /m/qwen.gguf' })).toMatchObject({ state: 'off', text: '$(circle-outline) ckls qwen (off)' });
    const stopped = statusView({ running: false, enabled: true, error: 'cannot find the ckls language server' });
    expect(stopped.state).toBe('stopped');
    expect(stopped.tooltip).toContain('cannot find');
  });

  it('shows fine-tuning progress while a run is active', () => {
    // the shape of the server's ckls.tune.status reply (ckls/server/tuning.py TuneControl.status)
    const reply = (progress: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
      running: true, error: null, adapter_in_use: null, summary: null, yields: 3, paused: null,
      state_dir: '/home/u/.cache/ckls/tune/ws', rounds: 1, trained_files: 52, last_round: null, adapter: null,
      unfinished_step: null, progress_line: 'training, step 50/1624, loss 2.176', ...extra,
      progress: { phase: 'training', step: 50, total: 1624, loss: 2.176, heldout_loss: 2.59, tokens_per_s: 722,
        eta_s: 15, message: '', fraction: null, ...progress },
    });
    expect(tuneProgress(reply({ fraction: 0.426 }))).toBe('43%');  // the budget ends the round first
    expect(tuneProgress(reply({ step: 406, total: 1624 }))).toBe('25%');  // an older server: no fraction
    expect(tuneProgress(reply({ phase: 'waiting', fraction: 0.5, message: 'user active' }))).toBe('50% waiting');
    expect(tuneProgress(reply({ phase: 'scanning', step: 0, total: 0 }))).toBe('scanning');
    expect(tuneProgress(reply({ phase: 'waiting', step: 0, total: 0, message: 'paused: on battery' },
      { paused: 'on battery' }))).toBe('paused: on battery');
    expect(tuneProgress(reply({ fraction: 1 }, { running: false }))).toBeUndefined();
    expect(tuneProgress(null)).toBeUndefined();
    const v = statusView({ running: true, enabled: true, model: 'loaded /m/a.gguf', tune: reply({ fraction: 0.5 }) });
    expect(v.text).toBe('$(sparkle) ckls a $(mortar-board) 50%');
    expect(v.tooltip).toContain('fine-tuning: training, step 50/1624, loss 2.176');
  });
});
