"""ckls.fim: the one prompt layout and the data rules that serving, the model factory, the tuner and the eval
share. Torch-free and tokenizer-agnostic: nothing here imports another ckls package.

  tokens.py   special-token texts and a model's FIM ids (FimFormat)
  layout.py   the layout of a prompt at a cursor and of a training example; rendering with token healing
  cursors.py  training examples at cursors an editor would have (line, block, lines, span)
  fill.py     random FIM cuts of whole documents
  corpus.py   which files count as source (extensions, size, generated/minified filters)
  dedup.py    exact and near-duplicate detection
  split.py    the held-out split of a source tree (by path hash): eval scores it, tuning trains around it
"""
