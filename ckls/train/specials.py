"""Special-token texts of ckls models (ids 0..6 in this order). Kept apart from tokenizer.py so code that only
lays out FIM samples (fim.py, and ckls.tune on a plain install) does not need HF `tokenizers`."""
EOT = "<|endoftext|>"
FIM_PRE, FIM_MID, FIM_SUF, FIM_PAD = "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>"
REPO, FILE_SEP = "<|repo_name|>", "<|file_sep|>"
SPECIALS = [EOT, FIM_PRE, FIM_MID, FIM_SUF, FIM_PAD, REPO, FILE_SEP]
