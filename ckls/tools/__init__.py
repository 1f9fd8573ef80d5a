"""Developer tools that check the house rules (python -m ckls.tools.layers)."""
