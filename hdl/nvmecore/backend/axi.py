"""The AXI4 backend: the namespace in memory behind an AXI4 master (DDR4, HBM).

Commands split by direction into two small FIFOs, then into bursts
(:class:`BurstIssuer`): INCR, full width, at most :func:`max_burst_beats` beats (4 KiB, or
256 beats when ``W`` = 64), aligned to their own size so that none crosses a 4 KiB
boundary [AMBA AXI4 A3.4.1]. Every transaction carries ID ``axi_id``, so responses come
back in order [AMBA AXI4 A5.3.1] and one FIFO per direction says which command each
burst belongs to.

Read side: AR bursts while fewer than ``axi_outstanding`` are in flight; R beats pass
straight to ``rdata`` (``rready`` is ``rdata.ready``), the command's ``last`` on the last
beat of its last burst; ``done`` after that beat, ERROR if any beat of the command came
back SLVERR or DECERR (its data is still delivered).

Write side: AW bursts while fewer than ``axi_outstanding`` are in flight (issued AW, B not
yet in); the W beats of a burst start after its AW handshake, from a W register fed by
``wdata`` (WRITE) or zeroes (ZERO), WSTRB all ones; B is always ready. ``done`` when the B
of the command's last burst is in, ERROR if any of its B responses was SLVERR or DECERR.
FLUSH waits at the head of the write queue until every burst issued before it has its B.

``abort``: AXI transactions are never cut short. While ``abort`` is high, and afterwards
until every burst in flight has finished, the backend is *draining*: it accepts no
command, drops its queues and the commands being split, issues no new burst (an AR or AW
already offered stays valid until taken, as AXI requires), sends the remaining W beats of
issued AWs with WSTRB = 0 (nothing written), takes every R and B and drops them, and
offers nothing on ``rdata`` or ``done``. Then it is idle and takes commands again.

Every AXI output is a register or a constant, except ``rready`` / ``bready`` (from
``rdata.ready``, ``abort`` and the backend's state; they never depend on RVALID /
BVALID).
"""

from amaranth import Const, Module, Mux, ResetInserter, Signal
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import CoreConfig
from .interface import (
    TAG_WIDTH,
    BackendCommand,
    BackendOp,
    BackendPort,
    BackendStatus,
    split_by_direction,
)
from .merge import DoneMerge

__all__ = ["AxiBurst", "AxiResp", "Axi4Signature", "AXI_CACHE", "AXI_PROT", "AXI_QOS",
           "max_burst_beats", "BurstIssuer", "AxiBackend"]


class AxiBurst(enum.Enum, shape=2):
    """AxBURST [AMBA AXI4 A3.4.1]."""
    FIXED = 0
    INCR  = 1
    WRAP  = 2


class AxiResp(enum.Enum, shape=2):
    """RRESP / BRESP [AMBA AXI4 A3.4.4]. Bit 1 set means the access failed."""
    OKAY   = 0
    EXOKAY = 1
    SLVERR = 2
    DECERR = 3


#: AxCACHE: normal non-cacheable bufferable (0011b), as Xilinx's masters use for memory.
AXI_CACHE = 0b0011
#: AxPROT: unprivileged, secure, data.
AXI_PROT = 0b000
#: AxQOS: no QoS scheme.
AXI_QOS = 0


class Axi4Signature(wiring.Signature):
    """An AXI4 master port [AMBA AXI4 A2], members named as the specification's signals
    in lower case (``awaddr``, ``awvalid``, ...). Flattened in Verilog as
    ``<name>__awaddr``; cocotbext-axi reaches them with ``AxiBus.from_prefix(dut,
    "<name>_")``. No AxREGION or user signals."""

    def __init__(self, addr_width, data_width, id_width):
        self.addr_width = addr_width
        self.data_width = data_width
        self.id_width = id_width
        members = {}
        for ax in ("aw", "ar"):
            members.update({
                f"{ax}id":    Out(id_width),
                f"{ax}addr":  Out(addr_width),
                f"{ax}len":   Out(8),
                f"{ax}size":  Out(3),
                f"{ax}burst": Out(AxiBurst),
                f"{ax}lock":  Out(1),
                f"{ax}cache": Out(4),
                f"{ax}prot":  Out(3),
                f"{ax}qos":   Out(4),
                f"{ax}valid": Out(1),
                f"{ax}ready": In(1),
            })
            if ax == "aw":
                members.update({
                    "wdata":  Out(data_width),
                    "wstrb":  Out(data_width // 8),
                    "wlast":  Out(1),
                    "wvalid": Out(1),
                    "wready": In(1),
                    "bid":    In(id_width),
                    "bresp":  In(AxiResp),
                    "bvalid": In(1),
                    "bready": Out(1),
                })
        members.update({
            "rid":    In(id_width),
            "rdata":  In(data_width),
            "rresp":  In(AxiResp),
            "rlast":  In(1),
            "rvalid": In(1),
            "rready": Out(1),
        })
        super().__init__(members)

    def __eq__(self, other):
        return (isinstance(other, Axi4Signature) and other.addr_width == self.addr_width
                and other.data_width == self.data_width and other.id_width == self.id_width)

    def __repr__(self):
        return f"Axi4Signature({self.addr_width}, {self.data_width}, {self.id_width})"


def max_burst_beats(data_width):
    """Beats of the longest burst: 4 KiB [AMBA AXI4 A3.4.1], at most 256 (AxLEN is 8 bits)."""
    return min(256, 4096 // (data_width // 8))


class Burst(data.StructLayout):
    """One burst as :class:`BurstIssuer` offers it: its AXI address and AxLEN, the
    command's tag, whether it is the command's last burst, and whether it writes
    zeroes."""

    def __init__(self, axi_addr_width):
        super().__init__({
            "addr":  axi_addr_width,
            "len":   8,
            "tag":   TAG_WIDTH,
            "final": 1,
            "zero":  1,
        })


class BurstIssuer(wiring.Component):
    """Splits commands into bursts, one command at a time.

    ``cmd`` takes READ, WRITE and ZERO commands (split into ``burst``) and FLUSH (offered
    on ``flush`` with its tag until taken). ``burst`` is a register: a burst is loaded
    into it (``load``) when ``allow`` is high and it is empty or being taken, so it can
    drive AxVALID and the Ax* payload directly. ``stop`` drops the command being split
    and takes no new one; a burst already offered stays offered until taken.
    """

    def __init__(self, config: CoreConfig):
        self._config = config
        aw = config.namespace_addr_width
        super().__init__({
            "cmd":   In(stream.Signature(BackendCommand(aw))),
            "burst": Out(stream.Signature(Burst(config.axi_addr_width))),
            "flush": Out(stream.Signature(TAG_WIDTH)),
            "allow": In(1),
            "stop":  In(1),
            "load":  Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        aw = config.namespace_addr_width
        shift = (config.data_width // 8 - 1).bit_length()
        most = max_burst_beats(config.data_width)
        window = (most - 1).bit_length()                # low word bits inside a burst slot

        busy = Signal()
        op = Signal(BackendOp)
        tag = Signal(TAG_WIDTH)
        word = Signal(aw - shift)
        left = Signal(aw + 1 - shift)

        # Bursts fill aligned slots of `most` beats (4 KiB or less, dividing 4 KiB).
        room = Signal(window + 1)
        m.d.comb += room.eq(most - word[:window])
        beats = Mux(left < room, left, room)
        final = left <= room

        m.d.comb += [
            self.cmd.ready.eq(~busy & ~self.stop),
            self.flush.valid.eq(busy & (op == BackendOp.FLUSH) & ~self.stop),
            self.flush.payload.eq(tag),
            self.load.eq(busy & (op != BackendOp.FLUSH) & self.allow & ~self.stop
                         & (~self.burst.valid | self.burst.ready)),
        ]
        with m.If(self.load):
            m.d.sync += [
                self.burst.valid.eq(1),
                self.burst.payload.addr.eq(config.axi_base + (word << shift)),
                self.burst.payload.len.eq(beats - 1),
                self.burst.payload.tag.eq(tag),
                self.burst.payload.final.eq(final),
                self.burst.payload.zero.eq(op == BackendOp.ZERO),
                word.eq(word + beats),
                left.eq(left - beats),
            ]
            with m.If(final):
                m.d.sync += busy.eq(0)
        with m.Elif(self.burst.ready):
            m.d.sync += self.burst.valid.eq(0)
        with m.If(self.flush.valid & self.flush.ready):
            m.d.sync += busy.eq(0)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [
                busy.eq(1), op.eq(self.cmd.payload.op), tag.eq(self.cmd.payload.tag),
                word.eq(self.cmd.payload.addr[shift:]),
                left.eq(self.cmd.payload.length[shift:]),
            ]
        with m.If(self.stop):
            m.d.sync += busy.eq(0)
        return m


class AxiBackend(wiring.Component):
    """The namespace at ``axi_base`` in an AXI4 address space (``CoreConfig.backend =
    "axi"``).

    ``port`` is the target side of :class:`~nvmecore.backend.interface.BackendPort`;
    ``axi`` is the master side of :class:`Axi4Signature` (``axi_addr_width``,
    ``data_width``, ``axi_id_width``). ``queue_depth`` is the depth of each direction's
    command FIFO.
    """

    def __init__(self, config: CoreConfig, *, queue_depth=2):
        self._config = config
        self._queue_depth = queue_depth
        super().__init__({
            "port": In(BackendPort(config.data_width, config.namespace_addr_width)),
            "axi":  Out(Axi4Signature(config.axi_addr_width, config.data_width,
                                      config.axi_id_width)),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        port, axi = self.port, self.axi
        beat_bytes = config.data_width // 8
        outstanding = config.axi_outstanding
        command = data.Layout.cast(BackendCommand(config.namespace_addr_width))

        # -- Abort: drain what AXI has in flight, then idle --------------------------------
        draining = Signal()
        drain = Signal()
        r_inflight = Signal(range(outstanding + 1))     # AR offered or issued, last R not in
        w_inflight = Signal(range(outstanding + 1))     # AW offered or issued, B not in
        m.d.comb += drain.eq(port.abort | draining)
        with m.If(port.abort):
            m.d.sync += draining.eq(1)
        with m.Elif((r_inflight == 0) & (w_inflight == 0)):
            m.d.sync += draining.eq(0)

        # -- Commands, split by direction ----------------------------------------------------
        rq = fifo.SyncFIFO(width=command.size, depth=self._queue_depth)
        wq = fifo.SyncFIFO(width=command.size, depth=self._queue_depth)
        m.submodules.rq = ResetInserter(drain)(rq)      # the queues empty while draining
        m.submodules.wq = ResetInserter(drain)(wq)
        split_by_direction(m, port.cmd, rq, wq, drain)

        m.submodules.ar_issue = ar_issue = BurstIssuer(config)
        m.submodules.aw_issue = aw_issue = BurstIssuer(config)
        for issue, queue in ((ar_issue, rq), (aw_issue, wq)):
            m.d.comb += [
                issue.cmd.valid.eq(queue.r_rdy & ~drain),
                issue.cmd.payload.eq(queue.r_data),
                issue.stop.eq(drain),
                queue.r_en.eq(issue.cmd.ready),
            ]

        size = Const((beat_bytes - 1).bit_length(), 3)
        for ax, issue in (("ar", ar_issue), ("aw", aw_issue)):
            burst = issue.burst.payload
            m.d.comb += [
                getattr(axi, f"{ax}id").eq(config.axi_id),
                getattr(axi, f"{ax}addr").eq(burst.addr),
                getattr(axi, f"{ax}len").eq(burst.len),
                getattr(axi, f"{ax}size").eq(size),
                getattr(axi, f"{ax}burst").eq(AxiBurst.INCR),
                getattr(axi, f"{ax}lock").eq(0),
                getattr(axi, f"{ax}cache").eq(AXI_CACHE),
                getattr(axi, f"{ax}prot").eq(AXI_PROT),
                getattr(axi, f"{ax}qos").eq(AXI_QOS),
                getattr(axi, f"{ax}valid").eq(issue.burst.valid),
                issue.burst.ready.eq(getattr(axi, f"{ax}ready")),
            ]

        merge = DoneMerge()
        m.submodules.merge = ResetInserter(drain)(merge)
        r_done, w_done = merge.a, merge.b

        # Which command each burst in flight belongs to, in issue order (one ID, so the
        # responses come back in that order): pushed at the AR / AW handshake.
        owner = data.StructLayout({"tag": TAG_WIDTH, "final": 1})
        # They never hold more than `outstanding` entries (depth 1 would give SyncFIFO
        # zero-bit pointers).
        info_depth = max(2, outstanding)

        # -- Read side -----------------------------------------------------------------------
        m.submodules.r_info = r_info = fifo.SyncFIFO(width=owner.size, depth=info_depth)
        r_push = data.View(owner, r_info.w_data)
        r_head = data.View(owner, r_info.r_data)
        m.d.comb += [
            ar_issue.allow.eq(r_inflight < outstanding),
            r_info.w_en.eq(axi.arvalid & axi.arready),
            r_push.tag.eq(ar_issue.burst.payload.tag),
            r_push.final.eq(ar_issue.burst.payload.final),
        ]
        last_beat = axi.rvalid & axi.rlast & r_head.final     # of the command
        r_failed = Signal()                                    # an earlier beat failed
        beat_failed = axi.rresp.as_value()[1]                             # SLVERR or DECERR
        slot_ok = ~last_beat | ~r_done.valid
        m.d.comb += [
            port.rdata.valid.eq(axi.rvalid & slot_ok & ~drain),
            port.rdata.payload.data.eq(axi.rdata),
            port.rdata.payload.last.eq(last_beat),
            axi.rready.eq(drain | port.rdata.ready & slot_ok),
        ]
        r_beat = axi.rvalid & axi.rready
        r_end = r_beat & axi.rlast                             # of a burst
        m.d.comb += r_info.r_en.eq(r_end)
        with m.If(r_beat):
            m.d.sync += r_failed.eq((r_failed | beat_failed) & ~last_beat)
        m.d.sync += r_inflight.eq(r_inflight + ar_issue.load - r_end)
        with m.If(r_beat & last_beat & ~drain):
            m.d.sync += [r_done.valid.eq(1), r_done.payload.tag.eq(r_head.tag),
                         r_done.payload.status.eq(Mux(r_failed | beat_failed,
                                                      BackendStatus.ERROR, BackendStatus.OK))]
        with m.Elif(r_done.ready):
            m.d.sync += r_done.valid.eq(0)

        # -- Write side: AW, then the W beats, B -----------------------------------------------
        m.submodules.b_info = b_info = fifo.SyncFIFO(width=owner.size, depth=info_depth)
        b_push = data.View(owner, b_info.w_data)
        b_head = data.View(owner, b_info.r_data)
        beats = data.StructLayout({"len": 8, "zero": 1})
        m.submodules.w_info = w_info = fifo.SyncFIFO(width=beats.size, depth=info_depth)
        w_push = data.View(beats, w_info.w_data)
        w_head = data.View(beats, w_info.r_data)
        aw_handshake = axi.awvalid & axi.awready
        m.d.comb += [
            aw_issue.allow.eq(w_inflight < outstanding),
            b_info.w_en.eq(aw_handshake),
            b_push.tag.eq(aw_issue.burst.payload.tag),
            b_push.final.eq(aw_issue.burst.payload.final),
            # The W beats of a burst follow its AW handshake.
            w_info.w_en.eq(aw_handshake),
            w_push.len.eq(aw_issue.burst.payload.len),
            w_push.zero.eq(aw_issue.burst.payload.zero),
        ]

        # W: a register, fed from wdata (WRITE) or with zeroes (ZERO; any burst while
        # draining, then with no strobes).
        w_count = Signal(8)
        w_free = ~axi.wvalid | axi.wready
        from_core = ~w_head.zero & ~drain
        w_end = w_count == w_head.len
        m.d.comb += port.wdata.ready.eq(w_info.r_rdy & from_core & w_free)
        with m.If(w_free & w_info.r_rdy & (~from_core | port.wdata.valid)):
            m.d.sync += [
                axi.wvalid.eq(1),
                axi.wdata.eq(Mux(from_core, port.wdata.payload.data, 0)),
                axi.wstrb.eq(Mux(drain, 0, (1 << beat_bytes) - 1)),
                axi.wlast.eq(w_end),
                w_count.eq(Mux(w_end, 0, w_count + 1)),
            ]
            m.d.comb += w_info.r_en.eq(w_end)
        with m.Elif(axi.wready):
            m.d.sync += axi.wvalid.eq(0)

        # B: always taken, except the final B of a command while the done slot is full.
        w_failed = Signal()
        b_last = b_head.final
        m.d.comb += axi.bready.eq(drain | ~b_last | ~w_done.valid)
        b_resp = axi.bvalid & axi.bready
        m.d.comb += b_info.r_en.eq(b_resp)
        with m.If(b_resp):
            m.d.sync += w_failed.eq((w_failed | axi.bresp.as_value()[1]) & ~b_last)
        m.d.sync += w_inflight.eq(w_inflight + aw_issue.load - b_resp)

        # FLUSH: once every burst issued before it has its B (so no B can arrive then).
        m.d.comb += aw_issue.flush.ready.eq((w_inflight == 0) & ~w_done.valid & ~drain)
        with m.If(b_resp & b_last & ~drain):
            m.d.sync += [w_done.valid.eq(1), w_done.payload.tag.eq(b_head.tag),
                         w_done.payload.status.eq(Mux(w_failed | axi.bresp.as_value()[1],
                                                      BackendStatus.ERROR, BackendStatus.OK))]
        with m.Elif(aw_issue.flush.valid & aw_issue.flush.ready):
            m.d.sync += [w_done.valid.eq(1), w_done.payload.tag.eq(aw_issue.flush.payload),
                         w_done.payload.status.eq(BackendStatus.OK)]
        with m.Elif(w_done.ready):
            m.d.sync += w_done.valid.eq(0)

        # -- Dones ---------------------------------------------------------------------------
        m.d.comb += [
            port.done.valid.eq(merge.out.valid & ~drain),
            port.done.payload.eq(merge.out.payload),
            merge.out.ready.eq(port.done.ready),
        ]
        with m.If(drain):
            m.d.sync += [r_done.valid.eq(0), w_done.valid.eq(0), r_failed.eq(0),
                         w_failed.eq(0)]
        return m
