import { describe, expect, it } from 'vitest';
import { applyTextEdits, editOf, offsetAt, previewEdit, reportMarkdown, verdictOf } from '../src/kernelResult';

const r = (l1: number, c1: number, l2: number, c2: number) => ({ start: { line: l1, character: c1 }, end: { line: l2, character: c2 } });

describe('kernel result', () => {
  it('reads the verdict wherever the server puts it', () => {
    expect(verdictOf({ verdict: 'pass' })).toBe('PASS');
    expect(verdictOf({ report: { verdict: 'FAIL' } })).toBe('FAIL');
    expect(verdictOf({ passed: true })).toBe('PASS');
    expect(verdictOf('x')).toBe('UNKNOWN');
  });

  it('renders the report, usage and kernel source', () => {
    const md = reportMarkdown({ verdict: 'PASS', report: 'speedup 3.1x over numpy', usage: { input_tokens: 5 }, source: 'void k(){}', lang: 'c' });
    expect(md).toContain('# ckls kernel: PASS');
    expect(md).toContain('speedup 3.1x');
    expect(md).toContain('"input_tokens": 5');
    expect(md).toContain('```c\nvoid k(){}\n```');
  });

  it('maps LSP positions to offsets, clamped to the line', () => {
    const t = 'ab\ncdé\n\nx';
    expect(offsetAt(t, { line: 0, character: 0 })).toBe(0);
    expect(offsetAt(t, { line: 1, character: 2 })).toBe(5);
    expect(offsetAt(t, { line: 1, character: 99 })).toBe(6);
    expect(offsetAt(t, { line: 3, character: 1 })).toBe(9);
    expect(offsetAt(t, { line: 9, character: 0 })).toBe(t.length);
  });

  it('applies edits against the original text in any order and rejects overlaps', () => {
    const t = 'def f(x):\n    return x\n';
    expect(applyTextEdits(t, [
      { range: r(1, 4, 1, 12), newText: 'return _k(x)' },
      { range: r(0, 0, 0, 0), newText: 'import _k\n' },
    ])).toBe('import _k\ndef f(x):\n    return _k(x)\n');
    expect(() => applyTextEdits(t, [{ range: r(0, 0, 0, 5), newText: '' }, { range: r(0, 2, 0, 3), newText: '' }])).toThrow(/overlapping/);
  });

  it('previews created and edited files of a WorkspaceEdit', async () => {
    const edit = {
      documentChanges: [
        { kind: 'create', uri: 'file:///w/k.c' },
        { textDocument: { uri: 'file:///w/k.c', version: null }, edits: [{ range: r(0, 0, 0, 0), newText: 'void k(void){}\n' }] },
        { textDocument: { uri: 'file:///w/a.py', version: 1 }, edits: [{ range: r(0, 0, 0, 0), newText: '# ckls\n' }] },
      ],
    };
    const files = await previewEdit(edit, async (u) => (u === 'file:///w/a.py' ? 'x = 1\n' : undefined));
    expect(files).toEqual([
      { uri: 'file:///w/k.c', before: '', after: 'void k(void){}\n', created: true },
      { uri: 'file:///w/a.py', before: 'x = 1\n', after: '# ckls\nx = 1\n', created: false },
    ]);
    await expect(previewEdit({ documentChanges: [{ kind: 'delete', uri: 'file:///w/a.py' }] }, async () => '')).rejects.toThrow(/delete/);
    expect(editOf({ edit: edit })).toBe(edit);
    expect(editOf(edit)).toBe(edit);
    expect(editOf({ ok: true })).toBeUndefined();
  });
});
