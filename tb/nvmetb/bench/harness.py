"""Core-level bench, independent of the simulator that runs it.

A *backend* drives one NvmeCore (built with ``debug=True``) through its ports: the
Amaranth simulator (``amaranth_backend``) or a cocotb simulator running the generated
Verilog (``cocotb_backend``). :class:`CheckedCore` runs every stimulus through the backend
and the reference model together and compares whole results: every register read (the
full QWORD), every doorbell update, event and DMA write (MSI-X message), and the INTx
level. Scenarios (``scenarios.py``) are written once against :class:`CheckedCore`.
"""

import random
from dataclasses import dataclass

from nvmetb.model import ControllerModel, DmaWrite, DoorbellWrite, split_access

__all__ = ["Backend", "CheckedCore", "Pattern", "Mismatch", "PATTERNS"]


class Mismatch(AssertionError):
    """The RTL and the reference model disagree."""


@dataclass(frozen=True)
class Pattern:
    """How busy the bench makes the core: gaps between requests, and how often the
    bench refuses an output beat (backpressure)."""
    name: str
    idle: float = 0.0          # probability of an idle cycle before a request
    stall: float = 0.0         # probability that an output stream's ready is low


PATTERNS = {
    "fast": Pattern("fast"),
    "busy": Pattern("busy", idle=0.3, stall=0.5),
}


class Backend:
    """What a simulator backend provides. All methods are coroutines of the backend's
    simulator; results accumulate in the lists below. ``poll_cycles`` is the pause
    between two polls of a register that settles (:meth:`CheckedCore.read_settled`)."""

    poll_cycles = 4
    #: Whether the doorbell and event taps are watched (a debug build's test ports);
    #: without them :meth:`CheckedCore.check` compares the DMA writes alone.
    taps = True

    def __init__(self, config, pattern: Pattern, seed=0):
        self.config = config
        self.pattern = pattern
        self.rng = random.Random(seed)
        self.doorbells: list[DoorbellWrite] = []
        self.events: list[int] = []
        self.dma_writes: list[DmaWrite] = []

    async def bus_write(self, addr, be, data): raise NotImplementedError
    async def bus_read(self, addr, be): raise NotImplementedError
    async def set_cfg(self, msix_enable, msix_function_mask, bus_master_enable):
        raise NotImplementedError
    async def queue(self, qid, cq, size): raise NotImplementedError
    async def irq(self, vector, deassert): raise NotImplementedError
    async def flr(self): raise NotImplementedError
    async def wait(self, cycles): raise NotImplementedError
    async def set_temperature(self, kelvin): raise NotImplementedError
    def intx(self) -> bool: raise NotImplementedError

    def read_mask(self, be) -> int:
        """The bits of a read's QWORD that carry data for byte enables ``be``: all of
        them on the core's own register bus; over PCIe only the DWORDs the read TLP asks
        for (a DWORD read returns one DWORD)."""
        return (1 << 64) - 1

    def stall(self):
        return self.rng.random() < self.pattern.stall

    def idle(self):
        return self.rng.random() < self.pattern.idle

    @staticmethod
    def dma_write_from_beats(addr, length, beats, width):
        """A DmaWrite from its header and data beats (data packed from bit 0)."""
        raw = b"".join(beat.to_bytes(width // 8, "little") for beat in beats)
        return DmaWrite(addr, raw[:length])


class CheckedCore:
    """A backend and the reference model, driven in lock step."""

    SETTLE_CYCLES = 48

    def __init__(self, backend: Backend, log=None):
        self.dut = backend
        self.model = ControllerModel(backend.config)
        self.config = backend.config
        self.log = log
        self.reads = 0

    # -- Register bus ----------------------------------------------------------------

    async def write_raw(self, addr, be, data):
        await self.dut.bus_write(addr, be, data)
        self.model.reg_write(addr, data, be)

    async def read_raw(self, addr, be=0xFF):
        got = await self.dut.bus_read(addr, be)
        want = self.model.reg_read(addr, be)
        self.reads += 1
        mask = self.dut.read_mask(be)
        if got & mask != want & mask:
            raise Mismatch(f"read of QWORD {addr:#06x} (be {be:#04x}): RTL {got:#018x}, "
                           f"model {want:#018x}")
        return got

    async def read_settled(self, offset, size=4, tries=64):
        """Poll a register, as a host polls CSTS, until it shows the model's value.

        State changes that take the controller time (CSTS.RDY clearing after CC.EN 1→0,
        SHST reaching "complete") are steady-state outcomes, not immediate ones
        (DESIGN.md §11): only the final value is compared."""
        addr, be, _ = split_access(offset, size)
        for _ in range(tries):
            mask = self.dut.read_mask(be)
            if await self.dut.bus_read(addr, be) & mask == self.model.reg_read(addr, be) & mask:
                break
            await self.dut.wait(self.dut.poll_cycles)
        return await self.read(offset, size)

    async def write(self, offset, value, size=4):
        await self.write_raw(*split_access(offset, size, value))

    async def read(self, offset, size=4, compare=True):
        """A register read of ``size`` bytes; ``compare=False`` returns the RTL's value
        unchecked (for a register the host polls while it moves)."""
        addr, be, _ = split_access(offset, size)
        qword = await (self.read_raw(addr, be) if compare else self.dut.bus_read(addr, be))
        return qword >> (8 * (offset - addr)) & ((1 << (8 * size)) - 1)

    # -- Other inputs --------------------------------------------------------------------

    async def set_cfg(self, msix_enable=None, msix_function_mask=None, bus_master_enable=None):
        self.model.set_cfg(msix_enable, msix_function_mask, bus_master_enable)
        await self.dut.set_cfg(self.model.msix_enable, self.model.msix_function_mask,
                               self.model.bus_master_enable)

    async def create_queue(self, qid, cq, size):
        await self.dut.queue(qid, cq, size)
        self.model.set_queue(qid, cq, size)

    async def delete_queue(self, qid, cq):
        await self.dut.queue(qid, cq, None)
        self.model.set_queue(qid, cq, None)

    async def irq(self, vector, deassert=False):
        await self.dut.irq(vector, deassert)
        self.model.irq(vector, deassert)

    async def flr(self):
        await self.dut.flr()
        self.model.bus_reset()
        # The MSI-X table is swept clear after reset; let it finish.
        await self.dut.wait(self.config.msix_vectors + 4)

    async def wait(self, cycles):
        await self.dut.wait(cycles)

    async def set_temperature(self, kelvin):
        await self.dut.set_temperature(kelvin)
        self.model.temperature = kelvin

    # -- Comparison -----------------------------------------------------------------------

    async def check(self):
        """Let outputs drain, then compare everything the core emitted with the model."""
        await self.dut.wait(self.SETTLE_CYCLES)
        names = ("doorbells", "events") if self.dut.taps else ()
        for name in names + ("dma_writes",):
            got, want = getattr(self.dut, name), getattr(self.model, name)
            if got != want:
                raise Mismatch(f"{name}: RTL {got!r}\n  model {want!r}")
        if self.dut.intx() != self.model.intx:
            raise Mismatch(f"INTx: RTL {self.dut.intx()}, model {self.model.intx}")
