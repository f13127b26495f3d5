"""Full stack under Icarus and Verilator: cocotbext-pcie's root complex and UltraScale+
hard-IP model around the generated FPGA top (nvmecore_usp) — the shipped build, no test
ports — at 256 and 512 bits with the RAM disk, and at 256 bits with the AXI4 backend
behind cocotbext-axi's AxiRam. Icarus (3-5x slower) runs the 256-bit RAM-disk build
without the random data-integrity volume; 512 bits (STYLE.md) and the AXI4 backend
behind the PCIe stack run under Verilator only (the backend's own behaviour runs under
Icarus at core level, test_io_rtl, and alone, test_backends_rtl)."""

import pytest

from nvmecore import CoreConfig
from nvmecore.cli import USP_TOP_NAME
from nvmetb.sim import CONFIG_ENV, SIMULATORS, build, config_to_env, run, run_dir, verilog_for

#: The default build (16 queue pairs, 17 vectors) at each hard-IP width, and with the
#: AXI4 backend; the cocotb tests each runs (None: all of cocotb_pcie).
BUILDS = {
    "256": (CoreConfig(data_width=256), None),
    "512": (CoreConfig(data_width=512), None),
    "256-axi": (CoreConfig(data_width=256, backend="axi"), "bring_up,data_integrity"),
}


@pytest.fixture(scope="module")
def verilog():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = verilog_for(BUILDS[name][0], USP_TOP_NAME)
        return cache[name]
    return get


#: The builds Icarus runs (see the module text).
ICARUS_BUILDS = ("256",)


def _params():
    """Every build under Verilator; under Icarus those in ICARUS_BUILDS."""
    return [pytest.param(sim, name, marks=getattr(pytest.mark, sim), id=f"{sim}-{name}")
            for sim in SIMULATORS for name in BUILDS
            if sim != "icarus" or name in ICARUS_BUILDS]


@pytest.mark.parametrize(("sim", "build_name"), _params())
def test_pcie(sim, build_name, verilog, request):
    config, tests = BUILDS[build_name]
    build_dir = build(sim, verilog(build_name), USP_TOP_NAME)
    run(sim, build_dir, USP_TOP_NAME, "cocotb_pcie", tests, run_dir(request.node.nodeid),
        env={CONFIG_ENV: config_to_env(config)})
