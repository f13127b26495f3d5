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
