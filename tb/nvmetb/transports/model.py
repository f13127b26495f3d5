"""The host driver on the reference model alone: pure Python, no simulator.

:class:`ModelTransport` is a :class:`~nvmetb.host.transport.Transport` whose controller is
a :class:`~nvmetb.model.ControllerModel`. BAR0 accesses go straight to the model; host
memory is a :class:`~nvmetb.hostmem.HostMemory` that the model reaches through its
device side (:class:`DevicePort`), so every access the model makes is checked as the
RTL's are (inside one allocated buffer, no 4 KiB crossing, read faults injected with
:meth:`ModelTransport.fail_reads`); its MSI-X messages land in the memory's message
region; :meth:`ModelTransport.wait` advances the model's clock (interrupt aggregation).

It offers the parts of the bench transport's API that scenarios use (``config``,
``fail_reads``, ``clear_faults``, ``fail_namespace``, ``forget_io``, ``compare``), so a
scenario written for the lock-step bench runs here unchanged, in the quick tier.
:func:`run_model_scenario` runs one.
"""

import asyncio
import logging

from nvmecore import CoreConfig
from nvmecore.nvm_layouts import PAGE_BYTES
from nvmetb.host.transport import HostMemoryTransport
from nvmetb.hostmem import HostMemory, pcie_size_bytes
from nvmetb.model import ControllerModel

__all__ = ["DevicePort", "ModelTransport", "run_model_scenario", "CYCLES_PER_US"]

log = logging.getLogger("tb")

CYCLES_PER_US = 250          # 250 MHz, as the benches count


def _requests(addr, length, limit):
    """``(address, length)`` requests for a transfer: none longer than ``limit``, none
    crossing a 4 KiB boundary (as the core's DMA engines split theirs)."""
    while length:
        chunk = min(length, limit, PAGE_BYTES - addr % PAGE_BYTES)
        yield addr, chunk
        addr += chunk
        length -= chunk


class DevicePort:
    """The model's ``memory``: reads and writes go to ``memory``'s device side, split
    into requests no longer than its max read request / max payload size. A failed
    read raises (the model turns that into a Data Transfer Error or a fatal fetch)."""

    def __init__(self, memory: HostMemory):
        self.memory = memory

    def read(self, addr, n):
        out = bytearray()
        limit = pcie_size_bytes(self.memory.max_read_request_size)
        for at, length in _requests(addr, n, limit):
            data, error = self.memory.device_read(at, length)
            if error:
                raise OSError(f"read of {length} B at {at:#x} failed")
            out += data
        return bytes(out)

    def write(self, addr, data):
        limit = pcie_size_bytes(self.memory.max_payload_size)
        at = 0
        for where, length in _requests(addr, len(data), limit):
            self.memory.device_write(where, data[at:at + length])
            at += length


class ModelTransport(HostMemoryTransport):
    """The reference model as the controller. ``memory``: the host memory (by default
    one that takes 4 KiB requests, so a long transfer costs few checks)."""

    def __init__(self, config: CoreConfig | None = None, memory: HostMemory | None = None,
                 *, above_4g=False):
        memory = memory if memory is not None else HostMemory(max_payload_size=5,
                                                              max_read_request_size=5)
        super().__init__(memory, above_4g=above_4g)
        self.config = config or CoreConfig()
        self.model = ControllerModel(self.config, memory=DevicePort(memory))
        self._messages = 0            # model.dma_writes forwarded so far
        self.cycle = 0

    def _forward(self):
        """MSI-X messages the model sent since the last call, into host memory's message
        region (behind the CQ entries they announce, as on the link)."""
        writes = self.model.dma_writes
        for write in writes[self._messages:]:
            self.memory.device_write(write.addr, write.payload)
        self._messages = len(writes)

    # -- Transport ------------------------------------------------------------------------

    async def mmio_read(self, offset, size=4):
        return self.model.read(offset, size)

    async def mmio_write(self, offset, value, size=4):
        self.model.write(offset, value, size)
        self._forward()

    async def pci_config(self, *, bus_master=None, msix_enable=None, msix_function_mask=None):
        self.model.set_cfg(msix_enable=msix_enable, msix_function_mask=msix_function_mask,
                           bus_master_enable=bus_master)
        self._forward()

    async def wait(self, us):
        cycles = max(1, int(us * CYCLES_PER_US))
        self.cycle += cycles
        self.model.advance_time(cycles)
        self._forward()

    def intx(self) -> bool:
        """The INTx level the model drives."""
        return bool(self.model.intx)

    # -- What scenarios use on the bench transport too ---------------------------------

    def fail_reads(self, start, stop, kind=None):
        """Device reads overlapping [start, stop) fail."""
        self.memory.fail_reads((start, stop), kind=kind)

    def clear_faults(self):
        self.memory.clear_faults()

    #: The model's backend injects media errors (:meth:`fail_namespace`).
    media_faults = True

    def fail_namespace(self, start, stop):
        """Backend commands touching namespace bytes [start, stop) fail (media error)."""
        self.model.fail_namespace(start, stop)

    def forget_io(self, admin=False, undefined=()):
        """Nothing is compared here: nothing to forget."""

    async def compare(self, settle_us=0):
        """The checks that need no second controller: no device access broke a host
        memory rule."""
        if settle_us:
            await self.wait(settle_us)
        self.memory.check()


def run_model_scenario(scenario, config: CoreConfig | None = None, *, poll_us=0.1,
                       command_timeout_us=200, **kwargs):
    """Run ``scenario`` (``async def scenario(host, bench, **kwargs)``) with the host
    driver on the reference model, then :meth:`ModelTransport.compare`; returns
    ``(host, transport)``."""
    from nvmetb.host import NvmeHost

    transport = ModelTransport(config)
    host = NvmeHost(transport, poll_us=poll_us, command_timeout_us=command_timeout_us)

    async def main():
        await scenario(host, transport, **kwargs)
        await transport.compare()

    asyncio.run(main())
    return host, transport
