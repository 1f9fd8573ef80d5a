"""Model pieces: RoPE matches llama.cpp's adjacent-pair rotation; distillation loss; a distillation run."""
import argparse
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ckls.train import distill, train  # noqa: E402
from ckls.train.model import Config, apply_rope, rope_tables  # noqa: E402


def test_rope_rotates_adjacent_pairs():
    g = torch.Generator().manual_seed(int(np.random.SeedSequence().entropy % 2**31))
    cfg = Config(dim=48, n_heads=3, max_seq=37)  # head_dim 16, odd length
    x = torch.randn(2, 3, 37, 16, generator=g, dtype=torch.float64)
    cos, sin = rope_tables(cfg)
    got = apply_rope(x.float(), cos, sin).double()
    pos = torch.arange(37, dtype=torch.float64)[:, None]
    theta = 10000.0 ** (-torch.arange(0, 16, 2, dtype=torch.float64) / 16)
    z = torch.view_as_complex(x.unflatten(-1, (8, 2)).contiguous()) * torch.polar(torch.ones(37, 8, dtype=torch.float64), pos * theta)
    ref = torch.view_as_real(z).flatten(-2)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_kd_loss():
    g = torch.Generator().manual_seed(int(np.random.SeedSequence().entropy % 2**31))
    s, t = torch.randn(2, 5, 11, generator=g), torch.randn(2, 5, 11, generator=g)
    y = torch.randint(0, 11, (2, 5), generator=g)
    ce = torch.nn.functional.cross_entropy(s.flatten(0, 1), y.flatten())
    torch.testing.assert_close(distill.kd_loss(s, t, y, 0.0, 2.0), ce)
    torch.testing.assert_close(distill.kd_loss(s, s, y, 1.0, 2.0), torch.tensor(0.0), atol=1e-6, rtol=0)
    assert distill.kd_loss(s, t, y, 1.0, 1.0) > 0


def args(data, out, *extra):
    p = argparse.ArgumentParser()
    train.add_args(p)
    return p.parse_args(["--data", str(data), "--out", str(out), "--dim", "32", "--layers", "1", "--heads", "2",
                         "--ffn", "64", "--seq", "16", "--batch", "4", "--micro", "4", "--warmup", "1",
                         "--log-every", "1", "--eval-tokens", "512", "--threads", "1", *extra])


def test_distillation_run(tmp_path):
    rng = np.random.default_rng()
    np.save(tmp_path / "train.npy", rng.integers(0, 50, 5000).astype(np.uint16))
    np.save(tmp_path / "heldout.npy", rng.integers(0, 50, 600).astype(np.uint16))
    (tmp_path / "meta.json").write_text(json.dumps({"vocab_size": 50}))
    train.run(args(tmp_path, tmp_path / "teacher", "--max-steps", "3"))
    m = train.run(args(tmp_path, tmp_path / "student", "--max-steps", "3", "--dim", "16",
                       "--teacher", str(tmp_path / "teacher" / "ckpt.pt"), "--kd-alpha", "0.5"))
    assert m["steps"] == 3 and np.isfinite(m["heldout_loss"])
    with pytest.raises(ValueError):
        (tmp_path / "meta.json").write_text(json.dumps({"vocab_size": 60}))
        train.run(args(tmp_path, tmp_path / "other", "--max-steps", "1",
                       "--teacher", str(tmp_path / "teacher" / "ckpt.pt")))


def test_weighted_loss_is_the_weighted_mean_of_token_losses():
    g = torch.Generator().manual_seed(int(np.random.SeedSequence().entropy % 2**31))
    model = train.Llama(Config(vocab_size=23, dim=16, n_heads=2, n_layers=1, ffn_dim=32, max_seq=9))
    x, y = torch.randint(0, 23, (3, 9), generator=g), torch.randint(0, 23, (3, 9), generator=g)
    w = 1.0 + 4.0 * (torch.rand(3, 9, generator=g) < 0.3)
    nll = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction="none")
    torch.testing.assert_close(model(x, y, w), (nll * w.flatten()).sum() / w.sum())
    torch.testing.assert_close(model(x, y, torch.ones(3, 9)), model(x, y))


def test_middle_weight_trains_on_the_mask_and_says_what_is_missing(tmp_path):
    rng = np.random.default_rng()
    np.save(tmp_path / "train.npy", rng.integers(0, 50, 5000).astype(np.uint16))
    np.save(tmp_path / "heldout.npy", rng.integers(0, 50, 600).astype(np.uint16))
    (tmp_path / "meta.json").write_text(json.dumps({"vocab_size": 50}))
    with pytest.raises(SystemExit, match="train_mask.npy is missing"):
        train.run(args(tmp_path, tmp_path / "a", "--max-steps", "2", "--middle-weight", "8"))
    np.save(tmp_path / "train_mask.npy", (rng.random(4000) < 0.1).astype(np.uint8))
    with pytest.raises(SystemExit, match="encode the corpus again"):
        train.run(args(tmp_path, tmp_path / "b", "--max-steps", "2", "--middle-weight", "8"))
    np.save(tmp_path / "train_mask.npy", (rng.random(5000) < 0.1).astype(np.uint8))
    m = train.run(args(tmp_path, tmp_path / "c", "--max-steps", "3", "--middle-weight", "8"))
    assert m["steps"] == 3 and np.isfinite(m["heldout_loss"])
