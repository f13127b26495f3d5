"""The synthesis report's own logic (nvmetb.synth): cell classes, LUT depth on a small
hand-made netlist, and the CI guard against the committed baseline. The synthesis itself
runs in `make synth-check` (CI), not here."""

import copy
import json

import pytest

from nvmetb.synth import BASELINE, COUNTS, DEPTH_TARGET, check, lut_depth, resources

pytestmark = pytest.mark.quick


def cell(kind, **conns):
    dirs = {p: ("output" if p in ("Q", "O", "DOA", "CO") else "input") for p in conns}
    return {"type": kind, "port_directions": dirs,
            "connections": {p: v if isinstance(v, list) else [v] for p, v in conns.items()}}


def netlist():
    """core.a → LUT → LUT → CARRY8 → LUT → core.b (3 LUT levels); adapter.c → RAM64M
    read → LUT → adapter.d (2 levels); an input port straight to adapter.d's register."""
    cells = {
        "ffa": cell("FDRE", C=1, D=2, Q=10),
        "l1": cell("LUT6", I0=10, O=11),
        "l2": cell("LUT4", I0=11, I1=10, O=12),
        "cy": cell("CARRY8", S=12, CO=13),
        "l3": cell("LUT2", I0=13, O=14),
        "ffb": cell("FDRE", C=1, D=14, Q=15),
        "ffc": cell("FDRE", C=1, D=3, Q=20),
        "ram": cell("RAM64M", ADDRA=20, DIA=3, DOA=21),
        "l4": cell("LUT3", I0=21, I1=4, O=22),
        "ffd": cell("FDSE", C=1, D=22, Q=23),
    }
    names = {"core.a": [10], "core.b": [15], "adapter.c": [20], "adapter.d": [23]}
    return {"modules": {"top": {
        "attributes": {"top": 1},
        "ports": {"clk": {"direction": "input", "bits": [1]},
                  "x": {"direction": "input", "bits": [2, 3, 4]}},
        "cells": cells,
        "netnames": {k: {"hide_name": 0, "bits": v} for k, v in names.items()},
    }}}


def test_resources_and_depth():
    counts, types = resources(netlist())
    assert counts["LUT"] == 4 and counts["FF"] == 4 and counts["LUTRAM"] == 4
    assert counts["CARRY"] == 1 and types["RAM64M"] == 1
    depth = lut_depth(netlist())
    assert depth["core"] == {"levels": 3, "from": "core.a", "to": "core.b"}
    assert depth["adapter"] == {"levels": 2, "from": "adapter.c", "to": "adapter.d"}
    assert depth["all"]["levels"] == 3


def test_guard():
    baseline = json.loads(BASELINE.read_text())
    assert not check(baseline, baseline), "a run equal to the baseline passes"
    grown = copy.deepcopy(baseline)
    width = next(iter(grown["widths"]))
    for name in COUNTS:
        run = copy.deepcopy(baseline)
        was = run["widths"][width]["counts"][name]
        run["widths"][width]["counts"][name] = was * 1.05 + 2
        assert any(name in p for p in check(run, baseline)), f"{name} growth not caught"
    deeper = copy.deepcopy(baseline)
    for region in ("adapter", "core"):
        d = deeper["widths"][width]["depth"][region]
        d["levels"] = max(d["levels"], DEPTH_TARGET) + 1
        assert any(region in p for p in check(deeper, baseline)), f"{region} depth"
    shallower = copy.deepcopy(baseline)
    shallower["widths"][width]["depth"]["adapter"]["levels"] = DEPTH_TARGET
    assert not check(shallower, baseline), "within the target always passes"


def test_distributed_ram_ports_apart():
    """A read-modify-write memory: port A's read feeds, through a LUT, the address of
    port H (a RAM64M8's write and read port). DOA depends on ADDRA alone, so this is no
    loop, and the path is adapter.e -> RAM (DOA) -> LUT -> RAM (ADDRH) -> adapter.f's
    register via DOH: 3 LUT levels. (Taking every output to depend on every address made
    a false loop that kept the walk from ending: make synth ran out of memory.)"""
    n = netlist()
    top = n["modules"]["top"]
    ram = cell("RAM64M8", ADDRA=30, DOA=31, ADDRH=32, DOH=33, DIA=3)
    ram["port_directions"]["DOH"] = "output"
    top["cells"].update({
        "ffe": cell("FDRE", C=1, D=3, Q=30),
        "ram8": ram,
        "l5": cell("LUT2", I0=31, O=32),
        "fff": cell("FDRE", C=1, D=33, Q=34),
    })
    top["netnames"].update({"adapter.e": {"hide_name": 0, "bits": [30]},
                            "adapter.f": {"hide_name": 0, "bits": [34]}})
    depth = lut_depth(n)
    assert depth["adapter"] == {"levels": 3, "from": "adapter.e", "to": "adapter.f"}


def test_combinational_loop_ends():
    """A real combinational loop (two LUTs feeding each other) is cut, not walked for
    ever."""
    n = netlist()
    n["modules"]["top"]["cells"].update({
        "la": cell("LUT2", I0=10, I1=41, O=40),
        "lb": cell("LUT2", I0=40, O=41),
        "ffg": cell("FDRE", C=1, D=41, Q=42),
    })
    assert lut_depth(n)["core"]["levels"] >= 2
