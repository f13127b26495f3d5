"""The largest build BAR0 has doorbells for: 511 I/O queue pairs and 256 MSI-X vectors,
shipped (no test ports), with a small RAM disk. It elaborates and writes Verilog in well
under a minute, and under Verilator the host driver brings up all 511 queue pairs and
runs I/O through a sample of them (cocotb_scale.py), against the reference model."""

import time

import pytest

from nvmecore import CoreConfig
from nvmecore.cli import generate_verilog
from nvmetb.sim import CONFIG_ENV, build, config_to_env, run, run_dir

CONFIG = CoreConfig(io_queues=511, msix_vectors=256, namespace_bytes=64 << 10)


@pytest.fixture(scope="module")
def verilog():
    start = time.process_time()
    text = generate_verilog(CONFIG)
    seconds = time.process_time() - start
    assert seconds < 60, f"the 511-queue build took {seconds:.0f} s of CPU to write its Verilog"
    return text


@pytest.mark.verilator
def test_scale_bring_up(verilog, request):
    build_dir = build("verilator", verilog, "nvmecore")
    run("verilator", build_dir, "nvmecore", "cocotb_scale", ["scale_bring_up"],
        run_dir(request.node.nodeid), env={CONFIG_ENV: config_to_env(CONFIG)})


def test_no_case_over_every_queue(verilog):
    """No per-queue (or per-vector) bitmap is written through a ``case`` with an arm per
    bit (``bit_select(...).eq``: Yosys turns each into an n x n multiplexer, which took
    the 511-queue queue state 6 GB and minutes to read in): ``nvmecore.bitmap`` writes them
    as one-hot masks. Cases of an FSM's states, or of a few dozen arms, are fine."""
    import re

    widest = max((len(re.findall(r"^\s+\d+'h[0-9a-f]+\s*:", body, re.M)), index)
                 for index, body in re.findall(r"casez \(([^)]*)\)(.*?)endcase", verilog,
                                               re.S)
                 if "state" not in index)
    assert widest[0] <= 64, f"a case of {widest[0]} arms on {widest[1]}"
