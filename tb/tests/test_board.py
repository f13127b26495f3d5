"""The board files in constraints/: the wrapper is the generator's output, and it lints
(``verilator --lint-only -Wall``) around the generated FPGA top with the hard IP as a black
box whose ports come from the PG213 port-list fixture — what CI can check without Vivado.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nvmecore import CoreConfig
from nvmecore.board import BOARDS, IP_MODULE, board_wrapper
from nvmecore.cli import USP_TOP_NAME
from nvmetb.sim import REPO_ROOT, verilog_for

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "pcie4_uscale_plus_ports.json")
                     .read_text())


def ip_stub(width, lanes, name=IP_MODULE):
    """A black box with the hard IP's ports (PG213, from the fixture) at ``width`` bits
    and ``lanes`` lanes; outputs driven with 0."""
    ports, body = [], []
    for port, entry in FIXTURE["ports"].items():
        w = entry["width"]
        w = lanes if w == "lanes" else w[(256, 512).index(width)] if isinstance(w, list) else w
        rng = f"[{w - 1}:0] " if w > 1 else ""
        ports.append(f"    {'input ' if entry['dir'] == 'in' else 'output'} wire {rng}{port}")
        if entry["dir"] == "out":
            body.append(f"    assign {port} = {w}'d0;")
    return (f"module {name} (\n" + ",\n".join(ports) + "\n);\n" + "\n".join(body)
            + "\nendmodule\n")


# The Xilinx primitives the wrapper uses (UNISIM), as black boxes with their ports.
PRIMITIVES = """
module IBUFDS_GTE4 #(parameter [1:0] REFCLK_HROW_CK_SEL = 2'b00) (
    input wire I, input wire IB, input wire CEB, output wire O, output wire ODIV2);
    assign O = I & ~IB & ~CEB;
    assign ODIV2 = O;
endmodule
module IBUF (input wire I, output wire O);
    assign O = I;
endmodule
"""

# The hard IP's instance leaves the outputs nothing uses open, as Vivado designs do; the
# primitives' stubs ignore their parameters.
WAIVERS = """`verilator_config
lint_off -rule PINMISSING -file "*nvmecore_*.v"
lint_off -rule UNUSEDPARAM -file "*ip_stub.v"
"""


@pytest.mark.quick
@pytest.mark.parametrize("board", list(BOARDS))
def test_wrapper_is_generated(board):
    path = REPO_ROOT / "constraints" / board / f"nvmecore_{board}.v"
    assert path.read_text() == board_wrapper(BOARDS[board]), \
        f"{path} is out of date: run python -m nvmecore board {board}"


@pytest.mark.verilator
@pytest.mark.parametrize("board", list(BOARDS))
def test_wrapper_lints(board, tmp_path):
    spec = BOARDS[board]
    top = tmp_path / "nvmecore_usp.v"
    top.write_text(verilog_for(CoreConfig(data_width=spec.width), USP_TOP_NAME))
    stub = tmp_path / "ip_stub.v"
    stub.write_text(ip_stub(spec.width, spec.lanes) + PRIMITIVES)
    waivers = tmp_path / "board.vlt"
    waivers.write_text(WAIVERS)
    wrapper = REPO_ROOT / "constraints" / board / f"nvmecore_{board}.v"
    result = subprocess.run(
        [sys.executable, "-m", "nvmetb.verilator", "--lint-only", "-Wall",
         str(REPO_ROOT / "sim" / "lint.vlt"), str(waivers), str(stub), str(top),
         str(wrapper), "--top-module", f"nvmecore_{board}"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "%Warning" not in result.stderr, result.stderr[-4000:]


@pytest.mark.quick
def test_stub_has_every_port_the_wrapper_connects():
    """A port the wrapper connects that the fixture lacks would only show in Vivado."""
    spec = BOARDS["au200"]
    text = board_wrapper(spec)
    instance = text.split(f"{IP_MODULE} pcie (")[1].split(");")[0]
    connected = {part.split("(")[0].strip().lstrip(".") for part in instance.split(",")
                 if "(" in part}
    assert connected <= set(FIXTURE["ports"]), connected - set(FIXTURE["ports"])


def test_fusesoc_core_sets_up(tmp_path):
    """nvmecore.core: FuseSoC finds the core, runs its generator (the Verilog from
    nvmecore's CLI) and sets up the Alveo U200 Vivado project, without running Vivado."""
    fusesoc = Path(sys.executable).with_name("fusesoc")
    result = subprocess.run(
        [str(fusesoc), "--cores-root", str(REPO_ROOT), "run", "--setup", "--target", "au200",
         "nvmecore:nvme:nvmecore"], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PATH": f"{fusesoc.parent}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr[-4000:]
    project = next((tmp_path / "build").glob("*/au200-vivado"))
    generated = list(project.glob("generator_cache/*/nvmecore_usp.v"))
    assert generated and "module nvmecore_usp(" in generated[0].read_text()
    tcl = (project / next(project.glob("*.tcl")).name).read_text() + "".join(
        p.read_text() for p in project.glob("*.tcl"))
    for name in ("nvmecore_au200.v", "nvmecore_au200.xdc", "pcie4_uscale_plus.tcl",
                 "xcu200-fsgd2104-2-e"):
        assert name in tcl, f"{name} not in the Vivado project"
