"""Host memory as the core's DMA ports see it, independent of the simulator.

:class:`HostMemory` is a sparse byte store with an allocator. The host side (a driver, a
test) uses :meth:`~HostMemory.alloc`, :meth:`~HostMemory.read` and
:meth:`~HostMemory.write`; the DMA port drivers (:mod:`nvmetb.dma`) call
:meth:`~HostMemory.device_read` and :meth:`~HostMemory.device_write` for every request the
core makes. Every device access is checked the way an IOMMU and a root complex would see
it; each breach is recorded as a :class:`Violation` and :meth:`~HostMemory.check` fails a
test that caused any:

- it must fall inside one allocated buffer (guard gaps of unallocated memory separate
  buffers), or be a DWORD write to the MSI-X message region;
- 1 to 4096 bytes, not crossing a 4 KiB boundary [PCIe 4.0 §2.2.7];
- writes no longer than max payload size, reads no longer than max read request size
  [PCIe 4.0 §7.5.3.4] (the PCIe encodings, 0 = 128 B .. 5 = 4096 B).

A device read outside any buffer also returns an error (an Unsupported Request), a device
write there is dropped. Writes to the MSI-X region are interrupt messages
(:class:`MsixMessage`), kept apart from ordinary writes. :meth:`~HostMemory.fail_reads`
injects read errors.

How the DMA ports behave cycle by cycle is :mod:`nvmetb.dma.behaviour`'s business.
"""

import bisect
import logging
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "PAGE_SIZE", "MAX_REQUEST_BYTES", "pcie_size_bytes",
    "Buffer", "DeviceRead", "DeviceWrite", "MsixMessage", "Violation", "FaultRule",
    "HostMemory",
]

log = logging.getLogger("tb")

PAGE_SIZE = 4096
#: The largest request the DMA ports carry, and the boundary none may cross.
MAX_REQUEST_BYTES = 4096
#: Bytes returned for a failed read: data that must never be trusted.
POISON_BYTE = 0xEE


def pcie_size_bytes(encoding):
    """Max payload / max read request size in bytes from its PCIe encoding
    [PCIe 4.0 §7.5.3.4]: 0 = 128 B, 1 = 256 B, ... 5 = 4096 B."""
    if not 0 <= encoding <= 5:
        raise ValueError(f"size encoding {encoding} is reserved (0..5 are defined)")
    return 128 << encoding


@dataclass(frozen=True)
class Buffer:
    name: str
    addr: int
    size: int

    @property
    def end(self):
        return self.addr + self.size

    def contains(self, addr, length=1):
        return self.addr <= addr and addr + length <= self.end


@dataclass(frozen=True)
class DeviceRead:
    addr: int
    length: int
    error: bool


@dataclass(frozen=True)
class DeviceWrite:
    addr: int
    data: bytes


@dataclass(frozen=True)
class MsixMessage:
    """An MSI-X message write: address, data, and the vector whose
    :meth:`HostMemory.msix_address` pair it matches (None if it matches none)."""
    addr: int
    data: int
    vector: int | None


@dataclass(frozen=True)
class Violation:
    kind: str            # "unmapped", "crosses-4k", "length", "mps", "mrrs", "msix", "beats",
                         # "stream"
    op: str              # "read" or "write"; for "stream", the stream's name
    addr: int
    length: int
    detail: str = ""

    def __str__(self):
        if self.kind == "stream":
            return f"{self.op}: {self.detail}"
        return (f"{self.op} of {self.length} B at {self.addr:#x}: {self.kind}"
                + (f" ({self.detail})" if self.detail else ""))


@dataclass
class FaultRule:
    """Device reads matching ``match(addr, length)`` fail, ``count`` times (None:
    always). ``hits`` counts the reads it failed. ``kind`` says how a bus model that can
    tell failures apart reports it (for PCIe: "ur", "ca", "poisoned", "drop"); None is
    the model's default."""
    match: Callable[[int, int], bool]
    count: int | None = None
    hits: int = 0
    kind: str | None = None
    #: ``kind="late"`` (core-level DMA port only): the read is answered, with error
    #: beats, this many cycles later than usual (past the SQ fetch time-out, say).
    delay: int = 0

    @property
    def spent(self):
        return self.count is not None and self.hits >= self.count


class HostMemory:
    """Sparse host memory with buffers, MSI-X message region and access checks.

    ``max_payload_size`` / ``max_read_request_size`` are PCIe encodings; they are the
    limits used when a driver does not pass the core's own ``cfg`` values.
    """

    #: Below 4 GiB: buffers from ``LOW_BASE`` up to the MSI-X region.
    LOW_BASE = 0x0010_0000
    #: Above 4 GiB, with high address bits set so that truncation shows.
    HIGH_BASE = 0x0001_2345_0000_0000
    #: The MSI-X message region (where x86 puts the local APICs); 16 bytes per vector.
    MSIX_BASE = 0xFEE0_0000
    MSIX_STRIDE = 16
    MSIX_VECTORS = 2048
    #: Message data for vector v is ``MSIX_DATA_BASE | v``.
    MSIX_DATA_BASE = 0x4D53_0000

    def __init__(self, *, max_payload_size=0, max_read_request_size=2, guard=PAGE_SIZE):
        self.max_payload_size = max_payload_size
        self.max_read_request_size = max_read_request_size
        self.guard = guard
        self._pages: dict[int, bytearray] = {}
        self._starts: list[int] = []          # sorted buffer start addresses
        self._buffers: dict[int, Buffer] = {}
        self._next = {False: self.LOW_BASE, True: self.HIGH_BASE}
        self._faults: list[FaultRule] = []
        self.violations: list[Violation] = []
        self.reads: list[DeviceRead] = []
        self.writes: list[DeviceWrite] = []
        self.msix_messages: list[MsixMessage] = []
        self.last_fault: FaultRule | None = None

    # -- Allocation -----------------------------------------------------------------------

    def alloc(self, size, align=PAGE_SIZE, *, name=None, above_4g=False, offset=0,
              fill=0) -> int:
        """A new buffer of ``size`` bytes whose start is ``offset`` bytes past an
        ``align``-aligned address; at least ``guard`` unallocated bytes lie between
        buffers. ``fill`` (a byte value) initialises it."""
        if size <= 0 or align <= 0 or offset < 0:
            raise ValueError(f"alloc({size}, align={align}, offset={offset})")
        base = -(-self._next[above_4g] // align) * align + offset
        end = base + size
        if not above_4g and end > self.MSIX_BASE:
            raise MemoryError("host memory below 4 GiB is exhausted")
        self._next[above_4g] = end + self.guard
        buf = Buffer(name or f"buf{len(self._buffers)}", base, size)
        bisect.insort(self._starts, base)
        self._buffers[base] = buf
        self._store(base, bytes([fill]) * size)
        return base

    def free(self, addr):
        """Drop the buffer that starts at ``addr``; device accesses to it become
        violations (its address range is never handed out again)."""
        del self._buffers[addr]
        self._starts.remove(addr)

    @property
    def buffers(self) -> list[Buffer]:
        return [self._buffers[a] for a in self._starts]

    def buffer_at(self, addr, length=1) -> Buffer | None:
        """The buffer holding all of ``addr .. addr + length - 1``, or None."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return None
        buf = self._buffers[self._starts[i]]
        return buf if buf.contains(addr, length) else None

    # -- Host side --------------------------------------------------------------------------

    def read(self, addr, n) -> bytes:
        self._host_check(addr, n)
        return self._load(addr, n)

    def write(self, addr, data):
        self._host_check(addr, len(data))
        self._store(addr, bytes(data))

    def peek(self, addr, n) -> bytes:
        """What memory holds at any address (zero where nothing was written), without
        the host's one-buffer check: for comparisons over ranges that span buffers."""
        return self._load(addr, n)

    def _host_check(self, addr, n):
        if n and self.buffer_at(addr, n) is None:
            raise ValueError(f"host access of {n} B at {addr:#x} is not inside one buffer")

    def _load(self, addr, n):
        out = bytearray()
        while n:
            page, off = divmod(addr, PAGE_SIZE)
            chunk = min(n, PAGE_SIZE - off)
            store = self._pages.get(page)
            out += store[off:off + chunk] if store is not None else bytes(chunk)
            addr += chunk
            n -= chunk
        return bytes(out)

    def _store(self, addr, data):
        pos = 0
        while pos < len(data):
            page, off = divmod(addr + pos, PAGE_SIZE)
            chunk = min(len(data) - pos, PAGE_SIZE - off)
            store = self._pages.setdefault(page, bytearray(PAGE_SIZE))
            store[off:off + chunk] = data[pos:pos + chunk]
            pos += chunk

    # -- MSI-X --------------------------------------------------------------------------------

    def msix_address(self, vector) -> tuple[int, int]:
        """(message address, message data) for ``vector``: what a host writes into the
        MSI-X table entry so that the vector's messages are recognised here."""
        if not 0 <= vector < self.MSIX_VECTORS:
            raise ValueError(f"vector {vector} out of range")
        return self.MSIX_BASE + self.MSIX_STRIDE * vector, self.MSIX_DATA_BASE | vector

    def msix_vector(self, addr, value) -> int | None:
        """The vector whose :meth:`msix_address` pair is (``addr``, ``value``), or None."""
        vector, rem = divmod(addr - self.MSIX_BASE, self.MSIX_STRIDE)
        if rem == 0 and 0 <= vector < self.MSIX_VECTORS and self.msix_address(vector) == (
                addr, value):
            return vector
        return None

    def _in_msix_region(self, addr, length):
        end = self.MSIX_BASE + self.MSIX_STRIDE * self.MSIX_VECTORS
        return self.MSIX_BASE <= addr + length - 1 and addr < end

    def interrupts(self, vector) -> int:
        """How many messages arrived for ``vector``."""
        return sum(1 for m in self.msix_messages if m.vector == vector)

    # -- Device side ---------------------------------------------------------------------

    def fail_reads(self, match, count=None, kind=None, delay=0) -> FaultRule:
        """Make device reads fail: ``match`` is a predicate ``(addr, length) -> bool``, a
        ``range`` of addresses or a ``(start, stop)`` pair (a read overlapping it fails).
        ``count`` limits how many reads fail (None: all that match); ``kind`` is
        :attr:`FaultRule.kind`. After each :meth:`device_read`, :attr:`last_fault` is
        the rule that failed it (None if none did)."""
        if isinstance(match, tuple):
            match = range(*match)
        if isinstance(match, range):
            lo, hi = match.start, match.stop
            predicate = lambda addr, length: addr < hi and lo < addr + length  # noqa: E731
        elif callable(match):
            predicate = match
        else:
            raise TypeError(f"fail_reads: {match!r} is not a predicate or address range")
        rule = FaultRule(predicate, count, kind=kind, delay=delay)
        self._faults.append(rule)
        return rule

    def clear_faults(self):
        self._faults.clear()

    def _violation(self, kind, op, addr, length, detail=""):
        v = Violation(kind, op, addr, length, detail)
        log.error("host memory: %s", v)
        self.violations.append(v)

    def _check_request(self, op, addr, length, limit_encoding):
        """Size and boundary rules common to reads and writes; True if they hold."""
        ok = True
        limit = pcie_size_bytes(limit_encoding)
        kind = "mps" if op == "write" else "mrrs"
        if not 1 <= length <= MAX_REQUEST_BYTES:
            self._violation("length", op, addr, length, "must be 1..4096 bytes")
            ok = False
        elif length > limit:
            self._violation(kind, op, addr, length, f"limit is {limit} B")
            ok = False
        if length and addr // PAGE_SIZE != (addr + length - 1) // PAGE_SIZE:
            self._violation("crosses-4k", op, addr, length)
            ok = False
        if addr + length > 1 << 64:
            self._violation("unmapped", op, addr, length, "beyond the 64-bit address space")
            ok = False
        return ok

    def device_read(self, addr, length, max_read_request_size=None) -> tuple[bytes, bool]:
        """A DMA read by the core: ``(data, error)``. Reads outside any buffer, and those
        a fault rule matches, fail and return poison data."""
        mrrs = self.max_read_request_size if max_read_request_size is None \
            else max_read_request_size
        self._check_request("read", addr, length, mrrs)
        error = False
        if self.buffer_at(addr, max(length, 1)) is None:
            where = "MSI-X region" if self._in_msix_region(addr, max(length, 1)) else \
                "not inside one allocated buffer"
            self._violation("unmapped", "read", addr, length, where)
            error = True
        self.last_fault = None
        for rule in self._faults:
            if not rule.spent and rule.match(addr, length):
                rule.hits += 1
                self.last_fault = rule
                error = True
                break
        data = bytes([POISON_BYTE]) * length if error else self._load(addr, length)
        self.reads.append(DeviceRead(addr, length, error))
        return data, error

    def device_write(self, addr, data, max_payload_size=None):
        """A DMA write by the core (posted: nothing is returned). A DWORD write to the MSI-X
        region is an interrupt message; other writes must land in a buffer."""
        data = bytes(data)
        length = len(data)
        mps = self.max_payload_size if max_payload_size is None else max_payload_size
        self._check_request("write", addr, length, mps)
        if self._in_msix_region(addr, max(length, 1)):
            if length != 4 or addr % 4:
                self._violation("msix", "write", addr, length,
                                "MSI-X messages are DWORD-aligned 4-byte writes")
                return
            value = int.from_bytes(data, "little")
            msg = MsixMessage(addr, value, self.msix_vector(addr, value))
            log.debug("host memory: MSI-X message %s", msg)
            self.msix_messages.append(msg)
            return
        self.writes.append(DeviceWrite(addr, data))
        if self.buffer_at(addr, max(length, 1)) is None:
            self._violation("unmapped", "write", addr, length,
                            "not inside one allocated buffer; dropped")
            return
        self._store(addr, data)

    # -- Results ---------------------------------------------------------------------------

    def take_violations(self) -> list[Violation]:
        """The violations so far, cleared (for tests that provoke them on purpose)."""
        taken, self.violations = self.violations, []
        return taken

    def check(self):
        """Fail if any device access broke a rule."""
        if self.violations:
            lines = "\n  ".join(str(v) for v in self.violations)
            raise AssertionError(f"{len(self.violations)} host memory violation(s):\n  {lines}")
