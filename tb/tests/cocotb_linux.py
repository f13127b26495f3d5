"""cocotb test: a Linux guest in QEMU drives the generated Verilog through QEMU's proxy
device (``nvmetb.linux``). Started by ``python -m nvmetb.linux`` (``make linux-cosim``)
and by ``test_linux_cosim.py``; the run's settings come in ``NVMETB_LINUX`` (JSON, see
:func:`nvmetb.linux.run.run_settings`), its outcome goes to ``device.json`` in the run
directory, the guest's console to ``console.log``, BAR0 accesses to ``bar-trace.txt``,
admin commands and completions to ``admin-trace.txt``."""

import json
import logging
import os
import socket
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

import cocotb

from nvmetb.linux.device import ProxyDevice
from nvmetb.linux.mpqemu import Link
from nvmetb.sim import config_from_env

logging.getLogger("tb").setLevel(logging.INFO)
log = logging.getLogger("tb")


@cocotb.test()
async def linux_guest(dut):
    settings = json.loads(os.environ["NVMETB_LINUX"])
    config = config_from_env()
    run = Path(settings["run_dir"])
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    trace = open(run / "bar-trace.txt", "w")
    admin_trace = open(run / "admin-trace.txt", "w")
    device = ProxyDevice(dut, config, Link(ours), top=settings["top"], trace=trace,
                         admin_trace=admin_trace, device_id=settings["device_id"])
    await device.start()
    cmd = [a.replace("@FD@", str(theirs.fileno())) for a in settings["qemu"]]
    (run / "qemu-command.txt").write_text(" ".join(cmd) + "\n")
    started = time.monotonic()
    with open(run / "qemu.log", "w") as qemu_log:
        qemu = subprocess.Popen(cmd, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                stdout=qemu_log, stderr=subprocess.STDOUT)
    theirs.close()
    deadline = started + settings["timeout_s"]
    timed_out = False

    def alive():
        nonlocal timed_out
        if time.monotonic() > deadline and qemu.poll() is None:
            timed_out = True
            log.error("guest still running after %d s: stopping QEMU (pid %d)",
                      settings["timeout_s"], qemu.pid)
            qemu.kill()
        return qemu.poll() is None

    try:
        await device.serve(alive)
    finally:
        try:
            rc = qemu.wait(timeout=30)
        except subprocess.TimeoutExpired:
            qemu.kill()
            rc = qemu.wait()
        wall = time.monotonic() - started
        trace.close()
        admin_trace.close()
        ours.close()
        device.close()
        outcome = {
            "qemu_rc": rc, "timed_out": timed_out, "wall_s": round(wall, 1),
            "cycles": device.cycles(), "stats": asdict(device.stats),
            "dma": {"reads": device.memory.read_count, "read_bytes": device.memory.read_bytes,
                    "writes": device.memory.write_count,
                    "write_bytes": device.memory.write_bytes},
            "ram_syncs": device.ram.syncs,
            "violations": [str(v) for v in device.memory.violations],
            "admin_commands": device.admin.commands,
            "admin_errors": device.admin.errors,
        }
        (run / "device.json").write_text(json.dumps(outcome, indent=1) + "\n")
        log.info("guest done: QEMU exit %s after %.1f s, %d cycles, %d BAR reads, %d BAR "
                 "writes, %d DMA reads, %d DMA writes", rc, wall, device.cycles(),
                 device.stats.bar_reads, device.stats.bar_writes, device.memory.read_count,
                 device.memory.write_count)
    device.memory.check()
    device.port.check()
    assert not timed_out, "the guest did not power off in time"
    assert rc == 0, f"QEMU exited with {rc}: see qemu.log"
