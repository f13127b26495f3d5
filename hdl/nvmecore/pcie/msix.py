"""MSI-X table, pending bit array and message sender [PCIe 4.0 §6.1.4, §7.7.2].

The table (16 B per vector) is at BAR0 0x2000 and the PBA at 0x3000, both readable as
DWORDs or QWORDs. Message address and data live in two memories; the per-vector mask
bits and pending bits are flip-flops, because unmasking must find pending vectors at
once. Mask bits reset to 1 [PCIe 4.0 §7.7.2.5]. The table survives a controller reset;
the bus reset (function-level or link reset) clears it with a sweep, one entry per
cycle, during which register accesses wait.

A request to send vector v becomes one posted 4-byte memory write on the DMA write port
(address and data from the table) when MSI-X is enabled and neither the function nor the
vector is masked; otherwise PBA bit v is set, and the message goes out (PBA bit cleared)
as soon as the vector can send again, lowest vector first. The table is read in the cycle
a message is taken, so its write command is offered the next cycle.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..bitmap import onehot, with_bits
from ..bus import DmaWrite, RegisterPort
from ..priority import lowest_set
from ..config import CoreConfig
from ..layouts import MSIX_PBA_BASE, MSIX_TABLE_BASE

__all__ = ["MsixTable"]


class MsixTable(wiring.Component):
    def __init__(self, config: CoreConfig):
        self._config = config
        super().__init__({
            "port": In(RegisterPort()),
            "send": In(stream.Signature(config.vector_width)),
            "dma": Out(DmaWrite(config.data_width)),
            "enable": In(1),
            "function_mask": In(1),
            "idle": Out(1),     # no message half-way out on the DMA port
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        vectors = config.msix_vectors
        vw = config.vector_width
        port = self.port

        m.submodules.addr_mem = addr_mem = memory.Memory(shape=64, depth=vectors, init=[])
        m.submodules.data_mem = data_mem = memory.Memory(shape=32, depth=vectors, init=[])
        addr_wr = addr_mem.write_port(granularity=8)
        data_wr = data_mem.write_port(granularity=8)
        addr_rd_bus = addr_mem.read_port(transparent_for=(addr_wr,))
        data_rd_bus = data_mem.read_port(transparent_for=(data_wr,))
        addr_rd_tx = addr_mem.read_port(transparent_for=(addr_wr,))
        data_rd_tx = data_mem.read_port(transparent_for=(data_wr,))

        mask = Signal(vectors, init=(1 << vectors) - 1)
        pba = Signal(vectors)
        # one-hot writes of the per-vector bits (bitmap.py: no case over every vector)
        mask_write, mask_value = Signal(vectors), Signal()
        pba_set, pba_clear = Signal(vectors), Signal(vectors)

        # -- Clear sweep after the bus reset ---------------------------------------------
        sweeping = Signal(init=1)
        sweep_v = Signal(vw)
        with m.If(sweeping):
            m.d.sync += sweep_v.eq(sweep_v + 1)
            with m.If(sweep_v == vectors - 1):
                m.d.sync += sweeping.eq(0)

        # -- Register access ---------------------------------------------------------------
        in_table = (port.addr >= MSIX_TABLE_BASE) & (port.addr < MSIX_PBA_BASE)
        in_pba = port.addr >= MSIX_PBA_BASE
        word = (port.addr - MSIX_TABLE_BASE)[3:12]       # QWORD index in the table
        vector = word[1:]
        upper = word[0]                                   # data + vector control QWORD
        hit = in_table & (vector < vectors)

        m.d.comb += [
            addr_rd_bus.addr.eq(vector),
            data_rd_bus.addr.eq(vector),
            addr_rd_bus.en.eq(port.r_stb),
            data_rd_bus.en.eq(port.r_stb),
        ]
        with m.If(sweeping):
            m.d.comb += [
                addr_wr.addr.eq(sweep_v), addr_wr.data.eq(0), addr_wr.en.eq(0xFF),
                data_wr.addr.eq(sweep_v), data_wr.data.eq(0), data_wr.en.eq(0xF),
            ]
        with m.Elif(port.w_stb & hit):
            m.d.comb += [
                addr_wr.addr.eq(vector),
                data_wr.addr.eq(vector),
                # Message Address bits 1:0 are zero: DWORD-aligned [PCIe 4.0 §7.7.2.1].
                addr_wr.data.eq(Cat(0, 0, port.wdata[2:])),
                data_wr.data.eq(port.wdata[:32]),
            ]
            with m.If(upper):
                m.d.comb += data_wr.en.eq(port.be[:4])
                m.d.comb += [mask_write.eq(onehot(vector, port.be[4], vectors)),
                             mask_value.eq(port.wdata[32])]
            with m.Else():
                m.d.comb += addr_wr.en.eq(port.be)

        # Read data, one cycle later.
        r_kind = Signal(2)           # 0: zero, 1: address QWORD, 2: data/control, 3: PBA
        r_vector = Signal(vw)
        r_pba = Signal(64)
        pba_words = (vectors + 63) // 64
        pba_padded = Cat(pba, Const(0, 64 * pba_words - vectors))
        pba_index = (port.addr - MSIX_PBA_BASE)[3:12]
        pba_index_bits = max(1, (pba_words - 1).bit_length())
        with m.If(port.r_stb):
            m.d.sync += [r_kind.eq(0), r_vector.eq(vector)]
            with m.If(hit):
                m.d.sync += r_kind.eq(Mux(upper, 2, 1))
            with m.Elif(in_pba):
                m.d.sync += [
                    r_kind.eq(3),
                    r_pba.eq(Mux(pba_index < pba_words,
                                 pba_padded.word_select(pba_index[:pba_index_bits], 64), 0)),
                ]
        with m.Switch(r_kind):
            with m.Case(1):
                m.d.comb += port.rdata.eq(addr_rd_bus.data)
            with m.Case(2):
                m.d.comb += port.rdata.eq(Cat(data_rd_bus.data, mask.bit_select(r_vector, 1)))
            with m.Case(3):
                m.d.comb += port.rdata.eq(r_pba)
        m.d.comb += port.busy.eq(sweeping)

        # -- Sender ----------------------------------------------------------------------------
        can_send = self.enable & ~self.function_mask
        deliverable = Signal(vectors)
        m.d.comb += deliverable.eq(Mux(can_send, pba & ~mask, 0))
        lowest = Signal(vw)
        m.d.comb += lowest.eq(lowest_set(m, deliverable, vw, name="deliverable"))

        tx_vector = Signal(vw)
        m.d.comb += [
            addr_rd_tx.addr.eq(tx_vector),
            data_rd_tx.addr.eq(tx_vector),
            self.dma.cmd.p.addr.eq(addr_rd_tx.data),
            self.dma.cmd.p.length.eq(4),
            self.dma.data.p.data.eq(data_rd_tx.data),
            self.dma.data.p.last.eq(1),
        ]
        def read(vector):
            # The table's read ports: data ready next cycle, held while they are off.
            m.d.comb += [addr_rd_tx.addr.eq(vector), data_rd_tx.addr.eq(vector),
                         addr_rd_tx.en.eq(1), data_rd_tx.en.eq(1)]
            m.d.sync += tx_vector.eq(vector)

        with m.FSM(name="tx"):
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                with m.If(sweeping):
                    pass
                with m.Elif(deliverable.any()):
                    read(lowest)
                    m.d.comb += pba_clear.eq(onehot(lowest, 1, vectors))
                    m.next = "CMD"
                with m.Else():
                    m.d.comb += self.send.ready.eq(1)
                    with m.If(self.send.valid & (self.send.p < vectors)):
                        with m.If(can_send & ~mask.bit_select(self.send.p, 1)):
                            read(self.send.p)
                            m.next = "CMD"
                        with m.Else():
                            m.d.comb += pba_set.eq(onehot(self.send.p, 1, vectors))
            with m.State("CMD"):
                m.d.comb += self.dma.cmd.valid.eq(1)
                with m.If(self.dma.cmd.ready):
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += self.dma.data.valid.eq(1)
                with m.If(self.dma.data.ready):
                    m.next = "IDLE"
        m.d.sync += [
            mask.eq(with_bits(mask, clear=mask_write, set=Mux(mask_value, mask_write, 0))),
            pba.eq(with_bits(pba, clear=pba_clear, set=pba_set)),
        ]
        return m
