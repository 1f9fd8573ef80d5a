"""Distillation: a frozen teacher's soft targets added to the student's next-token loss.

loss = (1 − α)·CE(student, y) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T))
The teacher is any checkpoint written by train.py with the same tokenizer (vocabulary size is checked). The
comparison that matters is against the student trained alone for the same wall-clock budget: the teacher's
forward pass is part of the student's compute.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import Config, Llama


def kd_loss(student_logits, teacher_logits, targets, alpha: float, temperature: float):
    s = student_logits.float().flatten(0, 1)
    ce = F.cross_entropy(s, targets.flatten())
    if alpha == 0.0:
        return ce
    t = teacher_logits.float().flatten(0, 1)
    kl = F.kl_div(F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1),
                  log_target=True, reduction="batchmean")
    return (1 - alpha) * ce + alpha * temperature ** 2 * kl


def load_teacher(path, device, vocab_size: int) -> Llama:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = Config(**ck["cfg"])
    if cfg.vocab_size != vocab_size:
        raise ValueError(f"teacher vocabulary {cfg.vocab_size} ≠ student {vocab_size}")
    teacher = Llama(cfg)
    teacher.load_state_dict(ck["model"])
    teacher.to(device).eval().requires_grad_(False)
    return teacher
