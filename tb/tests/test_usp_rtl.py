"""Adapter-level bench on the FPGA top (nvmecore_usp), under Icarus and Verilator: the
register and host-driver scenarios through the UltraScale+ adapter, and the adapter's own
scenarios (split, interleaved, straddled and failing completions, completion time-outs,
non-posted credits, function-level reset, extended tags), all compared with the reference
model. One 256-bit debug build per simulator, with a short completion time-out."""

import pytest

from nvmecore import CoreConfig
from nvmecore.cli import USP_TOP_NAME, generate_usp_verilog
from nvmetb.sim import CONFIG_ENV, build, config_to_env, run, run_dir, sim_params

#: The default build, plus the test ports; reads with no completion fail after 8 us.
CONFIG = CoreConfig(debug=True, completion_timeout=2000)

#: cocotb tests (in cocotb_usp.py) by name prefix; one simulator run per group.
GROUPS = ("reg", "host", "usp")


@pytest.fixture(scope="module")
def verilog():
    return generate_usp_verilog(CONFIG)


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("sim", sim_params())
def test_usp(sim, group, verilog, request):
    import cocotb_usp

    names = [name for name in dir(cocotb_usp) if name.startswith(f"{group}_")]
    build_dir = build(sim, verilog, USP_TOP_NAME)
    run(sim, build_dir, USP_TOP_NAME, "cocotb_usp", names, run_dir(request.node.nodeid),
        env={CONFIG_ENV: config_to_env(CONFIG)})
