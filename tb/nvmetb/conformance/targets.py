"""Where the conformance scenarios run.

- ``model``: the reference model alone (:class:`~nvmetb.transports.model.ModelTransport`).
- ``qemu``: QEMU's NVMe device over qtest (:class:`~nvmetb.transports.qemu.QemuTransport`),
  one QEMU per scenario, configured like our build (I/O queue pairs, vectors, image
  size, 512-byte blocks, MDTS 7).
- ``rtl-icarus`` / ``rtl-verilator`` / ``pcie-icarus``: the RTL, from cocotb
  (``tb/tests/cocotb_conformance.py``); :func:`run_rtl` starts that simulation.

Each runner returns a list of :class:`~nvmetb.conformance.Result`.
"""

import asyncio
import json
import logging
from pathlib import Path

from nvmecore import CoreConfig
from nvmetb.bench import CORE_BENCH_CONFIG

from . import SCENARIOS, Result, run_scenario

__all__ = ["CONFIG", "PCIE_CONFIG", "run_model", "run_qemu", "run_rtl", "RESULTS_ENV",
           "SELECT_ENV", "TARGET_ENV"]

log = logging.getLogger("tb")

#: The build every target mirrors: the core-level bench's (the same Verilog as
#: test_core_rtl, so the simulator builds are shared).
CONFIG = CORE_BENCH_CONFIG
#: Where the cocotb side writes its results (a JSON file), and which scenarios it runs.
RESULTS_ENV = "NVMETB_CONFORMANCE_RESULTS"
SELECT_ENV = "NVMETB_CONFORMANCE_SCENARIOS"
TARGET_ENV = "NVMETB_CONFORMANCE_TARGET"
#: The FPGA top through cocotbext-pcie: the shipped build (no debug ports), as
#: test_pcie_rtl builds it.
PCIE_CONFIG = CoreConfig(data_width=256)
#: QEMU acts in real time on a machine shared with other work: the scenarios' settling
#: times and time-outs (sized for a simulation's exact microseconds) are this much longer.
QEMU_TIME_SCALE = 200


def facts(config=CONFIG):
    return {"namespace_bytes": config.namespace_bytes}


def _names(names):
    return list(SCENARIOS) if names is None else list(names)


def run_model(names=None, config=CONFIG) -> list[Result]:
    from nvmetb.host import NvmeHost
    from nvmetb.transports.model import ModelTransport

    results = []
    for name in _names(names):
        transport = ModelTransport(config)
        host = NvmeHost(transport, poll_us=0.1, command_timeout_us=200)

        async def after(transport=transport):
            await transport.compare()
        results.append(asyncio.run(run_scenario(
            SCENARIOS[name], host, "model", {"fail_reads", "intx"}, facts(config), after)))
    return results


def qemu_config(config=CONFIG):
    from nvmetb.transports.qemu import QemuConfig

    return QemuConfig(io_queues=config.io_queues, namespace_bytes=config.namespace_bytes,
                      lba_bytes=512, mdts=7)


def run_qemu(names=None, config=CONFIG) -> list[Result]:
    """Every scenario on its own QEMU; all ``skipped`` when QEMU is not installed."""
    from nvmetb.host import NvmeHost
    from nvmetb.transports.qemu import QemuMissing, QemuTransport

    results = []
    for name in _names(names):
        try:
            transport = QemuTransport(qemu_config(config))
        except QemuMissing as missing:
            results.append(Result(name, "qemu", "skipped", str(missing)))
            continue
        with transport:
            host = NvmeHost(transport, poll_us=2.0, command_timeout_us=2_000_000)
            results.append(asyncio.run(asyncio.wait_for(
                run_scenario(SCENARIOS[name], host, "qemu", {"intx"},
                             {**facts(config), "time_scale": QEMU_TIME_SCALE}), 120)))
    return results


def save(results, path):
    Path(path).write_text(json.dumps([r.as_dict() for r in results], indent=1))


def load(path) -> list[Result]:
    return [Result(**r) for r in json.loads(Path(path).read_text())]


def run_rtl(target, names=None, work_dir=None) -> list[Result]:
    """``target`` is ``rtl-icarus``, ``rtl-verilator`` or ``pcie-icarus``: build (or
    reuse) the Verilog for that simulator and run the scenarios in one simulation."""
    import os
    import tempfile

    from nvmecore.cli import USP_TOP_NAME
    from nvmetb.sim import (
        CONFIG_ENV,
        SimulatorMissing,
        build,
        config_to_env,
        run,
        run_dir,
        verilog_for,
    )

    level, sim = target.split("-")
    names = _names(names)
    if level == "pcie":
        config, verilog, top = PCIE_CONFIG, verilog_for(PCIE_CONFIG, USP_TOP_NAME), USP_TOP_NAME
    else:
        config, verilog, top = CONFIG, verilog_for(CONFIG), "nvmecore"
    try:
        build_dir = build(sim, verilog, top)
    except SimulatorMissing as missing:
        return [Result(n, target, "skipped", str(missing)) for n in names]
    work = Path(work_dir) if work_dir else run_dir(f"conformance-{target}")
    fd, results = tempfile.mkstemp(prefix="conformance-", suffix=".json", dir=work)
    os.close(fd)
    env = {CONFIG_ENV: config_to_env(config), RESULTS_ENV: results, TARGET_ENV: target,
           SELECT_ENV: ",".join(names)}
    error = None
    try:
        run(sim, build_dir, top, "cocotb_conformance", None, work, env=env)
    except AssertionError as failed:          # a crashed test: its result is missing
        error = str(failed).splitlines()[0] if str(failed) else "the simulation failed"
    got = {r.scenario: r for r in (load(results) if Path(results).stat().st_size else [])}
    return [got.get(n) or Result(n, target, "fail", error or "no result from the simulation")
            for n in names]
