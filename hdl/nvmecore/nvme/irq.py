"""Interrupt unit: aggregation, then MSI-X or the INTx pin [NVMe 1.4 §7.5].

CQ interrupt requests (``cq_irq``, from the CQ poster) are aggregated per vector as
features 08h/09h say (docs/admin-commands.md, "Queues"): a vector fires when THR + 1
completions are pending on it, or when the aggregation time runs out; the admin CQ and
vectors with coalescing disabled fire at once. One aggregation timer serves all vectors:
it starts with the first completion held back and, when it expires, every vector with
completions held back fires, so no interrupt waits longer than TIME.

A vector that fires goes, in order, to the MSI-X table when MSI-X is enabled, or sets
its INTx level (QEMU's nvme_irq_check): INTx is asserted while any level is set and not
masked by INTMS. A CQ head doorbell that empties a CQ withdraws its vector's level
(``cq_empty``). ``request`` is the direct path used by the bench (``debug``).
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import CoreConfig
from ..layouts import IrqRequest
from ..bitmap import onehot, with_bits
from ..priority import lowest_set
from .cq_post import CoalescedIrq

__all__ = ["InterruptUnit", "INTX_LEVELS", "COALESCING_TICK"]

#: INTMS / INTMC have one bit per vector, 32 in all; with pin-based interrupts vector v
#: uses bit v mod 32 (only vector 0 is valid there; a queue keeps its vector when MSI-X
#: is switched off under it).
INTX_LEVELS = 32

#: Aggregation time unit: 100 µs at 250 MHz [NVMe 1.4 §5.21.1.8].
COALESCING_TICK = 25_000


class InterruptUnit(wiring.Component):
    def __init__(self, config: CoreConfig, tick=COALESCING_TICK):
        self._config = config
        self._tick = tick
        super().__init__({
            "request": In(stream.Signature(IrqRequest)),
            "cq_irq": In(stream.Signature(CoalescedIrq)),
            "cq_empty": In(data.StructLayout({"valid": 1, "iv": 11})),
            "thr": In(8),
            "time": In(8),
            "no_coalescing": In(config.msix_vectors),
            "msix": Out(stream.Signature(config.vector_width)),
            "msix_enable": In(1),
            "intms": In(32),
            "ctrl_reset": In(1),
            "intx": Out(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        vectors = config.msix_vectors
        vw = config.vector_width

        # -- Aggregation -------------------------------------------------------------------
        # Unbuffered: a vector written in one cycle is offered to the MSI-X table the next
        # (and one that fires with the FIFO empty is offered at once: ``bypass``).
        m.submodules.fires = fires = fifo.SyncFIFO(width=vw, depth=4)
        # Completions held back per vector: the counts in a memory (read in the same
        # cycle), and which vectors hold any in flip-flops (the flush and the timer need
        # them all at once). A count is only read where its bit is set, so clearing the
        # bits clears the counts.
        m.submodules.held = held_mem = memory.Memory(shape=8, depth=vectors, init=[])
        held_wr = held_mem.write_port()
        held_rd = held_mem.read_port(domain="comb")
        holding = Signal(vectors)
        hold_set = Signal(vectors)          # one-hot writes of holding (bitmap.py)
        hold_clear = Signal(vectors)
        any_held = Signal()
        m.d.comb += any_held.eq(holding.any())

        irq = self.cq_irq
        v_in = irq.p.vector[:vw]
        count_in = Signal(8)
        m.d.comb += [held_rd.addr.eq(v_in),
                     count_in.eq(Mux(holding.bit_select(v_in, 1), held_rd.data, 0))]
        # TIME = 0 allows no delay [NVMe 1.4 §5.21.1.8]: every completion fires.
        direct = irq.p.admin | self.no_coalescing.bit_select(v_in, 1) | (self.time == 0)
        fire_now = direct | (count_in >= self.thr)

        # The timer: prescaler of 100 µs ticks, then TIME ticks.
        prescale = Signal(range(self._tick + 1))
        ticks = Signal(8)
        expired = Signal()
        with m.If(~any_held):
            m.d.sync += [prescale.eq(0), ticks.eq(0)]
        with m.Elif(prescale == self._tick - 1):
            m.d.sync += [prescale.eq(0), ticks.eq(ticks + 1)]
        with m.Else():
            m.d.sync += prescale.eq(prescale + 1)
        m.d.comb += expired.eq(any_held & (self.time != 0) & (ticks >= self.time))
        flush = Signal(range(vectors))              # the lowest vector holding back
        flushing = Signal()
        m.d.comb += flush.eq(lowest_set(m, holding, len(flush), name="flush"))

        # A vector that fires while none waits goes to the MSI-X table in the same cycle
        # when the table takes it, and into the FIFO otherwise.
        bypass = Signal()
        m.d.comb += bypass.eq(irq.valid & (v_in < vectors) & fire_now & ~fires.r_rdy
                              & self.msix_enable)
        with m.If(irq.valid & (v_in < vectors)):
            m.d.comb += irq.ready.eq(fires.w_rdy | ~fire_now)
            with m.If(fire_now & ~(bypass & self.msix.ready)):
                m.d.comb += [fires.w_en.eq(1), fires.w_data.eq(v_in)]
            with m.If(irq.ready):
                m.d.comb += [held_wr.addr.eq(v_in), held_wr.data.eq(count_in + 1),
                             held_wr.en.eq(~fire_now)]
                m.d.comb += [hold_set.eq(onehot(v_in, ~fire_now, vectors)),
                             hold_clear.eq(onehot(v_in, fire_now, vectors))]
        with m.Elif(irq.valid):
            m.d.comb += irq.ready.eq(1)                 # no such vector: nothing to send
        with m.Elif(expired | flushing):
            # Flush every vector holding completions back, lowest first.
            m.d.sync += flushing.eq(any_held)
            with m.If(any_held):
                m.d.comb += [fires.w_en.eq(1), fires.w_data.eq(flush)]
                with m.If(fires.w_rdy):
                    m.d.comb += hold_clear.eq(onehot(flush, 1, vectors))

        # -- Routing: MSI-X or INTx --------------------------------------------------------
        pending = Signal(INTX_LEVELS)
        direct_req = self.request
        m.d.comb += self.msix.p.eq(Mux(fires.r_rdy, fires.r_data,
                                       Mux(bypass, v_in, direct_req.p.vector)))
        with m.If(fires.r_rdy):
            with m.If(self.msix_enable):
                m.d.comb += [self.msix.valid.eq(1), fires.r_en.eq(self.msix.ready)]
            with m.Else():
                m.d.comb += fires.r_en.eq(1)
                m.d.sync += pending.bit_select(fires.r_data[:5], 1).eq(1)
        with m.Elif(bypass):
            m.d.comb += self.msix.valid.eq(1)
        with m.Else():
            level = direct_req.p.vector[:5]
            with m.If(direct_req.p.deassert):
                m.d.comb += direct_req.ready.eq(1)
                with m.If(direct_req.valid):
                    m.d.sync += pending.bit_select(level, 1).eq(0)
            with m.Elif(self.msix_enable & (direct_req.p.vector >= vectors)):
                m.d.comb += direct_req.ready.eq(1)      # no such vector: nothing to send
            with m.Elif(self.msix_enable):
                m.d.comb += [self.msix.valid.eq(direct_req.valid),
                             direct_req.ready.eq(self.msix.ready)]
            with m.Else():
                m.d.comb += direct_req.ready.eq(1)
                with m.If(direct_req.valid):
                    m.d.sync += pending.bit_select(level, 1).eq(1)
        with m.If(self.cq_empty.valid):
            m.d.sync += pending.bit_select(self.cq_empty.iv[:5], 1).eq(0)
        m.d.sync += holding.eq(with_bits(holding, clear=hold_clear, set=hold_set))
        with m.If(self.ctrl_reset):
            m.d.sync += [pending.eq(0), holding.eq(0)]

        intx = Signal()
        m.d.sync += intx.eq(~self.msix_enable & (pending & ~self.intms).any())
        m.d.comb += [self.intx.eq(intx), self.idle.eq(~fires.r_rdy)]
        return m
