"""QemuTransport on QEMU's NVMe device: enumeration, BAR0, guest memory below and above
4 GiB, MSI-X messages, and QEMU stopped on every way out (with-block exit on an error,
garbage collection, a scenario time-out). Skipped without qemu-system-x86_64."""

import asyncio
import gc

import pytest

from nvmecore.layouts import Reg
from nvmetb.host import NvmeHost
from nvmetb.transports.qemu import (
    PCI_CLASS_NVME,
    QemuConfig,
    QemuMissing,
    QemuTransport,
    qemu_binary,
)

pytestmark = pytest.mark.skipif(qemu_binary() is None,
                                reason="qemu-system-x86_64 not installed (make setup)")


def test_enumerate_and_bring_up():
    with QemuTransport(QemuConfig(io_queues=2)) as qemu:
        assert qemu.pci_ids & 0xFFFF == 0x1B36            # QEMU's vendor ID
        assert qemu.cfg_read(0x08) >> 8 == PCI_CLASS_NVME
        assert qemu.bar0_size >= 0x4000 and qemu.msix_table_size == 3
        host = NvmeHost(qemu, poll_us=2.0, command_timeout_us=2_000_000)

        async def main():
            assert await qemu.mmio_read(Reg.VS) == 0x0001_0400
            await host.bring_up(io_queues=2, queue_entries=8)
            host.track_namespace()
            high = qemu.alloc(4096, above_4g=True)
            assert high >= 1 << 32
            qemu.mem_write(high, b"above 4 GiB")
            assert qemu.mem_read(high, 11) == b"above 4 GiB"
            await host.verify_io(blocks=4)
            await qemu.wait(10)
        asyncio.run(main())
        vectors = {qemu.msix_vector_of(*m) for m in qemu.msix_messages()}
        assert vectors == {0, 1, 2}, f"messages seen on vectors {vectors}"
        assert qemu.running
    assert not qemu.running


def test_stopped_on_error_and_on_collection():
    with pytest.raises(RuntimeError, match="scenario failed"):
        with QemuTransport() as qemu:
            raise RuntimeError("scenario failed")
    assert not qemu.running
    qemu = QemuTransport()
    proc = qemu._proc
    del qemu
    gc.collect()
    assert proc.poll() is not None, "QEMU still running after its transport was collected"


def test_time_out_cancels_the_wait():
    with QemuTransport() as qemu:
        async def hang():
            while True:
                await qemu.wait(100)
        with pytest.raises(TimeoutError):
            asyncio.run(asyncio.wait_for(hang(), 0.2))
    assert not qemu.running


def test_missing_qemu_is_reported(monkeypatch):
    from nvmetb.conformance.targets import run_qemu

    monkeypatch.setenv("QEMU", "/nonexistent/qemu-system-x86_64")
    with pytest.raises(QemuMissing):
        QemuTransport()
    results = run_qemu(["bring_up"])
    assert [r.result for r in results] == ["skipped"] and "not found" in results[0].detail
