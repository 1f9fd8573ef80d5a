"""The layers hold: no import against docs/architecture.md's rules, no cycle between packages or modules."""
from ckls.tools import layers


def test_no_import_goes_against_the_layers():
    assert layers.check() == []


def test_the_checker_sees_a_violation_and_a_cycle():
    edges = {"ckls.verify.run": {"ckls.kernels.agent"}, "ckls.kernels.agent": {"ckls.verify.run"}}
    assert any("verify may not import kernels" in v for v in layers.violations(edges))
    assert layers.cycles(edges) == [["ckls.kernels.agent", "ckls.verify.run"]]
    assert layers.cycles({"a": {"b"}, "b": set()}) == []


def test_a_module_entry_allows_that_module_only():
    # train (the factory, no native build on its machines) may use the runtime's GGUF writer, nothing else of it
    assert layers.violations({"ckls.train.export": {"ckls.runtime.gguf_write"}}) == []
    bad = layers.violations({"ckls.train.export": {"ckls.runtime.model", "ckls.runtime"}})
    assert len(bad) == 2 and all("train may not import runtime" in v for v in bad)
