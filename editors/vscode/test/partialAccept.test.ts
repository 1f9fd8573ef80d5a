import { describe, expect, it } from 'vitest';
import { PartialAcceptTracker } from '../src/partialAccept';

const arg = { id: 'abc', uri: 'file:///a.py', line: 3, character: 4, text: 'return a + b\n' };
const ins = (offset: number, text: string, uri = 'file:///a.py', removed = 0) => [{ uri, offset, removed, text }];

function tracker() {
  const reports: Record<string, unknown>[] = [];
  const t = new PartialAcceptTracker((a) => reports.push(a));
  t.show({ uri: 'file:///a.py', offset: 100, text: 'return a + b\n', arg });
  return { t, reports };
}

describe('partial accept', () => {
  it('reports word by word with the running accepted length', () => {
    const { t, reports } = tracker();
    expect(t.onChange(ins(100, 'return'))).toBe(6);
    expect(t.onChange(ins(106, ' a'))).toBe(8);
    expect(reports).toEqual([{ ...arg, length: 6 }, { ...arg, length: 8 }]);
  });

  it('leaves the full accept to the item command', () => {
    const { t, reports } = tracker();
    expect(t.onChange(ins(100, 'return a + b\n'))).toBeUndefined();
    expect(t.onChange(ins(100, 'return'))).toBeUndefined();  // nothing shown any more
    expect(reports).toEqual([]);
  });

  it('does not count typing one matching character unless an accept command asked', () => {
    const { t, reports } = tracker();
    expect(t.onChange(ins(100, 'r'))).toBeUndefined();
    t.expectAccept();
    expect(t.onChange(ins(101, 'e'))).toBe(2);
    expect(reports).toEqual([{ ...arg, length: 2 }]);
  });

  it('forgets the suggestion on a diverging edit, a deletion, or another place', () => {
    for (const change of [ins(100, 'retx'), ins(100, 'return', 'file:///a.py', 1), ins(99, 'return'),
      [...ins(100, 'return'), ...ins(200, 'x')]]) {
      const { t, reports } = tracker();
      expect(t.onChange(change)).toBeUndefined();
      expect(t.onChange(ins(100, 'return'))).toBeUndefined();
      expect(reports).toEqual([]);
    }
  });

  it('ignores edits in other documents', () => {
    const { t, reports } = tracker();
    expect(t.onChange(ins(100, 'return', 'file:///b.py'))).toBeUndefined();
    expect(t.onChange(ins(100, 'return'))).toBe(6);
    expect(reports).toHaveLength(1);
  });
});
