"""The generated Verilog passes `verilator --lint-only -Wall` with only the waivers in
sim/lint.vlt (each one a shape of Amaranth's backend, justified there), for the default
build and at the other datapath widths."""

import subprocess
import sys

import pytest

from nvmecore import CoreConfig
from nvmecore.cli import generate_verilog
from nvmetb.sim import REPO_ROOT

pytestmark = pytest.mark.verilator

BUILDS = {
    "default": CoreConfig(),
    "w64-q4": CoreConfig(io_queues=4, data_width=64),
    "w128-q64": CoreConfig(io_queues=64, data_width=128),
    "w512-q32": CoreConfig(io_queues=32, data_width=512),
}


@pytest.mark.parametrize("build", list(BUILDS))
def test_verilator_lint(build, tmp_path):
    source = tmp_path / "nvmecore.v"
    source.write_text(generate_verilog(BUILDS[build]))
    result = subprocess.run(
        [sys.executable, "-m", "nvmetb.verilator", "--lint-only", "-Wall",
         str(REPO_ROOT / "sim" / "lint.vlt"), str(source), "--top-module", "nvmecore"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "%Warning" not in result.stderr
