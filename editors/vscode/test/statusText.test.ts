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
    expect(tuneProgress({ state: 'running', progress: 0.426 })).toBe('43%');
    expect(tuneProgress({ running: true, step: 30, total_steps: 120 })).toBe('25%');
    expect(tuneProgress({ state: 'waiting' })).toBe('waiting');
    expect(tuneProgress({ state: 'stopped', progress: 1 })).toBeUndefined();
    expect(tuneProgress(null)).toBeUndefined();
    expect(statusView({ running: true, enabled: true, model: 'loaded /m/a.gguf', tune: { state: 'running', progress: 0.5 } }).text)
      .toBe('$(sparkle) ckls a $(mortar-board) 50%');
  });
});
