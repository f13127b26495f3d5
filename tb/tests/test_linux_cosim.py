"""The short Linux co-simulation (CI's slice of ``make linux-cosim``): Debian's kernel in
QEMU binds its NVMe driver to the Verilog, identifies it, moves 4 KiB of data both ways,
resets the controller and shuts it down at power-off: the shipped core on its own ports
under Verilator, and the FPGA top behind the UltraScale+ adapter bench's hard-IP models
under Icarus. About half a minute each once the guest is fetched (``make setup`` does;
otherwise this test fetches it with apt-get) and the model built. Deselect with
``-m 'not linux'``."""

import shutil
import subprocess

import pytest

from nvmetb.linux.run import SHORT_STEPS, cosim


def _qemu_has_proxy():
    if shutil.which("qemu-system-x86_64") is None:
        return False
    out = subprocess.run(["qemu-system-x86_64", "-device", "help"], capture_output=True,
                         text=True).stdout
    return "x-pci-proxy-dev" in out


@pytest.mark.linux
@pytest.mark.parametrize(("top", "sim"), [
    pytest.param("core", "verilator", marks=pytest.mark.verilator, id="core-verilator"),
    pytest.param("usp", "icarus", marks=pytest.mark.icarus, id="usp-icarus"),
])
def test_linux_short(top, sim):
    assert _qemu_has_proxy(), ("qemu-system-x86_64 with x-pci-proxy-dev (Debian 12's "
                               "qemu-system-x86 7.2) is needed: run 'make setup' as root")
    report = cosim(SHORT_STEPS, sim, "tcg", timeout_s=480, top=top,
                   run_name=f"linux-short-{top}-{sim}")
    assert report.ok, (f"Linux co-simulation failed (guest console and traces in "
                       f"{report.run_dir}):\n{report.table()}")
