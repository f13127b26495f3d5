"""Adapter-level bench on the FPGA top (nvmecore_usp): the register and host-driver
scenarios through the UltraScale+ adapter, and the adapter's own scenarios (split,
interleaved, straddled and failing completions, completion time-outs, non-posted credits,
function-level reset, extended tags), all compared with the reference model.

The 256-bit debug build runs every group under Verilator, and under Icarus (3-5x slower)
the register, host and adapter groups and the I/O scenarios that exercise what the
adapter adds to the core-level bench (ICARUS_IO: data both ways, reads aborted in flight;
the other I/O scenarios run at core level under Icarus); the
512-bit build (RQ straddling, RC straddling of four) runs the adapter's own group under
Verilator only (STYLE.md: 512-bit runs go to Verilator). Both with a short completion time-out.
"""

import pytest

from nvmecore import CoreConfig
from nvmecore.cli import USP_TOP_NAME
from nvmetb.scenarios.io import IO_SCENARIOS
from nvmetb.sim import CONFIG_ENV, SIMULATORS, build, config_to_env, run, run_dir, verilog_for

#: The default build, plus the test ports; reads with no completion fail after 8 us.
CONFIG = CoreConfig(debug=True, completion_timeout=2000)
CONFIGS = {256: CONFIG, 512: CoreConfig(debug=True, completion_timeout=2000, data_width=512)}

#: cocotb tests (in cocotb_usp.py) by name prefix; one simulator run per group. The NVM
#: I/O scenarios run one per simulator run ("io_<scenario>"): the RAM disk keeps its
#: namespace for the life of a simulation, and each scenario starts from a fresh model.
GROUPS = ("reg", "host", "usp") + tuple(f"io_{name}" for name in IO_SCENARIOS)
#: The I/O scenarios Icarus runs through the adapter (see the module text).
ICARUS_IO = ("io_round_trip", "abort_io")


def _params():
    """(width, group, simulator), marked ``icarus`` / ``verilator`` as sim_params() does."""
    runs = [(256, group, sim) for sim in SIMULATORS for group in GROUPS
            if sim != "icarus" or not group.startswith("io_") or group[3:] in ICARUS_IO]
    runs.append((512, "usp", "verilator"))
    return [pytest.param(width, group, sim, marks=getattr(pytest.mark, sim),
                         id=f"{sim}-w{width}-{group}") for width, group, sim in runs]


@pytest.fixture(scope="module")
def verilog():
    cache = {}

    def get(width):
        if width not in cache:
            cache[width] = verilog_for(CONFIGS[width], USP_TOP_NAME)
        return cache[width]
    return get


@pytest.mark.parametrize(("width", "group", "sim"), _params())
def test_usp(width, group, sim, verilog, request):
    import cocotb_usp

    names = [group] if group.startswith("io_") else \
        [name for name in dir(cocotb_usp) if name.startswith(f"{group}_")]
    build_dir = build(sim, verilog(width), USP_TOP_NAME)
    run(sim, build_dir, USP_TOP_NAME, "cocotb_usp", names, run_dir(request.node.nodeid),
        env={CONFIG_ENV: config_to_env(CONFIGS[width])})
