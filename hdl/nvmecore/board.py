"""Board wrappers: the FPGA top (``nvmecore_usp``) with a PCIe hard-IP instance, clock
buffers and reset, for a board in ``constraints/``.

:func:`board_wrapper` writes the Verilog of ``nvmecore_<board>``: the board's PCIe pins
(lanes, reference clock, PERST#) and LEDs; an ``IBUFDS_GTE4`` for the reference clock
(``O`` to the IP's ``sys_clk_gt``, ``ODIV2`` to ``sys_clk``, as PG213's example design
does); an ``IBUF`` for PERST#; the hard IP (module ``pcie4_uscale_plus_0``, made by
``constraints/<board>/pcie4_uscale_plus.tcl``) connected port for port to
``nvmecore_usp``. The list of ports comes from :func:`nvmecore.top.usp_ports`, so the
wrapper follows the top; ``constraints/<board>/nvmecore_<board>.v`` is this function's
output, and a test checks that the committed file is up to date
(``python -m nvmecore board au200`` rewrites it).

LEDs: 0 link up, 1 a heartbeat from ``user_clk`` (about 1 Hz: the user clock runs), 2 bus
master enabled by the host.
"""

from dataclasses import dataclass

from .top import usp_ports

__all__ = ["Board", "BOARDS", "board_wrapper"]


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    lanes: int
    width: int                  # AXI4-Stream width of the hard IP
    speed: str                  # PL_LINK_CAP_MAX_LINK_SPEED of the IP
    leds: int


#: Boards with files in constraints/.
BOARDS = {
    # Alveo U200: xcu200 (VU9P), PCIe Gen3 x16 on the edge connector; public pinout.
    "au200": Board("au200", "xcu200-fsgd2104-2-e", 16, 512, "8.0_GT/s", 3),
}

IP_MODULE = "pcie4_uscale_plus_0"
HEARTBEAT_BIT = 27              # 2^28 cycles at 250 MHz: about 1 s


def _range(width):
    return f"[{width - 1}:0] " if width > 1 else ""


def board_wrapper(board: Board, top_name="nvmecore_usp") -> str:
    """The Verilog of ``nvmecore_<board.name>`` (see the module text)."""
    ports = usp_ports(board.width)
    lanes = board.lanes
    lines = [
        f"// nvmecore on {board.name.upper()} ({board.part}): the PCIe hard IP "
        f"({IP_MODULE}, Gen3 x{lanes},",
        f"// {board.width}-bit AXI4-Stream at 250 MHz) around {top_name}.",
        "// Written by `python -m nvmecore board "
        f"{board.name}` (hdl/nvmecore/board.py): do not edit.",
        "",
        f"module nvmecore_{board.name} #(",
        "    // Personalises the serial number, NQN, NGUID and EUI-64: give each board its",
        "    // own (straps, or the device DNA read at start-up), or two boards clash.",
        "    parameter [63:0] DEVICE_ID = 64'h0000_0000_0000_0001",
        ") (",
        f"    input  wire [{lanes - 1}:0] pcie_rx_p,",
        f"    input  wire [{lanes - 1}:0] pcie_rx_n,",
        f"    output wire [{lanes - 1}:0] pcie_tx_p,",
        f"    output wire [{lanes - 1}:0] pcie_tx_n,",
        "    input  wire        pcie_refclk_p,",
        "    input  wire        pcie_refclk_n,",
        "    input  wire        pcie_reset_n,     // PERST#, active low",
        f"    output wire [{board.leds - 1}:0] led",
        ");",
        "",
        "    // Reference clock: O to the transceivers, ODIV2 (100 MHz) to the IP's sys_clk.",
        "    wire sys_clk, sys_clk_gt, sys_reset_n;",
        "    IBUFDS_GTE4 #(",
        "        .REFCLK_HROW_CK_SEL(2'b00)",
        "    ) refclk_ibuf (",
        "        .I(pcie_refclk_p), .IB(pcie_refclk_n), .CEB(1'b0),",
        "        .O(sys_clk_gt), .ODIV2(sys_clk)",
        "    );",
        "    IBUF perst_ibuf (.I(pcie_reset_n), .O(sys_reset_n));",
        "",
        f"    // Every port of {top_name} that meets the hard IP, by its PG213 name. The IP's",
        "    // s_axis_rq_tready / s_axis_cc_tready are 4 equal bits: the top takes bit 0.",
    ]
    ip_width = {name: w for name, (_, w) in ports.items()}
    ip_width["s_axis_rq_tready"] = ip_width["s_axis_cc_tready"] = 4
    for name in ports:
        lines.append(f"    wire {_range(ip_width[name])}{name};")
    lines += [
        "    // the top's own outputs, for an ILA or counters",
        "    wire err_unsupported, err_refused, err_unexpected;",
        "    // hard-IP outputs nothing here uses",
        "    wire phy_rdy_out;",
        "",
        f"    {IP_MODULE} pcie (",
        "        .pci_exp_txp(pcie_tx_p), .pci_exp_txn(pcie_tx_n),",
        "        .pci_exp_rxp(pcie_rx_p), .pci_exp_rxn(pcie_rx_n),",
        "        .sys_clk(sys_clk), .sys_clk_gt(sys_clk_gt), .sys_reset(sys_reset_n),",
        "        .phy_rdy_out(phy_rdy_out),",
    ]
    lines += [f"        .{name}({name})," for name in ports]
    lines[-1] = lines[-1].rstrip(",")
    lines += ["    );", "", f"    {top_name} core ("]
    for name in ports:
        wire = f"{name}[0]" if name in ("s_axis_rq_tready", "s_axis_cc_tready") else name
        lines.append(f"        .{name}({wire}),")
    lines += [
        "        .device_id(DEVICE_ID),",
        "        .temperature(16'd313),          // kelvin; no sensor wired",
        "        .err_unsupported(err_unsupported),",
        "        .err_refused(err_refused),",
        "        .err_unexpected(err_unexpected)",
        "    );",
        "",
        "    // LEDs: link up, heartbeat, bus master enable.",
        f"    reg [{HEARTBEAT_BIT}:0] heartbeat = 0;",
        "    always @(posedge user_clk) heartbeat <= heartbeat + 1'b1;",
        f"    reg [{board.leds - 1}:0] led_q = 0;",
        "    always @(posedge user_clk)",
        f"        led_q <= {{cfg_function_status[2], heartbeat[{HEARTBEAT_BIT}], user_lnk_up}};",
        "    assign led = led_q;",
        "",
        "endmodule",
        "",
    ]
    return "\n".join(lines)
