// Pure helpers for the kernel command: the verdict and report from a ckls.generateKernel reply, and the files
// a ckls.applyKernel WorkspaceEdit (LSP JSON) would produce, for the diff shown before anything is applied.

export interface LspPosition { line: number; character: number }
export interface LspRange { start: LspPosition; end: LspPosition }
export interface LspTextEdit { range: LspRange; newText: string }

export function verdictOf(result: unknown): string {
  if (!result || typeof result !== 'object') return 'UNKNOWN';
  const r = result as Record<string, unknown>;
  const rep = r.report && typeof r.report === 'object' ? (r.report as Record<string, unknown>) : {};
  const v = r.verdict ?? r.status ?? rep.verdict ?? rep.status;
  if (typeof v === 'string' && v) return v.toUpperCase();
  if (typeof r.passed === 'boolean') return r.passed ? 'PASS' : 'FAIL';
  return 'UNKNOWN';
}

/** The verification report as Markdown: the server's text when it sends one, else its fields. */
export function reportMarkdown(result: unknown): string {
  const r = (result && typeof result === 'object' ? result : {}) as Record<string, unknown>;
  const parts: string[] = [`# ckls kernel: ${verdictOf(result)}`, ''];
  const rep = r.report ?? r.reportText ?? r.text;
  if (typeof rep === 'string') parts.push(rep.trim(), '');
  else if (rep && typeof rep === 'object') parts.push('```json', JSON.stringify(rep, null, 2), '```', '');
  const usage = r.usage;
  if (usage && typeof usage === 'object') parts.push('## Agent usage', '```json', JSON.stringify(usage, null, 2), '```', '');
  if (typeof r.source === 'string' && r.source) {
    const lang = r.lang === 'cuda' ? 'cuda' : 'c';
    parts.push('## Kernel', '```' + lang, r.source.trimEnd(), '```', '');
  }
  if (typeof r.error === 'string' && r.error) parts.push('## Error', r.error, '');
  return parts.join('\n');
}

/** Offset of an LSP position (UTF-16 code units, as JS strings count) in `text`; clamped to the text. */
export function offsetAt(text: string, pos: LspPosition): number {
  let line = 0;
  let i = 0;
  while (line < pos.line) {
    const nl = text.indexOf('\n', i);
    if (nl < 0) return text.length;
    i = nl + 1;
    line++;
  }
  const eol = text.indexOf('\n', i);
  const end = eol < 0 ? text.length : eol;
  return Math.min(i + Math.max(0, pos.character), end);
}

/** Applies LSP text edits (non-overlapping, all against the original text) to `text`. */
export function applyTextEdits(text: string, edits: LspTextEdit[]): string {
  const spans = edits
    .map((e, k) => ({ s: offsetAt(text, e.range.start), e: offsetAt(text, e.range.end), t: e.newText, k }))
    .sort((a, b) => a.s - b.s || a.k - b.k);
  let out = '';
  let at = 0;
  for (const sp of spans) {
    if (sp.s < at) throw new Error('overlapping edits in the kernel change');
    out += text.slice(at, sp.s) + sp.t;
    at = Math.max(at, sp.e);
  }
  return out + text.slice(at);
}

export interface FileChange { uri: string; before: string; after: string; created: boolean }

type Read = (uri: string) => Promise<string | undefined>;

/** Every file the WorkspaceEdit touches, with its text before and after (new files start empty). */
export async function previewEdit(edit: unknown, read: Read): Promise<FileChange[]> {
  const e = (edit ?? {}) as Record<string, unknown>;
  const byUri = new Map<string, FileChange>();
  const get = async (uri: string, create = false): Promise<FileChange> => {
    let f = byUri.get(uri);
    if (!f) {
      const before = create ? undefined : await read(uri);
      f = { uri, before: before ?? '', after: before ?? '', created: create || before === undefined };
      byUri.set(uri, f);
    }
    return f;
  };
  if (Array.isArray(e.documentChanges)) {
    for (const dc of e.documentChanges as Record<string, unknown>[]) {
      if (dc.kind === 'create' && typeof dc.uri === 'string') {
        await get(dc.uri, true);
      } else if (dc.kind === 'rename' || dc.kind === 'delete') {
        throw new Error(`the kernel change would ${dc.kind} a file; refusing to preview it`);
      } else if (dc.textDocument && Array.isArray(dc.edits)) {
        const f = await get((dc.textDocument as { uri: string }).uri);
        f.after = applyTextEdits(f.after, dc.edits as LspTextEdit[]);
      }
    }
  }
  if (e.changes && typeof e.changes === 'object') {
    for (const [uri, edits] of Object.entries(e.changes as Record<string, LspTextEdit[]>)) {
      const f = await get(uri);
      f.after = applyTextEdits(f.after, edits);
    }
  }
  return [...byUri.values()];
}

/** The WorkspaceEdit inside a ckls.applyKernel reply ({edit: ...} or the edit itself). */
export function editOf(reply: unknown): unknown {
  if (!reply || typeof reply !== 'object') return undefined;
  const r = reply as Record<string, unknown>;
  if (r.changes || r.documentChanges) return r;
  if (r.edit && typeof r.edit === 'object') return r.edit;
  return undefined;
}
