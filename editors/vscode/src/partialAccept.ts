// Partial acceptance of an inline suggestion (next word / next line). VS Code tells the provider about it only
// through a proposed API, so the extension watches the document instead: an insertion at the suggestion's
// anchor that equals the suggestion's next characters is a partial accept. A single typed character is not
// counted (the user may just be typing what they see) unless the accept came from ckls's own accept command.

export interface Shown {
  uri: string;
  /** Offset in the document where the suggestion is inserted. */
  offset: number;
  text: string;
  /** The argument of the item's ckls.didAccept command; echoed back with `length`. */
  arg: Record<string, unknown>;
}

export interface Insertion {
  uri: string;
  offset: number;
  /** Length of the replaced range (0 for a pure insertion). */
  removed: number;
  text: string;
}

export type Report = (arg: Record<string, unknown>) => void;

export class PartialAcceptTracker {
  private shown?: Shown;
  private accepted = 0;
  private explicit = false;

  constructor(private readonly report: Report) {}

  /** A suggestion was handed to the editor (the newest one replaces any older one). */
  show(s: Shown): void {
    this.shown = s;
    this.accepted = 0;
    this.explicit = false;
  }

  /** The next change comes from an accept-word/accept-line command. */
  expectAccept(): void {
    this.explicit = true;
  }

  clear(): void {
    this.shown = undefined;
    this.accepted = 0;
    this.explicit = false;
  }

  /** Feeds the changes of one document event; returns the accepted length when it was a partial accept. */
  onChange(changes: Insertion[]): number | undefined {
    const s = this.shown;
    const explicit = this.explicit;
    this.explicit = false;
    if (!s || changes.length !== 1) {
      if (s && changes.some((c) => c.uri === s.uri)) this.clear();
      return undefined;
    }
    const c = changes[0];
    if (c.uri !== s.uri) return undefined;
    const at = s.offset + this.accepted;
    const rest = s.text.slice(this.accepted);
    if (c.removed !== 0 || c.offset !== at || c.text.length === 0 || !rest.startsWith(c.text)) {
      this.clear();
      return undefined;
    }
    if (c.text.length === rest.length) {
      // the whole remainder: a full accept, which the editor reports through the item's command
      this.clear();
      return undefined;
    }
    this.accepted += c.text.length;
    if (c.text.length < 2 && !explicit) return undefined;
    this.report({ ...s.arg, length: this.accepted });
    return this.accepted;
  }
}
