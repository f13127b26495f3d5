"""Core-level bench on the generated Verilog, under Icarus and Verilator: every scenario
of nvmetb.scenarios.registers, compared with the reference model."""

import pytest

from nvmetb.bench import CORE_BENCH_CONFIG
from nvmetb.scenarios.registers import SCENARIOS
from nvmetb.sim import CONFIG_ENV, build, config_to_env, run, run_dir, sim_params, verilog_for

#: The default build, plus the test ports and a short SQ fetch time-out.
CONFIG = CORE_BENCH_CONFIG


@pytest.fixture(scope="module")
def verilog():
    return verilog_for(CONFIG)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("sim", sim_params())
def test_core(sim, scenario, verilog, request):
    build_dir = build(sim, verilog, "nvmecore")
    run(sim, build_dir, "nvmecore", "cocotb_core", scenario, run_dir(request.node.nodeid),
        env={CONFIG_ENV: config_to_env(CONFIG)})
