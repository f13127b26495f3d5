"""Queue engine and admin commands on the generated Verilog, under Icarus and Verilator:
the host driver's bring-up (every I/O queue pair of the default build) and every admin
status path, compared with the reference model. Shares its build with test_core_rtl."""

import pytest

from nvmetb.scenarios.queues import QUEUE_SCENARIOS
from nvmetb.sim import CONFIG_ENV, build, config_to_env, run, run_dir, sim_params
from test_core_rtl import CONFIG, verilog  # noqa: F401  (the shared build and fixture)


@pytest.mark.parametrize("scenario", list(QUEUE_SCENARIOS))
@pytest.mark.parametrize("sim", sim_params())
def test_queues(sim, scenario, verilog, request):  # noqa: F811
    build_dir = build(sim, verilog, "nvmecore")
    run(sim, build_dir, "nvmecore", "cocotb_queues", scenario, run_dir(request.node.nodeid),
        env={CONFIG_ENV: config_to_env(CONFIG)})
