"""The NVM I/O path on the generated Verilog at core level, under Icarus and Verilator:
every I/O scenario with the RAM disk (the default build, shared with test_core_rtl) and
with the AXI4 backend behind cocotbext-axi's AxiRam, model in lock step, namespace
compared.

Icarus (3-5x slower) runs what each build adds once: every scenario but the random
data-integrity volume on the RAM disk (test_shipped_rtl runs random data integrity at
core level under Icarus), and behind the AXI4 backend what the backend itself does
differently — a round trip, Write Zeroes / Deallocate and media errors (its command
paths are the RAM disk's; test_backends_rtl runs the backend block alone under Icarus).
Verilator runs every scenario on both builds."""

import pytest

from nvmecore import CoreConfig
from nvmetb.scenarios.io import IO_SCENARIOS, MEDIA_SCENARIOS
from nvmetb.sim import CONFIG_ENV, SIMULATORS, build, config_to_env, run, run_dir, verilog_for
from test_core_rtl import CONFIG as RAMDISK

CONFIGS = {"ramdisk": RAMDISK, "axi": CoreConfig(debug=True, backend="axi")}
#: The RAM disk never fails; media errors are injected on the AXI bus only.
SCENARIOS = {"ramdisk": list(IO_SCENARIOS), "axi": list(IO_SCENARIOS) + list(MEDIA_SCENARIOS)}


@pytest.fixture(scope="module")
def verilog():
    cache = {}

    def get(backend):
        if backend not in cache:
            cache[backend] = verilog_for(CONFIGS[backend])
        return cache[backend]
    return get


#: What Icarus runs of each build (see the module text); None: every scenario but those
#: listed in ICARUS_SKIP.
ICARUS_ONLY = {"ramdisk": None, "axi": ("io_round_trip", "zeroes_and_dsm", "media_errors")}
ICARUS_SKIP = ("data_integrity",)


def _on_icarus(backend, scenario):
    only = ICARUS_ONLY[backend]
    return scenario in only if only is not None else scenario not in ICARUS_SKIP


def _params():
    """(simulator, backend, scenario), marked ``icarus`` / ``verilator`` as sim_params()."""
    return [pytest.param(sim, backend, scenario, marks=getattr(pytest.mark, sim),
                         id=f"{sim}-{backend}-{scenario}")
            for sim in SIMULATORS for backend in CONFIGS for scenario in SCENARIOS[backend]
            if sim != "icarus" or _on_icarus(backend, scenario)]


@pytest.mark.parametrize(("sim", "backend", "scenario"), _params())
def test_io(sim, backend, scenario, verilog, request):
    build_dir = build(sim, verilog(backend), "nvmecore")
    run(sim, build_dir, "nvmecore", "cocotb_io", scenario, run_dir(request.node.nodeid),
        env={CONFIG_ENV: config_to_env(CONFIGS[backend])})
