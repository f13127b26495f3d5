"""The short Linux co-simulation (CI's slice of ``make linux-cosim``): Debian's kernel in
QEMU binds its NVMe driver to the core's Verilog (Verilator), identifies it, moves 4 KiB
of data both ways, resets the controller and shuts it down at power-off. About a minute
of wall time once the guest is fetched (``make setup`` does; otherwise this test fetches
it with apt-get). Deselect with ``-m 'not linux'``."""

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
@pytest.mark.verilator
def test_linux_short():
    assert _qemu_has_proxy(), ("qemu-system-x86_64 with x-pci-proxy-dev (Debian 12's "
                               "qemu-system-x86 7.2) is needed: run 'make setup' as root")
    report = cosim(SHORT_STEPS, "verilator", "tcg", timeout_s=480, run_name="linux-short")
    assert report.ok, (f"Linux co-simulation failed (guest console and traces in "
                       f"{report.run_dir}):\n{report.table()}")
