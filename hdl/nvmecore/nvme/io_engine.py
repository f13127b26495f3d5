"""NVM I/O engine: the I/O command set in gateware (docs/io-commands.md), between the
command router and the backend (docs/backend.md).

::

    cmd → IoCheck ─┬─ direct completions ───────────────────────────────┐
                   ├─ Flush / Write Zeroes ──────────────────► backend   │
                   └─ jobs → PrpWalker ─┬─ to host: ToHost ──► DMA write │
                          (PRP lists)   └─ from host: FromHost ─┬─ backend wdata
                                                                ├─ compare
                                                                └─ DsmUnit ─► backend
    parts done (IoEvent) → IoSlots → completion

Every queue inside holds a command per slot (or admits work only for the room it has),
so the engine takes each fetched command at once and its DMA reads' data never waits: no
command can block another (see the module docstrings). Format NVM comes from the admin
engine (``format``): new I/O commands get Format In Progress, the engine waits until no
command is in flight, zeroes the namespace and switches the LBA format; the format lives
in a reset-less register, like the namespace it describes. An Abort (``abort``) reaches
the slots.
"""

from amaranth import ClockDomain, ClockSignal, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..backend.interface import BackendCommand, BackendOp, BackendPort, BackendStatus
from ..bus import DmaRead, DmaWrite
from ..config import CoreConfig
from ..fifo import BypassFIFO
from ..layouts import Completion, GenericStatus
from .dma_read_mux import DmaReadArbiter
from .dsm import DsmUnit
from .from_host import FromHost
from .io_check import IoCheck
from .io_layouts import FORMAT_TAG, OK, IoEvent, IoStatus, status_const
from .io_slots import AbortRequest, IoSlots, SmartCounters
from .prp_walker import PrpJob, PrpWalker
from .ready_skid import ReadySkid
from .sq_fetch import FetchedCommand
from .stream_arbiter import StreamArbiter
from .to_host import ToHost

__all__ = ["IoEngine", "FormatRequest"]


class FormatRequest(data.Struct):
    lbaf: 1          # the LBA format index (NLBAF = 1)


class IoEngine(wiring.Component):
    def __init__(self, config: CoreConfig):
        self._config = config
        width = config.data_width
        aw = config.namespace_addr_width
        super().__init__({
            "cmd":        In(stream.Signature(FetchedCommand(config))),
            "completion": Out(stream.Signature(Completion)),
            "dma_rd":     Out(DmaRead(width)),
            "dma_wr":     Out(DmaWrite(width)),
            "backend":    Out(BackendPort(width, aw)),
            "flr":        In(1),                     # drives the backend's abort
            "max_payload_size": In(3),
            "max_read_request_size": In(3),
            "format":     In(stream.Signature(FormatRequest)),
            "format_status": Out(IoStatus),          # valid with the format's handshake
            "abort":      In(stream.Signature(AbortRequest)),
            "abort_hit":  Out(1),
            "lba_format": Out(1),
            "smart":      Out(SmartCounters),
            "idle":       Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        n = config.io_slots
        aw = config.namespace_addr_width

        m.submodules.check = check = IoCheck(config)
        m.submodules.walker = walker = PrpWalker(config.data_width, aw)
        m.submodules.to_host = to_host = ToHost(config)
        m.submodules.from_host = from_host = FromHost(config)
        m.submodules.dsm = dsm = DsmUnit(config)
        # Event sources: ToHost (done, not run), FromHost (done, not run), DSM, backend.
        m.submodules.slots = slots = IoSlots(config, event_sources=6)

        # -- The LBA format: reset-less, like the namespace ---------------------------------
        m.domains.nvm = ClockDomain("nvm", reset_less=True, local=True)
        m.d.comb += ClockSignal("nvm").eq(ClockSignal("sync"))
        lba_format = Signal(init=config.lba_format)
        formatting = Signal()
        m.d.comb += [self.lba_format.eq(lba_format), check.lba_format.eq(lba_format),
                     check.formatting.eq(formatting), dsm.lba_format.eq(lba_format)]

        # -- Check stage → slots, walker jobs, backend-only commands ------------------------------
        wiring.connect(m, wiring.flipped(self.cmd), check.cmd)
        wiring.connect(m, check.alloc, slots.alloc)
        m.d.comb += check.tag.eq(slots.tag)
        wiring.connect(m, check.direct, slots.direct)
        wiring.connect(m, slots.completion, wiring.flipped(self.completion))
        m.submodules.jobs = jobs = fifo.SyncFIFOBuffered(
            width=data.Layout.cast(PrpJob(aw)).size, depth=n)
        m.d.comb += [
            jobs.w_data.eq(check.job.p), jobs.w_en.eq(check.job.valid),
            check.job.ready.eq(jobs.w_rdy),
            walker.job.p.eq(jobs.r_data), walker.job.valid.eq(jobs.r_rdy),
            jobs.r_en.eq(walker.job.ready),
        ]
        cmd_width = data.Layout.cast(BackendCommand(aw)).size
        # (Flush, Write Zeroes: reach the backend the cycle after the check stage)
        m.submodules.plain = plain = BypassFIFO(width=cmd_width, depth=n)
        m.d.comb += [plain.w_data.eq(check.backend.p), plain.w_en.eq(check.backend.valid),
                     check.backend.ready.eq(plain.w_rdy)]

        # -- Walker → movers -----------------------------------------------------------------------
        m.d.comb += walker.max_read_request_size.eq(self.max_read_request_size)
        wiring.connect(m, walker.seg0, to_host.seg)
        wiring.connect(m, walker.tok0, to_host.tok)
        wiring.connect(m, walker.seg1, from_host.seg)
        wiring.connect(m, walker.tok1, from_host.tok)
        for mover, start in ((to_host, slots.start0), (from_host, slots.start1)):
            m.d.comb += [mover.aborted.eq(slots.aborted), start.eq(mover.start)]
        m.d.comb += [to_host.max_payload_size.eq(self.max_payload_size),
                     from_host.max_read_request_size.eq(self.max_read_request_size)]
        wiring.connect(m, to_host.dma, wiring.flipped(self.dma_wr))
        wiring.connect(m, from_host.dsm, dsm.list)

        # -- DMA reads: PRP lists and host data share the engine's read port -----------------------
        m.submodules.reads = reads = DmaReadArbiter(config.data_width, 2, depth=64)
        wiring.connect(m, walker.dma, reads.in0)
        wiring.connect(m, from_host.dma, reads.in1)
        wiring.connect(m, reads.out, wiring.flipped(self.dma_rd))
        m.d.comb += reads.bus_master_enable.eq(1)     # the core's own arbiter gates it

        # -- Backend commands, read data and dones -----------------------------------------------
        back = self.backend
        fmt_cmd = stream.Signature(BackendCommand(aw)).create()
        plain_out = stream.Signature(BackendCommand(aw)).create()
        m.d.comb += [plain_out.p.eq(plain.r_data), plain_out.valid.eq(plain.r_rdy),
                     plain.r_en.eq(plain_out.ready)]
        # (The to-host mover's READs through a registered-ready skid buffer: the arbiter's
        # grant then does not run on into the mover's token and the PRP walker's FIFO.)
        m.submodules.read_skid = read_skid = ReadySkid(BackendCommand(aw))
        wiring.connect(m, to_host.backend, read_skid.i)
        sources = [read_skid.o, from_host.backend, dsm.backend, plain_out, fmt_cmd]
        m.submodules.commands = commands = StreamArbiter(BackendCommand(aw), len(sources))
        for source, port in zip(sources, commands.inputs, strict=True):
            wiring.connect(m, source, port)
        # READs come back in order: note whose each one is (ToHost, or FromHost's Compare).
        m.submodules.readers = readers = fifo.SyncFIFOBuffered(width=1, depth=16)
        is_read = commands.out.p.op == BackendOp.READ
        m.d.comb += [
            back.cmd.p.eq(commands.out.p),
            back.cmd.valid.eq(commands.out.valid & (~is_read | readers.w_rdy)),
            commands.out.ready.eq(back.cmd.ready & (~is_read | readers.w_rdy)),
            readers.w_en.eq(back.cmd.valid & back.cmd.ready & is_read),
            readers.w_data.eq(commands.grant == 1),
        ]
        compare_read = readers.r_data[0]
        for dest, mine in ((to_host.rdata, ~compare_read), (from_host.crdata, compare_read)):
            m.d.comb += [dest.p.eq(back.rdata.p), dest.valid.eq(back.rdata.valid & readers.r_rdy
                                                               & mine)]
        m.d.comb += [
            back.rdata.ready.eq(readers.r_rdy & Mux(compare_read, from_host.crdata.ready,
                                                    to_host.rdata.ready)),
            readers.r_en.eq(back.rdata.valid & back.rdata.ready & back.rdata.p.last),
        ]
        wiring.connect(m, from_host.wdata, wiring.flipped(back.wdata))
        m.d.comb += back.abort.eq(self.flr)

        done = back.done
        done_event = stream.Signature(IoEvent).create()
        for_format = done.p.tag == FORMAT_TAG
        m.d.comb += [
            done_event.p.tag.eq(done.p.tag), done_event.p.status.eq(OK),
            done_event.p.media.eq(done.p.status == BackendStatus.ERROR),
            done_event.p.delta.eq(-1),
            done_event.valid.eq(done.valid & ~for_format),
        ]
        events = [to_host.event, to_host.fail_event, from_host.event, from_host.fail_event,
                  dsm.event, done_event]
        for i, source in enumerate(events):
            wiring.connect(m, source, getattr(slots, f"events{i}"))

        # -- Abort, SMART ----------------------------------------------------------------------
        wiring.connect(m, wiring.flipped(self.abort), slots.abort)
        m.d.comb += [self.abort_hit.eq(slots.abort_hit), self.smart.eq(slots.smart)]

        busy = ~(check.idle & slots.empty & ~jobs.r_rdy & ~plain.r_rdy & walker.idle
                 & to_host.idle & from_host.idle & dsm.idle & ~readers.r_rdy & reads.idle
                 & read_skid.empty)

        # -- Format NVM ----------------------------------------------------------------------------
        req = self.format
        fmt_error = Signal()
        m.d.comb += [
            fmt_cmd.p.op.eq(BackendOp.ZERO), fmt_cmd.p.tag.eq(FORMAT_TAG),
            fmt_cmd.p.addr.eq(0), fmt_cmd.p.length.eq(config.namespace_bytes),
            self.format_status.eq(Mux(fmt_error, status_const(GenericStatus.INTERNAL_ERROR),
                                      OK)),
        ]
        with m.FSM(name="format"):
            with m.State("IDLE"):
                with m.If(req.valid):
                    m.d.sync += formatting.eq(1)
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                # Commands taken before the format run to completion first.
                with m.If(~busy):
                    m.next = "ZERO"
            with m.State("ZERO"):
                m.d.comb += fmt_cmd.valid.eq(1)
                with m.If(fmt_cmd.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += done.ready.eq(for_format)
                with m.If(done.valid & for_format):
                    m.d.sync += fmt_error.eq(done.p.status == BackendStatus.ERROR)
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += req.ready.eq(1)
                m.d.sync += formatting.eq(0)
                with m.If(~fmt_error):
                    m.d.nvm += lba_format.eq(req.p.lbaf)
                m.next = "IDLE"
        with m.If(~for_format):
            m.d.comb += done.ready.eq(done_event.ready)

        m.d.comb += self.idle.eq(~busy & ~formatting)
        return m
