"""Fill-in-the-middle prompts in the model's own format, rendered from ckls.fim.layout (the layout training and
tuning render from too) with the FIM token ids the model's GGUF declares.

SPM is the default: typing changes only the end of the prompt, so everything before the typed word stays cached.
The head (recent chunks, definitions, the enclosing scope's header) sits before the FIM block and is rendered
once per change of its entries. The prefix window starts on a line and keeps its start line while it fits the
budget (hysteresis), so the cached K/V survive many keystrokes before the window slides."""
from __future__ import annotations

from dataclasses import dataclass, field

from ckls.completion.context import Context
from ckls.fim import layout
from ckls.fim.tokens import FimFormat

__all__ = ["FimFormat", "Prompt", "PromptBuilder"]
TAIL = 64  # prefix tokens kept in Prompt.prefix_tail (the repo memory matches at most this many)


@dataclass
class Prompt:
    tokens: list[int]
    n_extra: int          # tokens of cross-file context at the head
    n_prefix: int
    n_suffix: int
    prefix_start: int     # document line where the prefix text starts
    n_stable: int = 0     # leading tokens that typing on the cursor's line leaves as they are
    heal: bytes = b""     # the prefix's last word, left out: generation must spell these bytes first (heal.py)
    prefix_tail: list[int] = field(default_factory=list)  # the prefix's last tokens (the repo memory's context)


class PromptBuilder:
    def __init__(self, tokenizer, prefix_tokens: int = 768, suffix_tokens: int = 256, extra_tokens: int = 512,
                 fim_order: str = "spm", heal: bool = True, total_tokens: int | None = None):
        self.tok = tokenizer
        self.heal = heal
        self.fmt = FimFormat.from_tokenizer(tokenizer)
        self.prefix_tokens = prefix_tokens
        self.suffix_tokens = suffix_tokens
        self.extra_tokens = extra_tokens
        # All three together, when the model's context is shorter than their sum: the prefix (the text the answer
        # continues) keeps its budget, the suffix takes what is left of its own, the other files the rest.
        self.total_tokens = total_tokens
        self.fim_order = fim_order
        self._line_tokens: dict[str, int] = {}
        self._start: dict[str, int] = {}     # uri -> prefix start line (hysteresis)
        self._extra_memo: tuple[tuple, list[list[int]]] = ((), [])  # ctx.extra -> each entry's tokens

    def _count(self, line: str) -> int:
        n = self._line_tokens.get(line)
        if n is None:
            n = len(self.tok.encode(line))
            if len(self._line_tokens) > 50000:
                self._line_tokens.clear()
            self._line_tokens[line] = n
        return n

    def _prefix(self, ctx: Context) -> tuple[str, int, int]:
        """Prefix text on whole lines within the token budget, its first document line and its token count."""
        lines = ctx.before.split("\n")
        first = ctx.before_first_line
        counts = [self._count(l) + 1 for l in lines]
        total = sum(counts)
        kept = self._start.get(ctx.uri)
        if kept is not None and first <= kept <= ctx.line:
            drop = kept - first
            n = sum(counts[drop:])
            if n <= self.prefix_tokens:
                return "\n".join(lines[drop:]), kept, n
        if total <= self.prefix_tokens and first == 0:
            self._start[ctx.uri] = 0
            return ctx.before, 0, total
        # slide: keep 3/4 of the budget so the next ~quarter-budget of typing reuses this start
        target = self.prefix_tokens * 3 // 4
        drop, acc = len(lines) - 1, counts[-1]
        while drop > 0 and acc + counts[drop - 1] <= target:
            drop -= 1
            acc += counts[drop]
        if drop == len(lines) - 1 and counts[-1] > self.prefix_tokens:
            # one huge line: keep its tail only (characters ~ 2 per token at worst)
            return lines[-1][-self.prefix_tokens * 2:], ctx.line, self.prefix_tokens
        self._start[ctx.uri] = first + drop
        return "\n".join(lines[drop:]), first + drop, acc

    def _suffix(self, ctx: Context, budget: int) -> tuple[str, int]:
        """Suffix text on whole lines within budget tokens, and its count."""
        if budget <= 0:
            return "", 0
        out, acc = [], 0
        for l in ctx.after.split("\n"):
            c = self._count(l) + 1
            if acc + c > budget:
                if not out:
                    out.append(l[: budget * 2])
                    acc = budget
                break
            out.append(l)
            acc += c
        return "\n".join(out), acc

    def _render(self, pieces: list, heal: bool = False) -> layout.Rendered:
        return layout.render(pieces, self.tok.encode, self.fmt.special_id, self._decode, heal, self.tok.pretokenize)

    def _decode(self, ids: list[int]) -> str:
        return b"".join(self.tok.token_bytes(i) for i in ids).decode("utf-8", "replace")

    def _extra(self, ctx: Context, budget: int) -> list[int]:
        """The head's entries (retrieved windows, ring chunks, definitions), as many as fit budget tokens. Each
        entry is rendered once while the entries stay the same (the budget may move with every keystroke)."""
        key = tuple(ctx.extra)
        if key != self._extra_memo[0]:
            sep = self.fmt.sep is not None
            self._extra_memo = (key, [self._render(layout.head([(where, text)], "", sep)[:2 if sep else 1])[0]
                                      for where, text in ctx.extra])
        ids: list[int] = []
        for part in self._extra_memo[1]:
            if len(ids) + len(part) > budget:
                break
            ids += part
        return ids

    def build(self, ctx: Context) -> Prompt:
        prefix, start, n_prefix = self._prefix(ctx)
        if self.total_tokens is None:
            suffix, _ = self._suffix(ctx, self.suffix_tokens)
            extra = self._extra(ctx, self.extra_tokens)
        else:  # 24: the FIM markers, the file name and the scope line's margin
            left = self.total_tokens - n_prefix - 24
            suffix, used = self._suffix(ctx, min(self.suffix_tokens, left))
            extra = self._extra(ctx, min(self.extra_tokens, left - used))
        f = self.fmt
        sep = f.sep is not None
        head = list(extra)
        scope = ctx.scope.header.strip() if ctx.scope is not None else ""
        if scope and scope not in prefix:
            # the budget cut off the line that opens the enclosing function/class: keep it in view, before the
            # FIM block (it stays the same while the cursor is in that scope)
            head += self._render(layout.head([(ctx.path, f"{ctx.scope.header}\n")], "", sep)[:2 if sep else 1])[0]
        if sep and head:  # the current file's name closes the head
            head += self._render(layout.head([("", "")], ctx.path, sep)[2:])[0]
        pieces = layout.cursor([], prefix, suffix, self.fim_order, f.has_fim)
        r = self._render(pieces, self.heal)
        tail, heal = r.ids, r.carry
        a, b = r.spans[next(i for i, p in enumerate(pieces) if isinstance(p, tuple) and p[0] == "pre")]
        p_ids = tail[a:b]
        # the prefix up to its last line break tokenizes (almost) the same while the user types on this line
        cut = prefix.rfind("\n") + 1
        p_prev = self.tok.encode(prefix[:cut]) if cut else []
        same = 0
        while same < min(len(p_prev), len(p_ids)) and p_prev[same] == p_ids[same]:
            same += 1
        same = max(0, same - 1)  # the last shared token may still merge with what follows
        same = min(same, len(p_ids))
        heal_bytes = heal.encode("utf-8")
        p_tail = p_ids[-TAIL:]
        if not f.has_fim:
            return Prompt(head + tail, len(extra), len(p_ids), 0, start, len(head) + same, heal_bytes, p_tail)
        n_suffix = len(tail) - len(p_ids) - 3  # [suf] suffix [pre] prefix [mid]
        if self.fim_order == "psm":
            stable = len(head) + 1 + same
        else:
            stable = len(head) + 2 + n_suffix + same
        return Prompt(head + tail, len(extra), len(p_ids), n_suffix, start, stable, heal_bytes, p_tail)
