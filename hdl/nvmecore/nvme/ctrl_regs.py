"""Controller registers (BAR0 0x000-0xFFF) and the controller state machine.

CAP, VS, INTMS/INTMC, CC, CSTS, AQA, ASQ, ACQ and CMBLOC/CMBSZ [NVMe 1.4 §3.1], with the
enable, reset and shutdown handshakes [NVMe 1.4 §7.6]. Where the specification leaves a
choice this follows QEMU's NVMe model (shared/reference/nvme-behaviour.md §2).
"""

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..bus import RegisterPort
from ..config import CoreConfig
from ..layouts import (
    AQA_WRITABLE_MASK,
    CAP_AMS_WRR_URGENT,
    CC_WRITABLE_MASK,
    NVME_VERSION_1_4,
    Aqa,
    ArbitrationMechanism,
    Cap,
    Cc,
    Csts,
    Reg,
    ShnType,
    ShstState,
)

__all__ = ["ControllerRegisters", "cap_value", "byte_mask"]


def cap_value(config: CoreConfig) -> int:
    """CAP as a number, for the gateware and the model alike."""
    return Cap.const({
        "mqes": config.cap_mqes,
        "cqr": 1,                     # physically contiguous queues only
        "ams": CAP_AMS_WRR_URGENT,    # round robin, and weighted round robin with urgent
        "to": config.ready_timeout,
        "dstrd": 0,
        "nssrs": 0,
        "css": 0b0000_0001,           # NVM command set (CAP bit 37); bit 43 stays 0
        "mpsmin": config.mps_min,
        "mpsmax": config.mps_max,
    }).as_bits()


def byte_mask(be):
    """Expand byte enables to a bit mask (one ``Value`` of 8 × len(be) bits)."""
    return Cat(*(bit.replicate(8) for bit in be))


class ControllerRegisters(wiring.Component):
    """BAR0 controller registers and the enable / reset / shutdown state machine.

    ``quiescent`` tells when nothing is in flight (no DMA outstanding, no sweep running):
    a controller reset (CC.EN 1→0) stops fetching (``run`` low), waits for it, then raises
    ``ctrl_reset`` for one cycle and clears CSTS.RDY; a shutdown (CC.SHN) stops fetching
    until the next reset and waits for it before reporting SHST "complete". ``fatal`` sets
    CSTS.CFS (an SQ fetch that failed, for example), which also stops fetching.
    """

    port: In(RegisterPort())
    quiescent: In(1)
    fatal: In(1)
    ready: Out(1)          # CSTS.RDY: the admin queues exist
    run: Out(1)            # fetch commands: ready, no CFS, no shutdown or reset under way
    admin_create: Out(1)   # one-cycle pulse: CC.EN 0→1 succeeded, make the admin queues
    ctrl_reset: Out(1)     # one-cycle pulse at the end of a reset: drop all queue state
    asq: Out(64)
    acq: Out(64)
    intms: Out(32)
    cc: Out(Cc)
    admin_sq_size: Out(13)  # 1's based entries, latched at enable
    admin_cq_size: Out(13)

    def __init__(self, config: CoreConfig):
        self._config = config
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        config = self._config
        port = self.port

        cap = Const(cap_value(config), 64)
        intms = Signal(32)
        cc = Signal(Cc)
        csts = Signal(Csts)
        aqa = Signal(Aqa)
        asq = Signal(64)
        acq = Signal(64)

        halted = Signal()           # a shutdown was asked for: no fetching until reset
        m.d.comb += [
            self.intms.eq(intms),
            self.cc.eq(cc),
            self.ready.eq(csts.rdy),
            self.asq.eq(asq),
            self.acq.eq(acq),
        ]

        # -- Reads: dword d of BAR0 (offsets 0x00-0x3F); everything else reads 0. --------
        dwords = {
            Reg.CAP // 4: cap[:32], Reg.CAP // 4 + 1: cap[32:],
            Reg.VS // 4: Const(NVME_VERSION_1_4, 32),
            Reg.INTMS // 4: intms,
            Reg.INTMC // 4: intms,                 # both read back the mask
            Reg.CC // 4: cc.as_value(),
            Reg.CSTS // 4: csts.as_value(),
            Reg.AQA // 4: aqa.as_value(),
            Reg.ASQ // 4: asq[:32], Reg.ASQ // 4 + 1: asq[32:],
            Reg.ACQ // 4: acq[:32], Reg.ACQ // 4 + 1: acq[32:],
            # NSSR (CAP.NSSRS = 0), CMBLOC and CMBSZ (no CMB) read 0.
        }
        in_regs = port.addr[6:] == 0
        qword = port.addr[3:6]
        rdata = Signal(64)
        with m.If(port.r_stb):
            m.d.sync += rdata.eq(0)
            with m.If(in_regs):
                with m.Switch(qword):
                    for q in range(8):
                        lo = dwords.get(2 * q, Const(0, 32))
                        hi = dwords.get(2 * q + 1, Const(0, 32))
                        with m.Case(q):
                            m.d.sync += rdata.eq(Cat(lo, hi))
        m.d.comb += port.rdata.eq(rdata)

        # -- Writes. A QWORD write covering two registers acts on both, low one first;
        # the registers below never interact within one write, so both lanes apply at once.
        def lane(d):
            """(strobe, data, byte mask) of dword d in this write."""
            hit = port.w_stb & in_regs & (qword == d // 2)
            half = slice(32 * (d % 2), 32 * (d % 2) + 32)
            be = port.be[4 * (d % 2): 4 * (d % 2) + 4]
            return hit & be.any(), port.wdata[half], byte_mask(be)

        def merged(old, d, writable):
            _, wdata, mask = lane(d)
            return ((old & ~mask) | (wdata & mask)) & writable

        # INTMS: write 1 to set; INTMC: write 1 to clear [NVMe 1.4 §3.1.3, §3.1.4].
        intms_next = Signal(32)
        set_stb, set_data, set_mask = lane(Reg.INTMS // 4)
        clr_stb, clr_data, clr_mask = lane(Reg.INTMC // 4)
        m.d.comb += intms_next.eq(intms)
        with m.If(set_stb):
            m.d.comb += intms_next.eq(intms | (set_data & set_mask))
        with m.If(clr_stb):
            m.d.comb += intms_next.eq(intms & ~(clr_data & clr_mask))
        m.d.sync += intms.eq(intms_next)

        aqa_stb, _, _ = lane(Reg.AQA // 4)
        with m.If(aqa_stb):
            m.d.sync += aqa.eq(merged(aqa.as_value(), Reg.AQA // 4, AQA_WRITABLE_MASK))
        # ASQ and ACQ keep every bit written, as QEMU does, so that a misaligned base is
        # seen (and refused) at enable rather than silently rounded.
        for reg, base in ((asq, Reg.ASQ // 4), (acq, Reg.ACQ // 4)):
            for half in range(2):
                stb, _, _ = lane(base + half)
                with m.If(stb):
                    m.d.sync += reg[32 * half:32 * half + 32].eq(
                        merged(reg[32 * half:32 * half + 32], base + half, 0xFFFF_FFFF))

        # -- CC and the controller state machine [NVMe 1.4 §7.6.1, §7.6.2] --------------
        cc_stb, _, _ = lane(Reg.CC // 4)
        cc_new = Signal(Cc)
        m.d.comb += cc_new.eq(merged(cc.as_value(), Reg.CC // 4, CC_WRITABLE_MASK))

        page_mask = Signal(64)
        m.d.comb += page_mask.eq((Const(1, 64) << (cc_new.mps + 12)) - 1)
        setup_ok = Signal()
        m.d.comb += setup_ok.eq(
            (cc_new.css == 0)                                   # CAP.CSS: NVM only
            # CAP.AMS: round robin and weighted round robin with urgent class only
            & ((cc_new.ams == ArbitrationMechanism.ROUND_ROBIN.value)
               | (cc_new.ams == ArbitrationMechanism.WRR_URGENT.value))
            & (cc_new.mps >= config.mps_min if config.mps_min else 1)
            & (cc_new.mps <= config.mps_max)
            & ((asq & page_mask) == 0) & ((acq & page_mask) == 0)
            & (aqa.asqs != 0) & (aqa.acqs != 0))                # ≥ 2 entries each

        shutting_down = Signal()
        with m.FSM(name="ctrl"):
            with m.State("RUN"):
                with m.If(cc_stb):
                    m.d.sync += cc.eq(cc_new)
                    with m.If(~cc.en & cc_new.en):
                        # Enable: a successful start reports RDY only, a failed one CFS
                        # only (QEMU replaces CSTS on both paths).
                        m.d.sync += csts.eq(0)
                        with m.If(setup_ok):
                            m.d.comb += self.admin_create.eq(1)
                            m.d.sync += [
                                halted.eq(0),
                                csts.rdy.eq(1),
                                self.admin_sq_size.eq(aqa.asqs + 1),
                                self.admin_cq_size.eq(aqa.acqs + 1),
                            ]
                        with m.Else():
                            m.d.sync += csts.cfs.eq(1)
                    with m.Elif(cc.en & ~cc_new.en):
                        m.d.sync += shutting_down.eq(0)
                        m.next = "RESET"
                    with m.Elif((cc.shn == ShnType.NONE) & (cc_new.shn != ShnType.NONE)):
                        m.d.sync += [
                            csts.shst.eq(ShstState.IN_PROGRESS),
                            shutting_down.eq(1),
                            halted.eq(1),
                        ]
                    with m.Elif((cc.shn != ShnType.NONE) & (cc_new.shn == ShnType.NONE)):
                        m.d.sync += [
                            csts.shst.eq(ShstState.NORMAL),
                            shutting_down.eq(0),
                        ]
                with m.Elif(shutting_down & self.quiescent):
                    m.d.sync += [
                        csts.shst.eq(ShstState.COMPLETE),
                        shutting_down.eq(0),
                    ]
                with m.If(self.fatal):
                    m.d.sync += csts.cfs.eq(1)
                m.d.comb += self.run.eq(csts.rdy & ~csts.cfs & ~halted & ~(cc_stb & ~cc_new.en))
            with m.State("RESET"):
                # Reads go on (the host polls CSTS); CC writes wait for the reset to end.
                with m.If(self.quiescent):
                    # QEMU's nvme_ctrl_reset: CC, CSTS and INTMS clear; AQA/ASQ/ACQ stay.
                    m.d.comb += self.ctrl_reset.eq(1)
                    m.d.sync += [cc.eq(0), csts.eq(0), intms.eq(0), halted.eq(0)]
                    m.next = "RUN"
        return m
