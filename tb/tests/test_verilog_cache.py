"""nvmetb.sim.verilog_for: the shared Verilog cache gives exactly what nvmecore.cli
generates, once per (source tree, top, config), and never a stale text."""

import pytest

from nvmecore import CoreConfig
from nvmecore.cli import USP_TOP_NAME, generate_usp_verilog, generate_verilog
from nvmetb import sim

pytestmark = pytest.mark.quick

SMALL = CoreConfig(io_queues=1, data_width=64, namespace_bytes=16 << 10)
SMALL_USP = CoreConfig(io_queues=1, namespace_bytes=16 << 10)      # the adapter: 256 bits


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(sim, "BUILD_ROOT", tmp_path)
    monkeypatch.setattr(sim, "_verilog_memo", {})
    return tmp_path / "verilog"


def test_same_text_as_the_generator(cache):
    assert sim.verilog_for(SMALL) == generate_verilog(SMALL)
    assert sim.verilog_for(SMALL_USP, USP_TOP_NAME) == generate_usp_verilog(SMALL_USP)
    assert len(list(cache.glob("*.v"))) == 2


def test_generated_once(cache, monkeypatch):
    first = sim.verilog_for(SMALL)
    (path,) = cache.glob("nvmecore-*.v")
    path.write_text(first + "// cached\n")
    monkeypatch.setattr(sim, "_verilog_memo", {})       # another worker, another run
    assert sim.verilog_for(SMALL).endswith("// cached\n")
    other = CoreConfig(io_queues=2, data_width=64, namespace_bytes=16 << 10)
    assert sim.verilog_for(other) == generate_verilog(other)


def test_key_follows_the_source(tmp_path, monkeypatch):
    hdl = tmp_path / "hdl"
    (hdl / "nvme").mkdir(parents=True)
    (hdl / "nvme" / "block.py").write_text("A = 1\n")
    monkeypatch.setattr(sim, "HDL_ROOT", hdl)
    before = sim._hdl_digest()
    (hdl / "nvme" / "block.py").write_text("A = 2\n")
    assert sim._hdl_digest() != before


def test_unknown_top(cache):
    with pytest.raises(ValueError, match="top must be one of"):
        sim.verilog_for(SMALL, "nvmecore_other")
