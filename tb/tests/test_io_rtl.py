"""The NVM I/O path on the generated Verilog at core level, under Icarus and Verilator:
every I/O scenario with the RAM disk (the default build, shared with test_core_rtl) and
with the AXI4 backend behind cocotbext-axi's AxiRam, model in lock step, namespace
compared. Behind the AXI4 backend Icarus runs the light scenarios only (LIGHT_SCENARIOS
but Format NVM: the random and layout sweeps and the whole-namespace format run there
under Verilator)."""

import pytest

from nvmecore import CoreConfig
from nvmecore.cli import generate_verilog
from nvmetb.scenarios.io import IO_SCENARIOS, LIGHT_SCENARIOS, MEDIA_SCENARIOS
from nvmetb.sim import CONFIG_ENV, SIMULATORS, build, config_to_env, run, run_dir
from test_core_rtl import CONFIG as RAMDISK

CONFIGS = {"ramdisk": RAMDISK, "axi": CoreConfig(debug=True, backend="axi")}
#: The RAM disk never fails; media errors are injected on the AXI bus only.
SCENARIOS = {"ramdisk": list(IO_SCENARIOS), "axi": list(IO_SCENARIOS) + list(MEDIA_SCENARIOS)}


@pytest.fixture(scope="module")
def verilog():
    cache = {}

    def get(backend):
        if backend not in cache:
            cache[backend] = generate_verilog(CONFIGS[backend])
        return cache[backend]
    return get


def _params():
    """(simulator, backend, scenario), marked ``icarus`` / ``verilator`` as sim_params()."""
    return [pytest.param(sim, backend, scenario, marks=getattr(pytest.mark, sim),
                         id=f"{sim}-{backend}-{scenario}")
            for sim in SIMULATORS for backend in CONFIGS for scenario in SCENARIOS[backend]
            if sim != "icarus" or backend == "ramdisk"
            or scenario in LIGHT_SCENARIOS and scenario not in ICARUS_RAMDISK_ONLY]


#: Whole-namespace scenarios that Icarus runs on the RAM disk only (behind the AXI4
#: backend, 1 MiB through AxiRam takes over a minute there; Verilator runs both).
ICARUS_RAMDISK_ONLY = ("format_nvm",)


@pytest.mark.parametrize(("sim", "backend", "scenario"), _params())
def test_io(sim, backend, scenario, verilog, request):
    build_dir = build(sim, verilog(backend), "nvmecore")
    run(sim, build_dir, "nvmecore", "cocotb_io", scenario, run_dir(request.node.nodeid),
        env={CONFIG_ENV: config_to_env(CONFIGS[backend])})
