"""The completion pipeline: context → FIM prompt → scheduler (cache, debounce, cancel) → engine → post-processing."""
