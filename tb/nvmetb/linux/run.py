"""Run a Linux guest against the simulated RTL and judge what it saw.

:func:`cosim` fetches the guest (:mod:`.guest`), builds the core's Verilog for the
simulator, starts the cocotb test ``cocotb_linux`` (which starts QEMU and serves its
proxy device) and returns a :class:`Report`: one row per guest step (``@@STEP`` markers
on the console) plus the host-side checks (Identify Controller compared with the
CoreConfig, the driver's dmesg lines, shutdown seen on the register bus, DMA rules).

    python -m nvmetb.linux [--steps bringup,list,...] [--sim verilator|icarus]
                           [--accel tcg|kvm] [--top core|usp] [--timeout 1800]
"""

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.lib import data

from nvmecore import CoreConfig
from nvmecore.admin_layouts import ErrorLogEntry
from nvmecore.nvme.identify import identify_controller, identify_namespace

__all__ = ["CONFIG", "FULL_STEPS", "SHORT_STEPS", "Report", "cosim", "qemu_command",
           "compare_id_ctrl"]

#: The build Linux talks to: the shipped core (no test ports), a 4 MiB RAM disk (big
#: enough for the kernel's partition scan and every data step).
CONFIG = CoreConfig(namespace_bytes=4 << 20)
#: Behind the UltraScale+ adapter (``--top usp``): the FPGA top, with the test ports the
#: adapter bench's models need.
USP_CONFIG = CoreConfig(namespace_bytes=4 << 20, debug=True)

FULL_STEPS = ("bringup", "list", "idctrl", "idns", "smartlog", "errorlog", "features",
              "dd4k", "dd128k", "ddlarge", "parallel", "smartcount", "flush", "writezeroes",
              "discard", "format", "reset", "resetio", "dmesg")
SHORT_STEPS = ("bringup", "idctrl", "dd4k", "reset")

#: Kernel command line: INTx only (the proxy carries no MSI), the handler polled every
#: tick under TCG (where the proxy's irqfd goes nowhere), generous command time-outs.
KERNEL_ARGS = ("console=ttyS0", "pci=nomsi", "nvme_core.admin_timeout=120",
               "nvme_core.io_timeout=120", "panic=-1")
TCG_ARGS = ("irqpoll", "nolapic_timer", "nohz=off")
GUEST_RAM = "512M"
#: What the bench drives on the core's ``device_id`` port (it personalises SN, NQN, NGUID).
DEVICE_ID = 0x2A

#: Admin commands the core refuses with Invalid Field, as docs/admin-commands.md says:
#: Identify CNS 06h (the driver asks for the NVM command set's Identify Controller at
#: every (re)initialisation whatever the version), Identify CNS 05h (nvme-cli's id-ns and
#: format ask for the NVM command set's Identify Namespace) and Get Features 06h (no
#: volatile write cache; the features step).
EXPECTED_ADMIN_ERRORS = (r"IDENTIFY .*cdw10=0x00000006 ", r"IDENTIFY .*cdw10=0x00000005 ",
                         r"GET_FEATURES .*cdw10=0x00000006 ")


def qemu_command(guest, steps, accel="tcg", console=None):
    """The guest's QEMU; ``@FD@`` stands for the proxy socket's descriptor number."""
    machine = "q35,memory-backend=mem" + (",kernel-irqchip=on" if accel == "kvm" else "")
    append = [*KERNEL_ARGS, *(TCG_ARGS if accel == "tcg" else ()),
              f"nvmetest={','.join(steps)}"]
    return ["qemu-system-x86_64", "-accel", accel, "-machine", machine,
            "-object", f"memory-backend-memfd,id=mem,share=on,size={GUEST_RAM}",
            "-m", GUEST_RAM, "-cpu", "qemu64" if accel == "tcg" else "host", "-smp", "1",
            "-display", "none", "-no-reboot", "-nodefaults",
            "-serial", f"file:{console}" if console else "stdio",
            "-kernel", str(guest.kernel), "-initrd", str(guest.initrd),
            "-append", " ".join(append),
            "-device", "x-pci-proxy-dev,id=nvmecore,fd=@FD@"]


@dataclass
class Row:
    name: str
    ok: bool
    seconds: float | None = None
    detail: str = ""


@dataclass
class Report:
    run_dir: Path
    rows: list = field(default_factory=list)
    driver_lines: list = field(default_factory=list)
    wall: dict = field(default_factory=dict)

    @property
    def ok(self):
        return bool(self.rows) and all(r.ok for r in self.rows)

    def table(self):
        width = max(len(r.name) for r in self.rows) if self.rows else 4
        lines = [f"{'step':<{width}}  result  seconds  detail"]
        for r in self.rows:
            secs = f"{r.seconds:7.1f}" if r.seconds is not None else "      -"
            lines.append(f"{r.name:<{width}}  {'PASS' if r.ok else 'FAIL'}    {secs}  "
                         f"{r.detail}")
        lines.append(f"{'all':<{width}}  {'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)


_STAMP = re.compile(r"^\[\s*(\d+\.\d+)\]")


def _steps(console: str):
    """{step: (status, seconds, output lines)} from the ``@@STEP`` markers, which carry the
    guest's uptime (under TCG the guest clock follows the host's)."""
    out, current, lines, begun = {}, None, [], 0.0
    for line in console.splitlines():
        m = re.match(r"@@STEP (\w+) (BEGIN|END) ([\d.]+)(?: (\w+))?", line.strip())
        if m and m.group(2) == "BEGIN":
            current, lines, begun = m.group(1), [], float(m.group(3))
        elif m and current == m.group(1):
            out[current] = (m.group(4), float(m.group(3)) - begun, lines)
            current = None
        elif current is not None:
            lines.append(line)
    return out


def _json_block(console, name):
    m = re.search(rf"@@JSON-BEGIN {name}\n(.*?)@@JSON-END {name}", console, re.S)
    if not m:
        return None
    text = "\n".join(ln for ln in m.group(1).splitlines() if not _STAMP.match(ln))
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _hex_block(console, name):
    m = re.search(rf"@@HEX-BEGIN {name}\n(.*?)@@HEX-END", console, re.S)
    if not m:
        return None
    lines = [ln for ln in m.group(1).splitlines() if not _STAMP.match(ln.strip())]
    try:
        return bytes(int(tok, 16) for ln in lines for tok in ln.split())
    except ValueError:
        return None


def compare_raw(name, got: bytes | None, want: bytes) -> list[str]:
    """Differences between the bytes the guest read and the core's Identify ROM."""
    if got is None:
        return [f"{name}: no binary dump on the console"]
    if len(got) != len(want):
        return [f"{name}: {len(got)} bytes, expected {len(want)}"]
    diff = [i for i in range(len(want)) if got[i] != want[i]]
    if diff:
        return [f"{name}: {len(diff)} bytes differ from the Identify ROM, first at "
                f"{diff[0]:#x} ({got[diff[0]]:#04x}, expected {want[diff[0]]:#04x})"]
    return []


def compare_error_log(raw: bytes | None, admin_errors) -> list[str]:
    """The Error Information entries as the guest read them (raw log 01h) against the
    admin completions with an error that the trace saw: each valid entry (non-zero error
    count) names a refused admin command (SQID 0, its CID) with that completion's status
    (phase tag 0), newest first."""
    if raw is None:
        return ["no binary dump on the console"]
    refused = {}
    for _, cqe in admin_errors:
        m = re.search(r"cid=(0x[0-9a-f]+) sct=(\d+) sc=(0x[0-9a-f]+) dnr=(\d)", cqe)
        if m:
            refused[int(m.group(1), 0)] = tuple(int(v, 0) for v in m.groups()[1:])
    layout = data.Layout.cast(ErrorLogEntry)
    size = layout.size // 8
    entries = [layout.from_bits(int.from_bytes(raw[i:i + size], "little"))
               for i in range(0, len(raw) - size + 1, size)]
    entries = [e for e in entries if int(e.error_count)]
    if not entries and admin_errors:
        return [f"no valid entry, {len(admin_errors)} refused admin commands"]
    problems = []
    for e in entries:
        n, cid, st = int(e.error_count), int(e.cid), e.status
        got = (st.sct.value, int(st.sc), int(st.dnr))
        if int(e.sqid) != 0 or cid not in refused:
            problems.append(f"entry {n}: SQID {int(e.sqid)} CID {cid:#x} is no refused "
                            "admin command")
        elif got != refused[cid] or int(st.p):
            problems.append(f"entry {n}: SCT/SC/DNR/P {got + (int(st.p),)}, the CQE had "
                            f"{refused[cid]} (phase 0)")
    counts = [int(e.error_count) for e in entries]
    if counts != sorted(counts, reverse=True):
        problems.append(f"error counts {counts} not newest first")
    return problems


def compare_id_ctrl(ident: dict, config: CoreConfig) -> list[str]:
    """Differences between ``nvme id-ctrl -o json`` and what ``config`` builds."""
    problems = []

    def want(field_, value, got=None):
        got = ident.get(field_) if got is None else got
        if isinstance(value, str):
            got = (got or "").strip()
        if got != value:
            problems.append(f"{field_}: {got!r}, expected {value!r}")

    want("vid", config.pci_vendor_id)
    want("ssvid", config.pci_subsystem_vendor_id)
    want("mn", config.model_number)
    want("fr", config.firmware_revision)
    if not str(ident.get("sn", "")).strip().startswith(config.serial_prefix):
        problems.append(f"sn: {ident.get('sn')!r} does not start with {config.serial_prefix}")
    if not str(ident.get("subnqn", "")).startswith(config.subnqn_base):
        problems.append(f"subnqn: {ident.get('subnqn')!r} not under {config.subnqn_base}")
    want("nn", 1)
    want("ieee", config.ieee_oui)
    return problems


def judge(run_dir: Path, config: CoreConfig, steps) -> Report:
    report = Report(run_dir)
    console_file = run_dir / "console.log"
    console = console_file.read_text(errors="replace") if console_file.is_file() else ""
    device = json.loads((run_dir / "device.json").read_text()) \
        if (run_dir / "device.json").is_file() else {}
    seen = _steps(console)
    for name in steps:
        status, seconds, lines = seen.get(name, (None, None, []))
        detail = "" if status else "not reached"
        ok = status == "PASS"
        if name == "idctrl" and ok:
            ident = _json_block(console, "id-ctrl")
            problems = ["no JSON"] if ident is None else compare_id_ctrl(ident, config)
            problems += compare_raw("id-ctrl", _hex_block(console, "id-ctrl"),
                                    identify_controller(config, DEVICE_ID))
            ok = not problems
            detail = "; ".join(problems) or ("vid ssvid mn fr sn subnqn nn ieee match "
                                             "CoreConfig; 4096 B equal to the Identify ROM")
        if name == "idns" and ok:
            ns = _json_block(console, "id-ns")
            blocks = config.namespace_bytes // 512
            problems = [] if ns is not None and ns.get("nsze") == blocks else \
                [f"nsze {ns and ns.get('nsze')}, expected {blocks}"]
            problems += compare_raw("id-ns", _hex_block(console, "id-ns"),
                                    identify_namespace(config, DEVICE_ID))
            ok = not problems
            detail = "; ".join(problems) or (f"nsze {blocks} LBAs of 512 B; 4096 B equal "
                                             "to the Identify ROM")
        if name == "errorlog" and ok:
            problems = compare_error_log(_hex_block(console, "error-log"),
                                         device.get("admin_errors", []))
            ok = not problems
            detail = "; ".join(problems) or ("every valid entry is a refused admin command "
                                             "with its status")
        if name == "smartcount" and ok:
            before, after = (_json_block(console, f"smart-{w}") for w in ("before", "after"))
            problems = ["no JSON"] if before is None or after is None else [
                f"{k}: {before[k]} -> {after[k]}, expected +1" for k in
                ("host_write_commands", "host_read_commands")
                if int(after[k]) != int(before[k]) + 1]
            ok = not problems
            detail = "; ".join(problems) or "host read and write commands +1 each"
        if not ok and not detail:
            tail = [ln for ln in lines if ln.strip()][-3:]
            detail = " | ".join(t.strip()[:80] for t in tail)
        report.rows.append(Row(name, ok, seconds, detail))
    # The driver's lines, and what must not be among them.
    report.driver_lines = list(dict.fromkeys(
        ln.strip() for ln in console.splitlines()
        if re.search(r"\bnvme\b|nvme0", ln) and _STAMP.match(ln.strip())))
    bad = [ln for ln in report.driver_lines
           if re.search(r"timeout|timed out|error|fail|abort|I/O \d+ QID", ln, re.I)]
    report.rows.append(Row("dmesg-clean", not bad and bool(report.driver_lines), None,
                           "; ".join(b.strip()[:100] for b in bad[:3])
                           or f"{len(report.driver_lines)} nvme lines, none a warning"))
    stats = device.get("stats", {})
    shut = bool(stats.get("shutdowns")) and bool(stats.get("shutdown_complete"))
    report.rows.append(Row("shutdown", shut and "reboot: Power down" in console, None,
                           f"CC.SHN writes {len(stats.get('shutdowns', []))}, SHST complete "
                           f"reads {len(stats.get('shutdown_complete', []))}"))
    errors = device.get("admin_errors", [])
    unexpected = [f"{cmd.split(' ', 1)[1]} -> {cqe.split(' ', 1)[1]}"
                  for cmd, cqe in errors if not any(re.search(p, cmd) and re.search(
                      r"sct=0 sc=0x02 dnr=1", cqe) for p in EXPECTED_ADMIN_ERRORS)]
    report.rows.append(Row("admin-status", bool(device) and not unexpected, None,
                           "; ".join(unexpected[:2]) or
                           f"{device.get('admin_commands', 0)} admin commands, "
                           f"{len(errors)} refused as documented"))
    violations = device.get("violations", [])
    report.rows.append(Row("dma-rules", bool(device) and not violations, None,
                           "; ".join(violations[:3]) or
                           f"{device.get('dma', {}).get('reads', 0)} reads, "
                           f"{device.get('dma', {}).get('writes', 0)} writes checked"))
    report.rows.append(Row("qemu-exit", device.get("qemu_rc") == 0 and
                           not device.get("timed_out"), device.get("wall_s"),
                           f"rc {device.get('qemu_rc')}, {device.get('cycles', 0)} cycles"))
    return report


def cosim(steps=FULL_STEPS, sim="verilator", accel="tcg", timeout_s=1800, run_name=None,
          top="core", log=print) -> Report:
    from nvmecore.cli import USP_TOP_NAME
    from nvmetb.sim import CONFIG_ENV, build, config_to_env, run, run_dir, verilog_for

    from .guest import build_guest

    wall = {}
    t = time.monotonic()
    guest = build_guest(log)
    wall["guest"] = time.monotonic() - t
    t = time.monotonic()
    config, toplevel = (CONFIG, "nvmecore") if top == "core" else (USP_CONFIG, USP_TOP_NAME)
    verilog = verilog_for(config, toplevel)
    build_dir = build(sim, verilog, toplevel)
    wall["rtl-build"] = time.monotonic() - t
    rdir = run_dir(run_name or "-".join(["linux-cosim", *(["usp"] if top == "usp" else []),
                                         sim]))
    console = rdir / "console.log"
    settings = {"run_dir": str(rdir), "timeout_s": timeout_s, "device_id": DEVICE_ID,
                "top": top,
                "qemu": qemu_command(guest, steps, accel, console)}
    log(f"--- guest {guest.kernel_version}, steps {','.join(steps)}; run folder {rdir}")
    t = time.monotonic()
    error = None
    try:
        run(sim, build_dir, toplevel, "cocotb_linux", "linux_guest", rdir,
            env={CONFIG_ENV: config_to_env(config), "NVMETB_LINUX": json.dumps(settings)})
    except AssertionError as e:
        error = str(e)
    wall["simulation"] = time.monotonic() - t
    report = judge(rdir, config, steps)
    report.wall = {k: round(v, 1) for k, v in wall.items()}
    if error:
        report.rows.append(Row("cocotb", False, None, error.splitlines()[0][:120]))
    (rdir / "report.txt").write_text(report.table() + "\n\nwall seconds: "
                                     + json.dumps(report.wall) + "\n")
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nvmetb.linux", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default=",".join(FULL_STEPS))
    parser.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    parser.add_argument("--accel", default="tcg", choices=("tcg", "kvm"))
    parser.add_argument("--top", default="core", choices=("core", "usp"),
                        help="core: the shipped core on its own ports; usp: the FPGA top "
                        "behind the adapter bench's UltraScale+ hard-IP models")
    parser.add_argument("--timeout", type=int, default=1800, help="guest wall seconds")
    args = parser.parse_args(argv)
    report = cosim(tuple(args.steps.split(",")), args.sim, args.accel, args.timeout,
                   top=args.top)
    print(report.table())
    print("wall seconds:", report.wall)
    print(f"guest console, BAR0 trace and report: {report.run_dir}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
