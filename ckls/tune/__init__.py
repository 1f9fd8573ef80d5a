"""Fine-tuning on the user's repository: workspace dataset (incremental), LoRA rounds on the CPU between
keystrokes, resumable checkpoints, adapter GGUF hot-swapped into the serving model. Never imports torch."""
