"""The host driver's transport onto the core-level bench, with the model in lock step.

MMIO goes through :class:`CheckedCore` (the RTL and the reference model together);
host memory is a :class:`HostMemory` served to the RTL by the DMA port drivers and
mirrored into a plain memory for the model, so both run the same commands from the same
queues. :meth:`BenchTransport.compare` then compares whole results (DESIGN.md §11,
docs/io-commands.md "What the model and the RTL may legitimately differ on"), whatever
the host called its buffers (or whether it named them at all):

- every DMA write either side made: a write to a slot where the model wrote a CQ entry
  is that CQ's entry; the admin CQ's entries are compared in order (CID, SQID, status,
  DW0, phase), each I/O CQ's phase tags by position and its (CID, SQID, status, DW0) as
  a multiset, since I/O commands complete in any order (SQHD is checked by the driver as
  an invariant);
- every other DMA write is data: the bytes the RTL wrote and the bytes the model wrote
  must be the same bytes, holding the same values, except in buffers the host named
  "failing" or "undefined" (commands whose data the contract leaves undefined);
- every MSI-X message of each vector in order: those aimed at host memory's message
  region, and DWORD writes to any address the model sent a message to (a table the host
  pointed anywhere);
- with a namespace hook, the RTL's namespace image against the model's, skipping the
  bytes failed commands left undefined.

A comparison that finds nothing to compare fails: :meth:`BenchTransport.compare` needs
at least ``minimum`` CQ entries, and :attr:`BenchTransport.compared` counts what was
compared over the bench's life.
"""

import bisect
from collections import Counter

from nvmecore.layouts import Cqe, Reg
from nvmetb.host.driver import is_cq_buffer
from nvmetb.host.transport import HostMemoryTransport
from nvmetb.hostmem import DeviceWrite, HostMemory
from nvmetb.model import split_access
from nvmetb.model.namespace import RangeSet
from nvmetb.packing import Packer

from .harness import CheckedCore, Mismatch

__all__ = ["BenchTransport", "MirrorMemory"]

CYCLES_PER_US = 250          # 250 MHz
_CQE = Packer(Cqe)
CQE_BYTES = _CQE.width // 8


def _int(value):
    """An enum-shaped field (SCT) as a plain integer, reserved values included."""
    return int(getattr(value, "value", value))


class MirrorMemory:
    """Sparse memory for the model: any address, zero until written; reads of a failing
    range raise (as the RTL's host memory answers them with an error). Stored in pages,
    so that megabytes of data cost no per-byte Python."""

    PAGE = 4096

    def __init__(self):
        self._pages: dict[int, bytearray] = {}
        self.failing = []

    def read(self, addr, n):
        if any(addr < hi and lo < addr + n for lo, hi in self.failing):
            raise OSError(f"injected read error at {addr:#x}")
        return self.peek(addr, n)

    def peek(self, addr, n):
        """The bytes at ``addr``, failing ranges or not."""
        out = bytearray()
        while len(out) < n:
            page, off = divmod(addr + len(out), self.PAGE)
            chunk = min(n - len(out), self.PAGE - off)
            store = self._pages.get(page)
            out += store[off:off + chunk] if store is not None else bytes(chunk)
        return bytes(out)

    def write(self, addr, data_):
        at = 0
        while at < len(data_):
            page, off = divmod(addr + at, self.PAGE)
            chunk = min(len(data_) - at, self.PAGE - off)
            store = self._pages.setdefault(page, bytearray(self.PAGE))
            store[off:off + chunk] = data_[at:at + chunk]
            at += chunk


#: Buffers whose device-written contents the contract leaves undefined: not compared.
UNDEFINED_BUFFERS = frozenset({"failing", "undefined"})


class _ModelSide:
    """The model's host memory: the mirror, with every write the model makes logged."""

    def __init__(self, mirror: MirrorMemory):
        self.mirror = mirror
        self.writes: list[DeviceWrite] = []

    def read(self, addr, n):
        return self.mirror.read(addr, n)

    def write(self, addr, data_):
        self.writes.append(DeviceWrite(addr, bytes(data_)))
        self.mirror.write(addr, data_)


class BenchTransport(HostMemoryTransport):
    # Registers whose value moves on its own while the host polls (CSTS after CC writes,
    # SHST once quiescent): compared in steady state only, by compare().
    VOLATILE = {Reg.CSTS}

    def __init__(self, core: CheckedCore, memory: HostMemory, *, namespace=None,
                 fail_namespace=None):
        """``namespace``: an async callable returning the RTL's namespace image (bytes of
        ``config.namespace_bytes``, e.g. read from the RAM disk or the AXI memory);
        :meth:`compare` checks it against the model's. ``fail_namespace(start, stop)``:
        makes the RTL's backend report media errors for commands touching namespace bytes
        ``[start, stop)`` (:meth:`fail_namespace` sets the model's to match)."""
        super().__init__(memory)
        self.core = core
        self.mirror = MirrorMemory()
        self.model_side = _ModelSide(self.mirror)
        core.model.memory = self.model_side
        self.namespace_image = namespace
        self._fail_namespace = fail_namespace
        # (RTL DMA writes, MSI-X messages, model DMA writes) before the last reset ...
        self._io_mark = (0, 0, 0)
        self._admin_mark = (0, 0, 0)  # ... and before the last forget_io(admin=True)
        #: What compare() has compared, over the bench's life: "cq entries", "data
        #: bytes", "msix messages".
        self.compared = Counter()

    @property
    def config(self):
        return self.core.config

    @property
    def media_faults(self):
        """Whether :meth:`fail_namespace` can inject media errors on this bench."""
        return self._fail_namespace is not None

    def fail_namespace(self, start, stop):
        """Commands touching namespace bytes [start, stop) fail with a media error, on
        the RTL's backend and in the model."""
        if self._fail_namespace is None:
            raise NotImplementedError("this bench's backend cannot inject media errors")
        self._fail_namespace(start, stop)
        self.core.model.fail_namespace(start, stop)

    def fail_reads(self, start, stop, kind=None, delay=0):
        """Device reads overlapping [start, stop) fail, for the RTL and the model alike;
        ``kind`` is how the bus reports it and ``delay`` how late a ``"late"`` one is
        answered (:meth:`HostMemory.fail_reads`)."""
        self.memory.fail_reads((start, stop), kind=kind, delay=delay)
        self.mirror.failing.append((start, stop))

    def clear_faults(self):
        self.memory.clear_faults()
        self.mirror.failing.clear()

    def forget_io(self, admin=False, undefined=()):
        """Stop comparing I/O completions and their interrupts so far; with ``admin``,
        the admin queue's too. ``undefined``: namespace byte ranges ``(start, stop)`` of
        Writes that were in flight, which the RTL may or may not have done (not compared
        until written again).

        Around a controller reset in the middle of traffic, which submitted commands the
        controller had fetched is a matter of timing: the model ran them all the moment
        their doorbell rang, the RTL only those fetched before CC.EN went to 0. The driver
        still checks every entry the RTL wrote (known CID, SQID and SQHD). A
        function-level reset in the middle of admin commands leaves their outcome to
        timing as well (``admin=True``; call :meth:`compare` before it)."""
        model = self.core.model
        for start, stop in undefined:
            model.store.mark_undefined(start, stop)
        for cqid in list(model.posted):
            if cqid != 0 or admin:
                model.posted[cqid].clear()
        admin_vector = self.msix_vector_address(0)[0]
        model.dma_writes[:] = [w for w in model.dma_writes
                               if w.addr == admin_vector and not admin]
        self._io_mark = (len(self.memory.writes), len(self.memory.msix_messages),
                         len(self.model_side.writes))
        if admin:
            self._admin_mark = self._io_mark

    # -- Transport ------------------------------------------------------------------------

    async def mmio_read(self, offset, size=4):
        addr, _, _ = split_access(offset, size)
        volatile = any(addr <= reg < addr + 8 for reg in self.VOLATILE)
        return await self.core.read(offset, size, compare=not volatile)

    async def mmio_write(self, offset, value, size=4):
        await self.core.write(offset, value, size)

    def mem_write(self, addr, data_):
        super().mem_write(addr, data_)
        self.mirror.write(addr, data_)

    def alloc(self, size, align=4096, *, offset=0, name=None, above_4g=None):
        addr = super().alloc(size, align, offset=offset, name=name, above_4g=above_4g)
        self.mirror.write(addr, bytes(size))
        return addr

    def free(self, addr):
        """Buffers are kept: the comparison reads every CQ's writes by buffer name, also
        for queues the driver has dropped."""

    async def pci_config(self, *, bus_master=None, msix_enable=None, msix_function_mask=None):
        await self.core.set_cfg(msix_enable=msix_enable, msix_function_mask=msix_function_mask,
                                bus_master_enable=bus_master)

    async def wait(self, us):
        cycles = max(1, int(us * CYCLES_PER_US))
        await self.core.wait(cycles)
        self.core.model.advance_time(cycles)

    def intx(self) -> bool:
        """The INTx level the RTL drives (the model's is compared by :meth:`compare`'s
        callers through :meth:`CheckedCore.check`)."""
        return bool(self.core.dut.intx())

    # -- Comparison ----------------------------------------------------------------------------

    def _classify(self):
        """The RTL's DMA writes since the marks: ``(CQ entries per CQ, data writes, MSI-X
        messages aimed outside the message region)``; and the model's data writes."""
        model = self.core.model
        slots = model.cq_slots
        message_addrs = {w.addr for w in model.dma_writes}
        entries, data_writes, messages = {}, [], []
        rings = self._cq_rings()
        for index, write in enumerate(self.memory.writes):
            cqid = slots.get(write.addr) if len(write.data) == CQE_BYTES else None
            if cqid is None and rings(write.addr, write.addr + len(write.data)):
                # An entry where the model wrote none (the model posts every entry it
                # expects: an extra completion, or one in the wrong place).
                raise Mismatch(f"the RTL wrote {len(write.data)} bytes at {write.addr:#x}, in "
                               f"a completion queue, where the model posted no entry")
            if cqid is not None:
                if index >= (self._io_mark if cqid else self._admin_mark)[0]:
                    entries.setdefault(cqid, []).append(
                        _CQE.unpack(int.from_bytes(write.data, "little")))
                continue
            if index < self._io_mark[0]:
                continue
            if len(write.data) == 4 and write.addr in message_addrs:
                messages.append((write.addr, int.from_bytes(write.data, "little")))
            else:
                data_writes.append(write)
        model_data = [w for w in self.model_side.writes[self._io_mark[2]:]
                      if not (len(w.data) == CQE_BYTES and w.addr in slots)]
        return entries, data_writes, messages, model_data

    def rtl_completions(self):
        """Every CQ entry the RTL wrote, per CQ, in order (from the DMA write log: a write
        to a slot where the model wrote an entry), each unpacked by
        :class:`~nvmetb.packing.Packer` (``entry.status.sc``, ...)."""
        return self._classify()[0]

    def _cq_rings(self):
        """Whether ``[start, stop)`` overlaps one of the host's completion queue
        buffers (as the driver names them: :func:`~nvmetb.host.driver.is_cq_buffer`), for
        :meth:`_classify`."""
        rings = sorted((b.addr, b.end) for b in self.memory.buffers if is_cq_buffer(b.name))
        starts = [a for a, _ in rings]

        def overlaps(start, stop):
            i = bisect.bisect_left(starts, stop) - 1      # the last ring starting below stop
            return i >= 0 and rings[i][1] > start
        return overlaps

    def _data_ranges(self, writes):
        ranges = RangeSet()
        for write in writes:
            ranges.add(write.addr, write.addr + len(write.data))
        for buffer in self.memory.buffers:
            if buffer.name in UNDEFINED_BUFFERS:
                ranges.remove(buffer.addr, buffer.end)
        return ranges

    async def compare(self, settle_us=2, minimum=1):
        """Compare everything since the last :meth:`forget_io` (see the module's doc);
        fail unless at least ``minimum`` CQ entries were compared."""
        await self.wait(settle_us)
        model = self.core.model
        rtl, rtl_data, rtl_messages, model_data = self._classify()
        compared = 0
        for cqid in sorted(set(rtl) | set(model.posted)):
            got = [(e.cid, e.dw2.sqid, _int(e.status.sct), e.status.sc, e.status.dnr, e.dw0,
                    e.status.p) for e in rtl.get(cqid, [])]
            want = [(e.cid, e.sqid, _int(e.status.sct), e.status.sc, int(e.status.dnr), e.dw0,
                     e.phase) for e in model.posted.get(cqid, [])]
            if cqid == 0:
                # Admin commands run one at a time and AER completions come from events
                # the host causes while no other admin command is in flight: one order.
                if got != want:
                    raise Mismatch(f"CQ 0: RTL {got}\n  model {want}")
            else:
                # I/O commands complete in any order (docs/io-commands.md): phase tags by
                # position, the entries themselves as a multiset.
                if [g[-1] for g in got] != [w[-1] for w in want]:
                    raise Mismatch(f"CQ {cqid}: phase tags RTL {[g[-1] for g in got]}, "
                                   f"model {[w[-1] for w in want]}")
                extra = Counter(g[:-1] for g in got) - Counter(w[:-1] for w in want)
                missing = Counter(w[:-1] for w in want) - Counter(g[:-1] for g in got)
                if extra or missing:
                    raise Mismatch(f"CQ {cqid} (CID, SQID, SCT, SC, DNR, DW0): only the RTL "
                                   f"posted {sorted(extra.elements())}, only the model "
                                   f"{sorted(missing.elements())}")
            compared += len(want)
        if compared < minimum:
            raise Mismatch(f"nothing to compare: {compared} completion queue entries since "
                           f"the last forget_io(), at least {minimum} expected")
        self.compared["cq entries"] += compared
        # Host-memory rules first: a write outside every buffer is reported as such.
        self.memory.check()
        # Data: the same bytes written, holding the same values, whatever the buffer.
        got, want = self._data_ranges(rtl_data), self._data_ranges(model_data)
        if list(got) != list(want):
            only_rtl, only_model = RangeSet(got), RangeSet(want)
            for a, b in want:
                only_rtl.remove(a, b)
            for a, b in got:
                only_model.remove(a, b)
            raise Mismatch(f"DMA data writes: only the RTL wrote "
                           f"{[(hex(a), b - a) for a, b in only_rtl][:4]}, only the model "
                           f"{[(hex(a), b - a) for a, b in only_model][:4]}")
        for a, b in got:
            rtl_bytes, model_bytes = self.memory.peek(a, b - a), self.mirror.peek(a, b - a)
            if rtl_bytes != model_bytes:
                first = next(i for i in range(b - a) if rtl_bytes[i] != model_bytes[i])
                raise Mismatch(f"data written at {a + first:#x}: RTL "
                               f"{rtl_bytes[first:first + 16].hex()} model "
                               f"{model_bytes[first:first + 16].hex()}")
            self.compared["data bytes"] += b - a
        admin_vector = self.msix_vector_address(0)[0]
        got = [(m.addr, m.data) for i, m in enumerate(self.memory.msix_messages)
               if i >= self._io_mark[1] or m.addr == admin_vector and i >= self._admin_mark[1]]
        got += rtl_messages
        want = [(w.addr, int.from_bytes(w.payload, "little")) for w in model.dma_writes]
        # Order across vectors is free; each vector's messages are compared in order.
        for vector in {addr for addr, _ in got} | {addr for addr, _ in want}:
            g = [d for a, d in got if a == vector]
            w = [d for a, d in want if a == vector]
            if g != w:
                raise Mismatch(f"MSI-X messages to {vector:#x}: RTL {g}, model {w}")
        self.compared["msix messages"] += len(want)
        if self.namespace_image is not None:
            problem = model.namespace_mismatch(await self.namespace_image())
            if problem:
                raise Mismatch(f"namespace: {problem}")
        await self.core.read_settled(Reg.CSTS)
