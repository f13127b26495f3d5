"""The shipped build at core level (no test ports), under Icarus and
Verilator: what a user synthesises, brought up and driven by the host driver through the
host's interfaces alone, compared with the reference model (cocotb_shipped.py). The debug
build's benches (test_core_rtl, test_io_rtl, ...) cover the rest; this one proves the
benches need nothing the shipped build lacks."""

import pytest

from nvmetb.linux.run import CONFIG as LINUX_CONFIG
from nvmetb.sim import CONFIG_ENV, build, config_to_env, run, run_dir, sim_params, verilog_for

#: The defaults with a 4 MiB namespace: the build Linux's driver runs on in
#: test_linux_cosim.py, so Verilator builds it once for both.
CONFIG = LINUX_CONFIG
TESTS = ("shipped_round_trip", "shipped_data_integrity")


@pytest.fixture(scope="module")
def verilog():
    return verilog_for(CONFIG)


@pytest.mark.parametrize("sim", sim_params())
def test_shipped(sim, verilog, request):
    assert not CONFIG.debug
    build_dir = build(sim, verilog, "nvmecore")
    run(sim, build_dir, "nvmecore", "cocotb_shipped", list(TESTS),
        run_dir(request.node.nodeid), env={CONFIG_ENV: config_to_env(CONFIG)})
