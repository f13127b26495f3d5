"""Full stack under Icarus and Verilator: cocotbext-pcie's root complex and UltraScale+
hard-IP model around the generated FPGA top (nvmecore_usp), at 256 and 512 bits."""

import pytest

from nvmecore import CoreConfig
from nvmecore.cli import USP_TOP_NAME, generate_usp_verilog
from nvmetb.sim import CONFIG_ENV, build, config_to_env, run, run_dir, sim_params

#: The default build (16 queue pairs, 17 vectors) at each hard-IP width.
CONFIGS = {width: CoreConfig(data_width=width) for width in (256, 512)}


@pytest.fixture(scope="module")
def verilog():
    return {width: generate_usp_verilog(config) for width, config in CONFIGS.items()}


@pytest.mark.parametrize("width", list(CONFIGS))
@pytest.mark.parametrize("sim", sim_params())
def test_pcie(sim, width, verilog, request):
    build_dir = build(sim, verilog[width], USP_TOP_NAME)
    run(sim, build_dir, USP_TOP_NAME, "cocotb_pcie", None, run_dir(request.node.nodeid),
        env={CONFIG_ENV: config_to_env(CONFIGS[width])})
