"""Completion quality: held-out files of a source tree, cursor positions sampled in them, the server's own
prompt builder and engine, exact match and edit similarity. `ckls eval completion` is the command line."""
from ckls.eval.metrics import edit_similarity, exact_match, levenshtein
from ckls.fim.split import held_out_files, source_files, split_files

__all__ = ["edit_similarity", "exact_match", "levenshtein", "held_out_files", "source_files", "split_files"]
