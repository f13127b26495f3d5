"""The cocotb edge loop (nvmetb.cocotb_edges) on a counter, under Icarus and Verilator."""

import pytest

from nvmetb.sim import build, run, run_dir, sim_params

VERILOG = """\
module edges_dut(input clk, input [7:0] d, output reg [7:0] q, output reg [15:0] count,
                 output [3:0] undriven);
  initial begin
    q = 0;
    count = 0;
  end
  always @(posedge clk) begin
    q <= d;
    count <= count + 1;
  end
endmodule
"""


@pytest.mark.parametrize("sim", sim_params())
def test_edge_loop(sim, request):
    build_dir = build(sim, VERILOG, "edges_dut")
    run(sim, build_dir, "edges_dut", "cocotb_edges", None, run_dir(request.node.nodeid))
