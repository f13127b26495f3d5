"""The generated Verilog passes `verilator --lint-only -Wall` with only the waivers in
sim/lint.vlt (each one a shape of Amaranth's backend, justified there), for the default
build, at the other datapath widths, and the FPGA top (UltraScale+ adapter) at 256 and
512 bits."""

import subprocess
import sys
from functools import partial

import pytest
from amaranth.back import verilog

from nvmecore import CoreConfig
from nvmecore.backend.axi import AxiBackend
from nvmecore.backend.ramdisk import RamDisk
from nvmecore.cli import USP_TOP_NAME
from nvmetb.sim import REPO_ROOT, verilog_for

pytestmark = pytest.mark.verilator

# name: (generator, config, top module); the core and FPGA-top builds come from the
# shared Verilog cache (nvmetb.sim.verilog_for), as the simulation benches' do.
_core = verilog_for
_usp = partial(verilog_for, top=USP_TOP_NAME)
BUILDS = {
    "default": (_core, CoreConfig(), "nvmecore"),
    "w64-q4": (_core, CoreConfig(io_queues=4, data_width=64), "nvmecore"),
    "w128-q64": (_core, CoreConfig(io_queues=64, data_width=128), "nvmecore"),
    "w512-q32": (_core, CoreConfig(io_queues=32, data_width=512), "nvmecore"),
    # The most BAR0 has doorbells and table entries for (test_scale_rtl.py runs it).
    "q511-v256": (_core, CoreConfig(io_queues=511, msix_vectors=256,
                                    namespace_bytes=64 << 10), "nvmecore"),
    "usp-w256": (_usp, CoreConfig(), USP_TOP_NAME),
    "usp-w512": (_usp, CoreConfig(data_width=512), USP_TOP_NAME),
    # The backends on their own (the core builds them in with CoreConfig.backend).
    "ramdisk": (lambda config: _block(RamDisk, config, "ramdisk"),
                CoreConfig(namespace_bytes=16 << 10), "ramdisk"),
    "axi-w64": (lambda config: _block(AxiBackend, config, "axi_backend"),
                CoreConfig(data_width=64, axi_outstanding=1), "axi_backend"),
    "axi-w512": (lambda config: _block(AxiBackend, config, "axi_backend"),
                 CoreConfig(data_width=512, axi_addr_width=48, axi_id_width=16,
                            axi_outstanding=64), "axi_backend"),
}


def _block(block, config, name):
    return verilog.convert(block(config), name=name, emit_src=False)


@pytest.mark.parametrize("build", list(BUILDS))
def test_verilator_lint(build, tmp_path):
    generate, config, top = BUILDS[build]
    source = tmp_path / f"{top}.v"
    source.write_text(generate(config))
    result = subprocess.run(
        [sys.executable, "-m", "nvmetb.verilator", "--lint-only", "-Wall",
         str(REPO_ROOT / "sim" / "lint.vlt"), str(source), "--top-module", top],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "%Warning" not in result.stderr
