"""The RAM disk: the namespace in on-chip memory, behind the backend interface.

One ``W``-bit memory of ``namespace_bytes / (W/8)`` words, never reset (neither the bus
reset nor ``abort`` touches it). Two engines share it:

- the read engine runs READs on the memory's read port, one beat per cycle;
- the write engine runs WRITEs and ZEROs on the write port, one beat per cycle, and
  FLUSHes (done at once: a WRITE's ``done`` comes after its data is in the memory, so
  nothing is ever waiting to become durable; the FLUSH still queues behind the WRITEs
  and ZEROs accepted before it).

Commands reach the engines through a small FIFO each, so a READ waiting for its engine
never holds back a WRITE behind it, and the other way round. The read port's output
register is the ``rdata`` register: the port reads the next word only when the beat it
holds is taken (or there is none), so ``rdata`` may stall for any time without losing or
repeating a beat. Each engine hands its dones to a one-entry slot; :class:`DoneMerge`
merges the two slots into ``done``.

``abort`` (a level): every register but the memory's contents returns to its reset
value at each clock edge while it is high, and ``rdata`` / ``done`` offer nothing and
``cmd`` / ``wdata`` take nothing during it (docs/backend.md, rule 9).

Which 512-byte sectors hold data is kept in a bitmap (one bit per sector, zero at power-on):
a WRITE sets its sectors' bits, a ZERO clears them — a sector per cycle, not a word — and
a READ of a sector whose bit is clear returns zeroes. So the data memory needs no initial
contents (the Verilog declares none: UltraRAM cannot have any, and megabits of zeroes in
the Verilog take the generator minutes), Write Zeroes, deallocation and Format NVM run
``SECTOR_BYTES / (W/8)`` times faster than writing zeroes, and no later reset (bus reset,
link down, ``abort``) touches the namespace.
"""

from amaranth import Module, Mux, ResetInserter, Signal
from amaranth.hdl import MemoryData
from amaranth.lib import data, fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import CoreConfig
from ..emit import NO_INIT
from ..nvm_layouts import SECTOR_BYTES
from .interface import BackendCommand, BackendOp, BackendPort, BackendStatus, split_by_direction
from .merge import DoneMerge

__all__ = ["RamDisk", "NamespaceProbe"]


class NamespaceProbe(wiring.Signature):
    """A test-only look into the RAM disk (``CoreConfig.debug``): word ``addr`` of the
    namespace shows on ``data`` the next cycle, zero for a sector without data, and
    ``written`` says whether its sector holds data."""

    def __init__(self, config: CoreConfig):
        depth = config.namespace_bytes // (config.data_width // 8)
        super().__init__({
            "addr":    Out(range(depth)),
            "data":    In(config.data_width),
            "written": In(1),
        })


class RamDisk(wiring.Component):
    """The namespace in block RAM (``CoreConfig.backend = "ramdisk"``).

    ``port`` is the target side of :class:`~nvmecore.backend.interface.BackendPort`.
    ``queue_depth`` is the depth of each engine's command FIFO.
    """

    def __init__(self, config: CoreConfig, *, queue_depth=2):
        self._config = config
        self._queue_depth = queue_depth
        self.beat_bytes = config.data_width // 8
        self.depth = config.namespace_bytes // self.beat_bytes
        self.sector_words = max(1, SECTOR_BYTES // self.beat_bytes)
        #: The namespace's words, and which sectors hold data (for benches that look in).
        self.words = MemoryData(shape=config.data_width, depth=self.depth, init=[])
        self.written = MemoryData(shape=1, depth=self.depth // self.sector_words, init=[])
        members = {"port": In(BackendPort(config.data_width, config.namespace_addr_width))}
        if config.debug:
            members["probe"] = In(NamespaceProbe(config))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        port = self.port
        abort = port.abort
        aw = self._config.namespace_addr_width
        shift = (self.beat_bytes - 1).bit_length()          # byte address → word address
        command = data.Layout.cast(BackendCommand(aw))

        m.submodules.mem = mem = Memory(self.words, attrs=NO_INIT)
        rd = mem.read_port()
        wr = mem.write_port()

        # -- Which sectors hold data ---------------------------------------------------------
        sector_words = self.sector_words
        sector_shift = (sector_words - 1).bit_length()
        m.submodules.written = written = Memory(self.written)
        written_rd = written.read_port()
        if self._config.debug:
            probe_rd, probe_written = mem.read_port(), written.read_port()
            m.d.comb += [
                probe_rd.addr.eq(self.probe.addr), probe_written.addr.eq(self.probe.addr
                                                                          >> sector_shift),
                self.probe.data.eq(Mux(probe_written.data, probe_rd.data, 0)),
                self.probe.written.eq(probe_written.data),
            ]
        written_wr = written.write_port()

        # -- Commands: READs to the read engine, the rest to the write engine -------------
        m.submodules.rq = rq = fifo.SyncFIFO(width=command.size, depth=self._queue_depth)
        m.submodules.wq = wq = fifo.SyncFIFO(width=command.size, depth=self._queue_depth)
        split_by_direction(m, port.cmd, rq, wq, abort)

        m.submodules.merge = merge = DoneMerge()

        # -- Read engine ---------------------------------------------------------------------
        r_busy = Signal()
        r_word = Signal(aw - shift)
        r_left = Signal(aw + 1 - shift)                 # beats not yet read from the memory
        r_tag = Signal.like(port.done.payload.tag)
        out_valid = Signal()                            # rd.data holds a beat not yet taken
        out_last = Signal()
        out_tag = Signal.like(r_tag)
        r_done = merge.a

        r_final = r_left == 1
        taken = port.rdata.valid & port.rdata.ready
        # The final beat of a READ is read only when its done will find the slot free.
        issue = r_busy & (~out_valid | taken) & (
            ~r_final | ~r_done.valid & ~(out_valid & out_last))
        m.d.comb += [
            rd.addr.eq(r_word),
            rd.en.eq(issue),
            written_rd.addr.eq(r_word >> sector_shift),
            written_rd.en.eq(issue),
            port.rdata.valid.eq(out_valid & ~abort),
            port.rdata.payload.data.eq(Mux(written_rd.data, rd.data, 0)),
            port.rdata.payload.last.eq(out_last),
        ]
        with m.If(issue):
            m.d.sync += [
                out_valid.eq(1), out_last.eq(r_final), out_tag.eq(r_tag),
                r_word.eq(r_word + 1), r_left.eq(r_left - 1),
            ]
            with m.If(r_final):
                m.d.sync += r_busy.eq(0)
        with m.Elif(taken):
            m.d.sync += out_valid.eq(0)
        next_read = command(rq.r_data)
        m.d.comb += rq.r_en.eq(~r_busy | issue & r_final)
        with m.If(rq.r_en & rq.r_rdy):
            m.d.sync += [
                r_busy.eq(1), r_tag.eq(next_read.tag),
                r_word.eq(next_read.addr[shift:]), r_left.eq(next_read.length[shift:]),
            ]
        with m.If(taken & out_last):
            m.d.sync += [r_done.valid.eq(1), r_done.payload.tag.eq(out_tag),
                         r_done.payload.status.eq(BackendStatus.OK)]
        with m.Elif(r_done.ready):
            m.d.sync += r_done.valid.eq(0)

        # -- Write engine --------------------------------------------------------------------
        w_busy = Signal()
        w_op = Signal(BackendOp)
        w_word = Signal(aw - shift)
        w_left = Signal(aw + 1 - shift)
        w_tag = Signal.like(r_tag)
        w_done = merge.b

        w_final = w_left == 1
        slot_free = ~w_done.valid
        can_write = w_busy & (~w_final | slot_free)
        m.d.comb += port.wdata.ready.eq(can_write & (w_op == BackendOp.WRITE) & ~abort)
        # A WRITE writes a word per cycle and marks its sector; a ZERO clears a sector's
        # mark per cycle (its `w_left` counts down a sector's words at a time).
        write = Signal()
        zero = Signal()
        with m.Switch(w_op):
            with m.Case(BackendOp.WRITE):
                m.d.comb += write.eq(port.wdata.valid & port.wdata.ready)
            with m.Case(BackendOp.ZERO):
                m.d.comb += zero.eq(w_busy & ((w_left > sector_words) | slot_free) & ~abort)
        flush = w_busy & (w_op == BackendOp.FLUSH) & slot_free
        m.d.comb += [
            wr.addr.eq(w_word),
            wr.data.eq(port.wdata.payload.data),
            wr.en.eq(write),
            written_wr.addr.eq(w_word >> sector_shift),
            written_wr.data.eq(write),
            written_wr.en.eq(write | zero),
        ]
        with m.If(write):
            m.d.sync += [w_word.eq(w_word + 1), w_left.eq(w_left - 1)]
        with m.If(zero):
            m.d.sync += [w_word.eq(w_word + sector_words), w_left.eq(w_left - sector_words)]
        finished = write & w_final | zero & (w_left == sector_words) | flush
        with m.If(finished):
            m.d.sync += [w_busy.eq(0), w_done.valid.eq(1), w_done.payload.tag.eq(w_tag),
                         w_done.payload.status.eq(BackendStatus.OK)]
        with m.Elif(w_done.ready):
            m.d.sync += w_done.valid.eq(0)
        next_write = command(wq.r_data)
        m.d.comb += wq.r_en.eq(~w_busy | finished)
        with m.If(wq.r_en & wq.r_rdy):
            m.d.sync += [
                w_busy.eq(1), w_op.eq(next_write.op), w_tag.eq(next_write.tag),
                w_word.eq(next_write.addr[shift:]), w_left.eq(next_write.length[shift:]),
            ]

        m.d.comb += [
            port.done.valid.eq(merge.out.valid & ~abort),
            port.done.payload.eq(merge.out.payload),
            merge.out.ready.eq(port.done.ready),
        ]

        # abort resets every register (the memory's contents are no register).
        return ResetInserter(abort)(m)
