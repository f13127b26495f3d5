"""Full stack under Icarus and Verilator: cocotbext-pcie's root complex and UltraScale+
hard-IP model around the generated FPGA top (nvmecore_usp) — the shipped build, no test
ports — at 256 and 512 bits with the RAM disk, and at 256 bits with the AXI4 backend
behind cocotbext-axi's AxiRam (a pattern through every queue on both simulators, at 512
bits under Verilator only; the random data-integrity volume under Verilator only, Icarus
being 3-5x slower)."""

import pytest

from nvmecore import CoreConfig
from nvmecore.cli import USP_TOP_NAME, generate_usp_verilog
from nvmetb.sim import CONFIG_ENV, SIMULATORS, build, config_to_env, run, run_dir

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
            cache[name] = generate_usp_verilog(BUILDS[name][0])
        return cache[name]
    return get


def _params():
    """Every build under Verilator; under Icarus the 256-bit ones (STYLE.md: 512-bit runs
    go to Verilator)."""
    return [pytest.param(sim, name, marks=getattr(pytest.mark, sim), id=f"{sim}-{name}")
            for sim in SIMULATORS for name in BUILDS
            if sim != "icarus" or not name.startswith("512")]


@pytest.mark.parametrize(("sim", "build_name"), _params())
def test_pcie(sim, build_name, verilog, request):
    config, tests = BUILDS[build_name]
    if sim == "icarus" and tests is not None:
        tests = ",".join(t for t in tests.split(",") if t != "data_integrity")
    build_dir = build(sim, verilog(build_name), USP_TOP_NAME)
    run(sim, build_dir, USP_TOP_NAME, "cocotb_pcie", tests, run_dir(request.node.nodeid),
        env={CONFIG_ENV: config_to_env(config)})
