"""The FPGA top's hard-IP ports against a checked-in port list of the UltraScale+ PCIe
block (PG213), so the top connects to a ``pcie4_uscale_plus`` / ``pcie4c_uscale_plus``
instance without Vivado; and the CLI that writes it."""

import json
from pathlib import Path

import pytest
from amaranth import Shape
from amaranth.lib import wiring

from nvmecore import CoreConfig
from nvmecore.cli import main
from nvmecore.top import UspTop, usp_ports

pytestmark = pytest.mark.quick

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "pcie4_uscale_plus_ports.json")
                     .read_text())
#: Ports of the top that are not the hard IP's.
USER_PORTS = {"device_id", "temperature", "err_unsupported", "err_refused", "err_unexpected"}
#: The hard IP's 4-bit s_axis_*_tready outputs carry one value 4 times; the top takes 1 bit.
ONE_BIT_OF = {"s_axis_rq_tready", "s_axis_cc_tready"}


def _width(entry, width):
    w = entry["width"]
    return w[(256, 512).index(width)] if isinstance(w, list) else w


@pytest.mark.parametrize("width", [256, 512])
def test_ports_match_the_hard_ip(width):
    top = UspTop(CoreConfig(data_width=width))
    ip = FIXTURE["ports"]
    seen = set()
    for name, member in top.signature.members.items():
        if name in USER_PORTS:
            continue
        assert name in ip, f"{name}: not a port of the hard IP"
        entry = ip[name]
        # The top's inputs are the hard IP's outputs and the other way round.
        want_dir = "out" if member.flow == wiring.In else "in"
        assert entry["dir"] == want_dir, f"{name}: hard IP direction is {entry['dir']}"
        bits = Shape.cast(member.shape).width
        assert bits == (1 if name in ONE_BIT_OF else _width(entry, width)), \
            f"{name}: {bits} bits, the hard IP has {_width(entry, width)}"
        seen.add(name)
    # Every input of the hard IP is driven by the top (or comes from the board).
    undriven = {name for name, entry in ip.items() if entry["dir"] == "in"} - seen \
        - set(FIXTURE["board_inputs"])
    assert not undriven, f"hard-IP inputs the top leaves floating: {sorted(undriven)}"
    assert set(usp_ports(width)) == seen
    for unused in (top, top.core, top.adapter):      # only the ports were wanted
        unused._MustUse__silence = True


def test_top_refuses_other_widths():
    with pytest.raises(ValueError, match="256, 512"):
        UspTop(CoreConfig(data_width=128))
    with pytest.raises(ValueError, match="straddl"):
        UspTop(CoreConfig(data_width=256), rq_straddle=True)


@pytest.mark.slow
def test_cli_writes_the_usp_top(tmp_path):
    out = tmp_path / "top.v"
    assert main(["generate", "--top", "usp", "--io-queues", "2", "-o", str(out)]) == 0
    text = out.read_text()
    assert "module nvmecore_usp(" in text
    for port in ("s_axis_rq_tdata", "m_axis_rc_tuser", "pcie_cq_np_req", "cfg_flr_done"):
        assert port in text


def test_cli_refuses_a_width_the_top_cannot_take(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "--top", "usp", "--data-width", "64", "-o", "-"])
    assert exit_.value.code == 2
    assert "256" in capsys.readouterr().err
