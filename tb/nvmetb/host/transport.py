"""How the host driver reaches a controller.

:class:`Transport` is all :class:`~nvmetb.host.driver.NvmeHost` needs: BAR0 accesses,
host memory, where MSI-X messages should be aimed and which have arrived, and a way to
let time pass. The same driver then runs on the core-level bench, on the reference model
alone, over a PCIe root complex model and on QEMU; each transport decides what a
microsecond is (a simulation may compress time).

:class:`HostMemoryTransport` implements the memory and interrupt half over a
:class:`~nvmetb.hostmem.HostMemory`; a transport built on it adds the MMIO
accesses, :meth:`Transport.wait` and, if the controller has them, the PCI configuration
bits.
"""

import abc
from collections.abc import Sequence

from nvmetb.hostmem import PAGE_SIZE, HostMemory

__all__ = ["Transport", "HostMemoryTransport"]


class Transport(abc.ABC):
    """Abstract access to one NVMe controller."""

    # -- BAR0 ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def mmio_read(self, offset, size=4) -> int:
        """Read ``size`` (4 or 8) bytes at BAR0 ``offset``."""

    @abc.abstractmethod
    async def mmio_write(self, offset, value, size=4):
        """Write ``size`` (4 or 8) bytes at BAR0 ``offset``."""

    # -- Host memory -----------------------------------------------------------------------

    @abc.abstractmethod
    def alloc(self, size, align=PAGE_SIZE, *, offset=0, name=None, above_4g=None) -> int:
        """A zeroed, DMA-able buffer; its address is ``offset`` past an ``align``
        boundary. ``above_4g``: True or False places it above or below 4 GiB (64-bit or
        32-bit addressing); None lets the transport choose."""

    def free(self, addr):  # noqa: B027 (optional: by default buffers are kept)
        """Give a buffer back (the controller must not touch it any more)."""

    @abc.abstractmethod
    def mem_read(self, addr, n) -> bytes: ...

    @abc.abstractmethod
    def mem_write(self, addr, data): ...

    # -- Interrupts ------------------------------------------------------------------------

    @abc.abstractmethod
    def msix_vector_address(self, vector) -> tuple[int, int]:
        """(message address, message data) to program into MSI-X table entry
        ``vector``."""

    @abc.abstractmethod
    def msix_messages(self) -> Sequence[tuple[int, int]]:
        """Every MSI-X message (address, data) received so far, in order."""

    def msix_vector_of(self, addr, value) -> int | None:
        """The vector a received message belongs to, by the table programming this
        transport handed out (None if it matches none)."""
        cache = self.__dict__.setdefault("_vector_cache", {})
        if not cache:
            for vector in range(2048):
                try:
                    cache[self.msix_vector_address(vector)] = vector
                except ValueError:
                    break
        return cache.get((addr, value))

    async def wait_interrupt(self, vector, timeout_us, poll_us=1.0) -> bool:
        """Wait for a message on ``vector`` not yet consumed by an earlier call; False on
        time-out."""
        seen = self.__dict__.setdefault("_interrupts_taken", {})
        waited = 0.0
        while True:
            count = sum(1 for addr, value in self.msix_messages()
                        if self.msix_vector_of(addr, value) == vector)
            if count > seen.get(vector, 0):
                seen[vector] = seen.get(vector, 0) + 1
                return True
            if waited >= timeout_us:
                return False
            await self.wait(poll_us)
            waited += poll_us

    # -- PCI function and time ------------------------------------------------------------------

    async def pci_config(self, *, bus_master=None, msix_enable=None,  # noqa: B027
                         msix_function_mask=None):
        """Set PCI command / MSI-X control bits (None: leave as is). Transports whose
        function is set up elsewhere ignore it."""

    @abc.abstractmethod
    async def wait(self, us):
        """Let about ``us`` microseconds pass."""


class HostMemoryTransport(Transport):
    """Memory and MSI-X messages from a :class:`HostMemory` (the bench's or its own)."""

    def __init__(self, memory: HostMemory | None = None, *, above_4g=False):
        self.memory = memory if memory is not None else HostMemory()
        self.above_4g = above_4g

    def alloc(self, size, align=PAGE_SIZE, *, offset=0, name=None, above_4g=None) -> int:
        return self.memory.alloc(size, align, offset=offset, name=name,
                                 above_4g=self.above_4g if above_4g is None else above_4g)

    def free(self, addr):
        self.memory.free(addr)

    def mem_read(self, addr, n) -> bytes:
        return self.memory.read(addr, n)

    def mem_write(self, addr, data):
        self.memory.write(addr, data)

    def msix_vector_address(self, vector):
        return self.memory.msix_address(vector)

    def msix_messages(self):
        return [(m.addr, m.data) for m in self.memory.msix_messages]

    def msix_vector_of(self, addr, value):
        return self.memory.msix_vector(addr, value)
