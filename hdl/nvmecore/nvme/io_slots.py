"""I/O slots: the commands the I/O engine holds, from fetch to completion.

A command that needs work takes the lowest free slot (``alloc``, whose ``tag`` the I/O
check stage reads before it hands the command on) with its :class:`SlotContext` and the
number of *parts* that must report before it is done (a mover, the backend, the DSM
unit). Parts report with :class:`IoEvent` s on ``events0`` .. ``events{n-1}`` (served round
robin, one per cycle); when a command's count reaches zero its completion is built from
the context and the status its parts reported, the slot is freed, and SMART / Health's
counters move. Commands the check stage completes at once (``direct``) never take a slot.
``completion`` carries both; each completion handshake is one command leaving the engine
(the fetch engine's ``io_returned``).

Status: the first error an event reports wins, except that a backend media error
(``media``) wins over a Compare Failure; a media error maps by command kind — Read and
Compare: Unrecovered Read Error, Write, Write Zeroes and Flush: Write Fault, Dataset
Management: Internal Error (docs/io-commands.md).

Abort [NVMe 1.4 §5.1]: ``abort`` names an SQ and a CID; the slots are scanned one per
cycle, and a data command that no mover has started yet (``start0`` / ``start1``) is
marked aborted (``aborted``): its mover completes it with Command Abort Requested.
``abort_hit`` is valid with the abort's handshake.

SMART / Health [NVMe 1.4 Figure 194]: successful Reads and Compares count as host read
commands and their 512-byte units as data read, successful Writes likewise as written;
units are kept as thousands and a remainder, so the log's value, rounded up, needs no
divider.
"""

from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..backend.interface import TAG_WIDTH
from ..bus import strobe
from ..config import CoreConfig
from ..layouts import Completion, GenericStatus, MediaStatus
from ..nvm_layouts import SECTOR_BYTES
from .io_layouts import OK, CmdKind, IoEvent, IoStatus, SlotContext, status_const
from .stream_arbiter import StreamArbiter

__all__ = ["IoSlots", "SlotAlloc", "AbortRequest", "SmartCounters"]


class SlotAlloc(data.StructLayout):
    def __init__(self, config: CoreConfig):
        super().__init__({"ctx": SlotContext(config), "parts": 8})


class AbortRequest(data.Struct):
    sqid: 16
    cid:  16


class SmartCounters(data.Struct):
    """SMART / Health's I/O counters: data units are ⌈512-byte units / 1000⌉."""
    data_units_read:     64
    data_units_written:  64
    host_read_commands:  64
    host_write_commands: 64


#: The kinds whose mover can still be stopped by an Abort.
_MOVED = (CmdKind.READ, CmdKind.WRITE, CmdKind.COMPARE, CmdKind.DSM)


class IoSlots(wiring.Component):
    def __init__(self, config: CoreConfig, event_sources):
        self._config = config
        self._sources = event_sources
        n = config.io_slots
        super().__init__({
            "alloc":      In(stream.Signature(SlotAlloc(config))),
            "tag":        Out(TAG_WIDTH),        # the slot `alloc` takes
            **{f"events{i}": In(stream.Signature(IoEvent)) for i in range(event_sources)},
            "direct":     In(stream.Signature(Completion)),
            "completion": Out(stream.Signature(Completion)),
            "start0":     In(strobe(data.StructLayout({"tag": TAG_WIDTH}))),
            "start1":     In(strobe(data.StructLayout({"tag": TAG_WIDTH}))),
            "aborted":    Out(n),
            "abort":      In(stream.Signature(AbortRequest)),
            "abort_hit":  Out(1),
            "smart":      Out(SmartCounters),
            "empty":      Out(1),                # no slot in use, no completion waiting
        })

    def elaborate(self, platform):  # noqa: C901
        m = Module()
        config = self._config
        n = config.io_slots
        sw = config.io_slot_width
        ctx_layout = SlotContext(config)

        m.submodules.ctx = ctx_mem = memory.Memory(shape=ctx_layout, depth=n, init=[])
        ctx_wr = ctx_mem.write_port()
        ctx_rd = ctx_mem.read_port()               # completions
        scan_rd = ctx_mem.read_port()              # abort scan

        used = Signal(n)
        started = Signal(n)
        aborted = Signal(n)
        parts = Array(Signal(8, name=f"parts{i}") for i in range(n))
        status_bits = data.Layout.cast(IoStatus).size
        ok = OK.as_bits()
        status = Array(Signal(status_bits, name=f"status{i}") for i in range(n))
        media = Array(Signal(name=f"media{i}") for i in range(n))
        m.d.comb += self.aborted.eq(aborted)

        # -- Allocation: the lowest free slot ------------------------------------------------
        free = Signal()
        tag = Signal(sw)
        for i in reversed(range(n)):
            with m.If(~used[i]):
                m.d.comb += [tag.eq(i), free.eq(1)]
        alloc = self.alloc
        m.d.comb += [self.tag.eq(tag), alloc.ready.eq(free)]
        set_used = Signal(n)
        set_started = Signal(n)
        clear_slot = Signal(n)
        with m.If(alloc.valid & alloc.ready):
            m.d.comb += [
                ctx_wr.addr.eq(tag), ctx_wr.data.eq(alloc.p.ctx), ctx_wr.en.eq(1),
                set_used.eq(1 << tag),
            ]
            moved = Cat(*(alloc.p.ctx.kind == kind for kind in _MOVED)).any()
            with m.If(~moved):
                m.d.comb += set_started.eq(1 << tag)
            m.d.sync += [parts[tag].eq(alloc.p.parts), status[tag].eq(ok), media[tag].eq(0)]

        # -- Events, round robin, one per cycle --------------------------------------------------
        m.submodules.events = events = StreamArbiter(IoEvent, self._sources)
        for i, source in enumerate(events.inputs):
            wiring.connect(m, wiring.flipped(getattr(self, f"events{i}")), source)
        # The arbiter's choice is registered before it moves a count (a LUT-depth cut: the
        # parts' event logic and the count's add stay out of one path).
        event = Signal(IoEvent)
        event_valid = Signal()
        m.d.comb += events.out.ready.eq(1)
        m.d.sync += [event_valid.eq(events.out.valid), event.eq(events.out.p)]
        # (a tag per finished command, in distributed RAM: SyncFIFO hands it on the cycle
        # after it is written, a cycle before SyncFIFOBuffered would)
        m.submodules.finished = finished = fifo.SyncFIFO(width=sw, depth=n)
        # A command that finishes while nothing else waits for the completion register
        # skips the FIFO: the slot context read port already shows its tag's entry the
        # next cycle (it follows the event's tag while idle; see below).
        done_tag = Signal(sw)
        reading = Signal()                     # ctx_rd shows done_tag's context next cycle
        straight = Signal()
        with m.If(event_valid):
            t = event.tag[:sw]
            left = Signal(8)
            m.d.comb += left.eq(parts[t] + event.delta)
            m.d.sync += parts[t].eq(left)
            with m.If(status[t] == ok):
                m.d.sync += status[t].eq(event.status.as_value())
            with m.If(event.media):
                m.d.sync += media[t].eq(1)
            with m.If(left == 0):
                with m.If(~reading & ~finished.r_rdy):
                    m.d.comb += straight.eq(1)
                with m.Else():
                    m.d.comb += [finished.w_en.eq(1), finished.w_data.eq(t)]

        # -- Completions -----------------------------------------------------------------------
        out = self.completion
        # (the address: the tag being completed, else the FIFO's head, else the event's tag;
        # selected by registers only)
        m.d.comb += [ctx_rd.addr.eq(Mux(reading, done_tag,
                                        Mux(finished.r_rdy, finished.r_data, event.tag[:sw]))),
                     ctx_rd.en.eq(~reading)]
        ctx = ctx_rd.data
        final = Signal(IoStatus)
        media_status = Signal(IoStatus)
        with m.Switch(ctx.kind):
            with m.Case(CmdKind.READ, CmdKind.COMPARE):
                m.d.comb += media_status.eq(status_const(MediaStatus.UNRECOVERED_READ_ERROR))
            with m.Case(CmdKind.DSM):
                m.d.comb += media_status.eq(status_const(GenericStatus.INTERNAL_ERROR))
            with m.Default():
                m.d.comb += media_status.eq(status_const(MediaStatus.WRITE_FAULT))
        # A media error wins over a Compare Failure (the namespace data could not be read:
        # the mismatch means nothing), not over a data transfer or PRP error.
        compare_failure = status_const(MediaStatus.COMPARE_FAILURE, dnr=True).as_bits()
        own = status[done_tag]
        m.d.comb += final.eq(Mux((own != ok) & ~(media[done_tag] & (own == compare_failure)),
                                 own, Mux(media[done_tag], media_status, ok)))

        read_cmds = Signal(64)
        write_cmds = Signal(64)
        read_rem = Signal(range(2000))             # units past the thousands, < 1000
        write_rem = Signal(range(2000))
        read_k = Signal(64)
        write_k = Signal(64)
        m.d.comb += [
            self.smart.host_read_commands.eq(read_cmds),
            self.smart.host_write_commands.eq(write_cmds),
            self.smart.data_units_read.eq(read_k + (read_rem != 0)),
            self.smart.data_units_written.eq(write_k + (write_rem != 0)),
        ]

        def add_units(k, rem, units):
            total = rem + units
            with m.If(total >= 2000):
                m.d.sync += [k.eq(k + 2), rem.eq(total - 2000)]
            with m.Elif(total >= 1000):
                m.d.sync += [k.eq(k + 1), rem.eq(total - 1000)]
            with m.Else():
                m.d.sync += rem.eq(total)

        with m.If(out.valid & out.ready):
            m.d.sync += out.valid.eq(0)
        with m.If(reading):
            with m.If(~out.valid | out.ready):
                m.d.sync += [
                    out.valid.eq(1),
                    out.p.dw0.eq(0),
                    out.p.nsid.eq(ctx.nsid),
                    out.p.lba.eq(Mux((ctx.kind == CmdKind.FLUSH) | (ctx.kind == CmdKind.DSM),
                                     0, ctx.slba)),
                    out.p.sqid.eq(ctx.sqid),
                    out.p.cqid.eq(ctx.cqid),
                    out.p.cid.eq(ctx.cid),
                    out.p.sc.eq(final.sc),
                    out.p.sct.eq(final.sct),
                    out.p.dnr.eq(final.dnr),
                    reading.eq(0),
                ]
                m.d.comb += clear_slot.eq(1 << done_tag)
                units = ctx.bytes >> (SECTOR_BYTES.bit_length() - 1)
                with m.If(final == OK):
                    with m.If((ctx.kind == CmdKind.READ) | (ctx.kind == CmdKind.COMPARE)):
                        m.d.sync += read_cmds.eq(read_cmds + 1)
                        add_units(read_k, read_rem, units)
                    with m.If(ctx.kind == CmdKind.WRITE):
                        m.d.sync += write_cmds.eq(write_cmds + 1)
                        add_units(write_k, write_rem, units)
        with m.Elif(finished.r_rdy):
            m.d.comb += finished.r_en.eq(1)
            m.d.sync += [done_tag.eq(finished.r_data), reading.eq(1)]
        with m.Elif(straight):
            m.d.sync += [done_tag.eq(event.tag[:sw]), reading.eq(1)]
        with m.Elif(self.direct.valid & (~out.valid | out.ready)):
            m.d.comb += self.direct.ready.eq(1)
            m.d.sync += [out.valid.eq(1), out.p.eq(self.direct.p)]

        # -- Abort: scan the slots for (SQID, CID) -----------------------------------------------
        scanning = Signal()
        scan = Signal(range(n + 1))
        probe = Signal(range(n))                   # the slot scan_rd shows
        probing = Signal()
        req = self.abort
        m.d.comb += [scan_rd.addr.eq(scan), scan_rd.en.eq(1)]
        hit = Signal()
        set_aborted = Signal(n)
        with m.If(req.valid & ~scanning):
            m.d.sync += [scanning.eq(1), scan.eq(0), probing.eq(0)]
        with m.If(scanning):
            m.d.sync += [scan.eq(scan + 1), probe.eq(scan), probing.eq(scan < n)]
            match = (probing & used.bit_select(probe, 1) & ~started.bit_select(probe, 1)
                     & (scan_rd.data.sqid == req.p.sqid) & (scan_rd.data.cid == req.p.cid))
            # A mover starting the command in this very cycle wins over the abort.
            racing = ((self.start0.valid & (self.start0.tag[:sw] == probe))
                      | (self.start1.valid & (self.start1.tag[:sw] == probe)))
            with m.If(match & ~racing):
                m.d.comb += [hit.eq(1), set_aborted.eq(1 << probe)]
            with m.If((match & ~racing) | (probing & (probe == n - 1))):
                m.d.comb += [req.ready.eq(1), self.abort_hit.eq(match & ~racing)]
                m.d.sync += scanning.eq(0)

        starts = Signal(n)
        for i in range(n):
            m.d.comb += starts[i].eq(Cat(*(s.valid & (s.tag == i)
                                           for s in (self.start0, self.start1))).any())
        m.d.sync += [
            used.eq((used | set_used) & ~clear_slot),
            started.eq((started | set_started | starts) & ~clear_slot),
            aborted.eq((aborted | set_aborted) & ~clear_slot),
        ]
        m.d.comb += self.empty.eq(~used.any() & ~out.valid & ~self.direct.valid)
        return m
