"""I/O check stage: decode an NVM command, gate and check it, and hand it on
(docs/io-commands.md "Command gating" and "Commands").

A command that fails a check completes at once (``direct``, no slot). One that needs
work takes a slot (``alloc``; ``tag`` is the slot it gets) with the number of parts that
will report on it, and goes on: Read, Write, Compare and Dataset Management (AD = 1) to the
PRP walker (``job``), Flush and Write Zeroes straight to the backend (``backend``). Both
of those are FIFOs the engine sizes to hold a command per slot, so this stage only waits
for ``direct`` — a command never holds up the fetch engine for long.

The command is registered first; the checks run on the register in the next cycle
(a 64-bit add and compare for the LBA range), and the command leaves that cycle when its
output can take it. ``cmd.ready`` is a register (a :class:`ReadySkid` in front), so the
decision does not run on, combinationally, into the fetch engine's handshake.
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..backend.interface import TAG_WIDTH, BackendCommand, BackendOp
from ..config import CoreConfig
from ..layouts import Completion, GenericStatus, NvmOpcode
from ..nvm_layouts import BROADCAST_NSID, LBA_DATA_SHIFTS, DsmDw10, DsmDw11, ReadWriteDw12
from .io_layouts import CmdKind, IoStatus, status_const
from .io_slots import SlotAlloc
from .prp_walker import MAX_TRANSFER_BYTES, IoOp, PrpJob
from .ready_skid import ReadySkid
from .sq_fetch import FetchedCommand

__all__ = ["IoCheck"]

NAMESPACE_ID = 1       # the one namespace (NN = 1)


class IoCheck(wiring.Component):
    def __init__(self, config: CoreConfig):
        self._config = config
        aw = config.namespace_addr_width
        super().__init__({
            "cmd":        In(stream.Signature(FetchedCommand(config))),
            "lba_format": In(1),
            "formatting": In(1),
            "alloc":      Out(stream.Signature(SlotAlloc(config))),
            "tag":        In(TAG_WIDTH),
            "direct":     Out(stream.Signature(Completion)),
            "job":        Out(stream.Signature(PrpJob(aw))),
            "backend":    Out(stream.Signature(BackendCommand(aw))),
            "idle":       Out(1),
        })

    def elaborate(self, platform):  # noqa: C901 (the contract's table, top to bottom)
        m = Module()
        config = self._config

        m.submodules.skid = skid = ReadySkid(FetchedCommand(config))
        wiring.connect(m, wiring.flipped(self.cmd), skid.i)
        c = Signal(FetchedCommand(config))
        full = Signal()
        take = Signal()                          # the registered command leaves now
        m.d.comb += skid.o.ready.eq(~full | take)
        # What depends on the command alone is worked out as it is taken and registered
        # beside it: the opcode and NSID compares, and the LBA range and length checks
        # for both LBA formats (the format is chosen in the next cycle, from the format
        # then in force). The decision then starts from these bits.
        incoming = self._command_checks(m, skid.o.p)
        pre = {name: Signal(value.shape(), name=f"pre_{name}")
               for name, value in incoming.items()}
        with m.If(skid.o.valid & skid.o.ready):
            m.d.sync += [c.eq(skid.o.p), full.eq(1)]
            m.d.sync += [pre[name].eq(value) for name, value in incoming.items()]
        with m.Elif(take):
            m.d.sync += full.eq(0)
        m.d.comb += self.idle.eq(~full & skid.empty)

        sqe = c.sqe
        dw12 = data.View(ReadWriteDw12, sqe.cdw12)
        slba = Signal(64)
        m.d.comb += slba.eq(Cat(sqe.cdw10, sqe.cdw11))
        blocks = Signal(17)
        m.d.comb += blocks.eq(dw12.nlb + 1)
        shift = Mux(self.lba_format, LBA_DATA_SHIFTS[1], LBA_DATA_SHIFTS[0])
        nbytes = Signal(17 + max(LBA_DATA_SHIFTS))
        m.d.comb += nbytes.eq(blocks << shift)
        out_of_range = Mux(self.lba_format, pre["past_end1"], pre["past_end0"])
        too_long = Mux(self.lba_format, pre["too_long1"], pre["too_long0"])
        ns_addr = Signal(config.namespace_addr_width)
        m.d.comb += ns_addr.eq(slba << shift)
        dsm_ranges = data.View(DsmDw10, sqe.cdw10).nr + 1
        deallocate = pre["deallocate"]

        is_op = {op: pre[f"is_{op.name.lower()}"] for op in NvmOpcode}
        moves_data = (is_op[NvmOpcode.READ] | is_op[NvmOpcode.WRITE] | is_op[NvmOpcode.COMPARE]
                      | (is_op[NvmOpcode.DSM] & deallocate))
        has_lba = (is_op[NvmOpcode.READ] | is_op[NvmOpcode.WRITE] | is_op[NvmOpcode.COMPARE]
                   | is_op[NvmOpcode.WRITE_ZEROES])

        # -- The decision: a status (direct completion) or a kind of work -------------------
        status = Signal(IoStatus)
        work = Signal()
        kind = Signal(CmdKind)

        def refuse(code, dnr):
            m.d.comb += status.eq(status_const(code, dnr))

        G = GenericStatus
        with m.If(is_op[NvmOpcode.FLUSH]):
            # QEMU: Flush bypasses every other gate.
            with m.If(~pre["our_nsid"] & ~pre["broadcast_nsid"]):
                refuse(G.INVALID_NAMESPACE, True)
            with m.Else():
                m.d.comb += [work.eq(1), kind.eq(CmdKind.FLUSH)]
        with m.Elif(~pre["our_nsid"]):
            refuse(G.INVALID_NAMESPACE, True)
        with m.Elif(self.formatting):
            refuse(G.FORMAT_IN_PROGRESS, False)
        with m.Elif(pre["fused"]):
            refuse(G.INVALID_FIELD, False)
        with m.Elif(~(is_op[NvmOpcode.READ] | is_op[NvmOpcode.WRITE] | is_op[NvmOpcode.COMPARE]
                      | is_op[NvmOpcode.WRITE_ZEROES] | is_op[NvmOpcode.DSM])):
            refuse(G.INVALID_OPCODE, True)
        with m.Elif(moves_data & pre["sgl"]):
            refuse(G.INVALID_FIELD, True)                 # SGLS = 0
        with m.Elif(is_op[NvmOpcode.DSM]):
            with m.If(deallocate):
                m.d.comb += [work.eq(1), kind.eq(CmdKind.DSM)]
            # AD = 0: only hints, nothing to do (QEMU)
        with m.Elif(is_op[NvmOpcode.WRITE_ZEROES]):
            with m.If(out_of_range):
                refuse(G.LBA_OUT_OF_RANGE, True)
            with m.Else():
                m.d.comb += [work.eq(1), kind.eq(CmdKind.ZEROES)]
        with m.Else():                                    # Read, Write, Compare
            with m.If(too_long):
                refuse(G.INVALID_FIELD, True)
            with m.Elif(out_of_range):
                refuse(G.LBA_OUT_OF_RANGE, True)
            with m.Else():
                m.d.comb += [work.eq(1), kind.eq(Mux(is_op[NvmOpcode.READ], CmdKind.READ,
                                                     Mux(is_op[NvmOpcode.WRITE], CmdKind.WRITE,
                                                         CmdKind.COMPARE)))]

        # -- Acting on it -------------------------------------------------------------------
        to_walker = (kind == CmdKind.READ) | (kind == CmdKind.WRITE) | \
            (kind == CmdKind.COMPARE) | (kind == CmdKind.DSM)
        alloc, direct, job, backend = self.alloc, self.direct, self.job, self.backend
        ctx = alloc.p.ctx
        m.d.comb += [
            ctx.sqid.eq(c.sqid), ctx.cqid.eq(c.cqid), ctx.cid.eq(sqe.cdw0.cid),
            ctx.nsid.eq(sqe.nsid), ctx.slba.eq(slba), ctx.kind.eq(kind),
            ctx.bytes.eq(Mux(to_walker & (kind != CmdKind.DSM), nbytes, 0)),
            # Parts that report: the mover and the backend; the DSM unit; the backend.
            alloc.p.parts.eq(Mux((kind == CmdKind.READ) | (kind == CmdKind.WRITE)
                                 | (kind == CmdKind.COMPARE), 2, 1)),

            job.p.tag.eq(self.tag),
            job.p.op.eq(Mux(kind == CmdKind.READ, IoOp.READ,
                            Mux(kind == CmdKind.WRITE, IoOp.WRITE,
                                Mux(kind == CmdKind.COMPARE, IoOp.COMPARE, IoOp.DSM)))),
            job.p.prp1.eq(sqe.prp1),
            job.p.prp2.eq(sqe.prp2),
            job.p.length.eq(Mux(kind == CmdKind.DSM, dsm_ranges << 4, nbytes)),
            job.p.ns_addr.eq(Mux(kind == CmdKind.DSM, 0, ns_addr)),

            backend.p.op.eq(Mux(kind == CmdKind.FLUSH, BackendOp.FLUSH, BackendOp.ZERO)),
            backend.p.tag.eq(self.tag),
            backend.p.addr.eq(Mux(kind == CmdKind.FLUSH, 0, ns_addr)),
            backend.p.length.eq(Mux(kind == CmdKind.FLUSH, 0, nbytes)),

            direct.p.dw0.eq(0),
            direct.p.nsid.eq(sqe.nsid),
            direct.p.lba.eq(Mux(has_lba, slba, 0)),
            direct.p.sqid.eq(c.sqid),
            direct.p.cqid.eq(c.cqid),
            direct.p.cid.eq(sqe.cdw0.cid),
            direct.p.sc.eq(status.sc),
            direct.p.sct.eq(status.sct),
            direct.p.dnr.eq(status.dnr),
        ]
        with m.If(full):
            with m.If(work):
                # Room is guaranteed (a slot per command fetched, outputs as deep as the
                # slots); `alloc.ready` is the slot being there.
                out_ready = Mux(to_walker, job.ready, backend.ready)
                m.d.comb += [
                    alloc.valid.eq(out_ready),
                    job.valid.eq(to_walker & alloc.ready),
                    backend.valid.eq(~to_walker & alloc.ready),
                    take.eq(alloc.ready & out_ready),
                ]
            with m.Else():
                m.d.comb += [direct.valid.eq(1), take.eq(direct.ready)]
        return m

    def _command_checks(self, m, cmd):
        """The checks that depend on the command ``cmd`` (a :class:`FetchedCommand`)
        alone, by name."""
        config = self._config
        sqe = cmd.sqe
        slba = Cat(sqe.cdw10, sqe.cdw11)
        blocks = data.View(ReadWriteDw12, sqe.cdw12).nlb + 1
        end = Signal(65, name="pre_end")
        checks = {f"is_{op.name.lower()}": sqe.cdw0.opc == op.value for op in NvmOpcode}
        checks.update({
            "our_nsid": sqe.nsid == NAMESPACE_ID,
            "broadcast_nsid": sqe.nsid == BROADCAST_NSID,
            "fused": sqe.cdw0.fuse != 0,
            "sgl": sqe.cdw0.psdt != 0,
            "deallocate": data.View(DsmDw11, sqe.cdw11).ad,
        })
        for i, shift in enumerate(LBA_DATA_SHIFTS):
            checks[f"past_end{i}"] = end[64] | (end[:64] > config.namespace_bytes >> shift)
            checks[f"too_long{i}"] = (blocks << shift) > MAX_TRANSFER_BYTES
        m.d.comb += end.eq(slba + blocks)
        return checks
