"""Per-queue dynamic state: SQ tail/head, CQ head/tail/phase and the CQ slot accounting.

Each field has one writer: the doorbell decoder (SQ tail, CQ head), the fetch engine (SQ
head, CQ slots reserved), the CQ poster (CQ tail, phase, entries posted) and the admin
engine (create, delete, release of a held AER's slot). A CQ's *credit* — slots neither
holding an unconsumed entry nor promised to a fetched command — is

    credit = size − 1 − ((tail − head) mod size) − (reserved − posted)

so a command is fetched only when its completion has a slot, and posting never waits.

The state is in flip-flops so that every SQ's "has work" bit and any CQ's credit are
available in the same cycle. Base addresses and other static settings live in memories
beside the engines that use them.
"""

from amaranth import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..bus import strobe
from ..config import CoreConfig

__all__ = ["QueueState", "QueueSetup"]


class QueueSetup(data.Struct):
    """Create (``create`` = 1) or delete one queue."""
    qid:     16
    cq:      1
    create:  1
    base:    52      # page number of the queue (address bits 63:12)
    size_m1: 16      # entries − 1
    cqid:    16      # SQ: its CQ
    iv:      11      # CQ: interrupt vector
    ien:     1       # CQ: interrupts enabled
    prio:    2       # SQ: QPRIO (kept for weighted round robin)


def _strobe(layout):
    return In(strobe(layout))


class QueueState(wiring.Component):
    def __init__(self, config: CoreConfig):
        self._config = config
        n = config.queue_pairs
        qw = config.qid_width
        super().__init__({
            "setup":      _strobe(QueueSetup),
            "sq_tail":    _strobe(data.StructLayout({"qid": qw, "value": 16})),
            "cq_head":    _strobe(data.StructLayout({"qid": qw, "value": 16})),
            "sq_advance": _strobe(data.StructLayout({"qid": qw, "n": 16})),
            "cq_reserve": _strobe(data.StructLayout({"qid": qw, "n": 16})),
            "cq_post":    _strobe(data.StructLayout({"qid": qw})),
            "cq_release": _strobe(data.StructLayout({"qid": qw})),
            # an entry of SQ qid went to its engine: the head SQHD reports is past it
            "sq_fetched": _strobe(data.StructLayout({"qid": qw, "sqhd": 16})),
            "clear":      In(1),
            # Per-queue views
            "sq_valid":   Out(n),
            "sq_work":    Out(n),            # valid and tail != head
            "cq_valid":   Out(n),
            "cq_empty":   Out(n),            # tail == head (for INTx)
            # Lookups: put a queue ID on an index, read the fields the same cycle.
            # f_*: the fetch engine; p_*: the CQ poster; a_*: the admin engine.
            "f_sq":       In(qw),
            "f_sq_head":  Out(16),
            "f_sq_tail":  Out(16),
            "f_sq_size_m1": Out(16),
            "f_sq_cqid":  Out(qw),
            "f_cq":       In(qw),
            "f_cq_credit": Out(16),
            "p_cq":       In(qw),
            "p_cq_tail":  Out(16),
            "p_cq_phase": Out(1),
            "p_cq_iv":    Out(11),
            "p_cq_ien":   Out(1),
            "p_sq":       In(qw),
            "p_sq_head":  Out(16),
            "a_sq":       In(qw),
            "a_sq_cqid":  Out(qw),
            "a_cq":       In(qw),
            "a_cq_credit": Out(16),
            "cq0_credit": Out(16),      # the admin CQ's, without a lookup (AER slots)
            "a_cq_inflight": Out(16),         # commands fetched, not yet completed
            "cq_users":   Out(n),             # CQs that some valid SQ completes to
            "head_empty": Out(data.StructLayout({"valid": 1, "iv": 11})),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        n = config.queue_pairs
        qw = config.qid_width

        def array(width, name, init=0):
            return Array(Signal(width, name=f"{name}{i}", init=init) for i in range(n))

        sq_valid, sq_tail, sq_head = array(1, "sq_valid"), array(16, "sq_tail"), \
            array(16, "sq_head")
        sq_size, sq_cqid = array(16, "sq_size_m1"), array(qw, "sq_cqid")
        sq_done = array(16, "sq_done")          # the head as the CQ entries report it
        cq_valid, cq_head, cq_tail = array(1, "cq_valid"), array(16, "cq_head"), \
            array(16, "cq_tail")
        cq_phase, cq_size = array(1, "cq_phase"), array(16, "cq_size_m1")
        cq_iv, cq_ien = array(11, "cq_iv"), array(1, "cq_ien")
        cq_reserved, cq_posted = array(16, "cq_reserved"), array(16, "cq_posted")

        def wrap(value, size_m1):
            return Mux(value == size_m1, 0, value + 1)

        setup = self.setup
        for q in range(n):
            # -- SQ q ------------------------------------------------------------------
            with m.If(setup.valid & ~setup.cq & (setup.qid == q)):
                m.d.sync += [
                    sq_valid[q].eq(setup.create), sq_tail[q].eq(0), sq_head[q].eq(0),
                    sq_done[q].eq(0),
                    sq_size[q].eq(setup.size_m1), sq_cqid[q].eq(setup.cqid),
                ]
            with m.Elif(self.sq_tail.valid & (self.sq_tail.qid == q)):
                m.d.sync += sq_tail[q].eq(self.sq_tail.value)
            with m.If(self.sq_fetched.valid & (self.sq_fetched.qid == q)):
                m.d.sync += sq_done[q].eq(self.sq_fetched.sqhd)
            with m.If(self.sq_advance.valid & (self.sq_advance.qid == q)):
                advanced = sq_head[q] + self.sq_advance.n
                m.d.sync += sq_head[q].eq(
                    Mux(advanced > sq_size[q], advanced - sq_size[q] - 1, advanced))

            # -- CQ q ------------------------------------------------------------------
            with m.If(setup.valid & setup.cq & (setup.qid == q)):
                m.d.sync += [
                    cq_valid[q].eq(setup.create), cq_head[q].eq(0), cq_tail[q].eq(0),
                    cq_phase[q].eq(1), cq_size[q].eq(setup.size_m1),
                    cq_iv[q].eq(setup.iv), cq_ien[q].eq(setup.ien),
                    cq_reserved[q].eq(0), cq_posted[q].eq(0),
                ]
            with m.Else():
                with m.If(self.cq_head.valid & (self.cq_head.qid == q)):
                    m.d.sync += cq_head[q].eq(self.cq_head.value)
                with m.If(self.cq_post.valid & (self.cq_post.qid == q)):
                    m.d.sync += cq_tail[q].eq(wrap(cq_tail[q], cq_size[q]))
                    with m.If(cq_tail[q] == cq_size[q]):
                        m.d.sync += cq_phase[q].eq(~cq_phase[q])
                posted = (Mux(self.cq_post.valid & (self.cq_post.qid == q), 1, 0)
                          + Mux(self.cq_release.valid & (self.cq_release.qid == q), 1, 0))
                m.d.sync += cq_posted[q].eq(cq_posted[q] + posted)
                with m.If(self.cq_reserve.valid & (self.cq_reserve.qid == q)):
                    m.d.sync += cq_reserved[q].eq(cq_reserved[q] + self.cq_reserve.n)

            m.d.comb += [
                self.sq_valid[q].eq(sq_valid[q]),
                self.sq_work[q].eq(sq_valid[q] & (sq_tail[q] != sq_head[q])),
                self.cq_valid[q].eq(cq_valid[q]),
                self.cq_empty[q].eq(cq_tail[q] == cq_head[q]),
            ]
            users = [sq_valid[s] & (sq_cqid[s] == q) for s in range(1, n)]
            m.d.comb += self.cq_users[q].eq(Cat(*users).any())

        with m.If(self.clear):
            for q in range(n):
                m.d.sync += [sq_valid[q].eq(0), cq_valid[q].eq(0)]

        # -- Lookups ---------------------------------------------------------------------
        s = self.f_sq
        m.d.comb += [
            self.f_sq_head.eq(sq_head[s]),
            self.f_sq_tail.eq(sq_tail[s]),
            self.f_sq_size_m1.eq(sq_size[s]),
            self.f_sq_cqid.eq(sq_cqid[s]),
        ]

        def credit(c, name):
            used = Signal(16, name=f"{name}_used")
            m.d.comb += used.eq(Mux(cq_tail[c] >= cq_head[c], cq_tail[c] - cq_head[c],
                                    cq_tail[c] + cq_size[c] + 1 - cq_head[c]))
            inflight = Signal(16, name=f"{name}_inflight")
            m.d.comb += inflight.eq(cq_reserved[c] - cq_posted[c])
            free = Signal(signed(18), name=f"{name}_free")
            m.d.comb += free.eq(cq_size[c] - used - inflight)
            return Mux(cq_valid[c] & (free > 0), free[:16], 0), inflight

        m.d.comb += self.a_sq_cqid.eq(sq_cqid[self.a_sq])
        f_credit, _ = credit(self.f_cq, "f")
        a_credit, a_inflight = credit(self.a_cq, "a")
        cq0_credit, _ = credit(0, "cq0")
        c = self.p_cq
        m.d.comb += [
            self.f_cq_credit.eq(f_credit),
            self.a_cq_credit.eq(a_credit),
            self.cq0_credit.eq(cq0_credit),
            self.a_cq_inflight.eq(a_inflight),
            self.p_cq_tail.eq(cq_tail[c]),
            self.p_cq_phase.eq(cq_phase[c]),
            self.p_cq_iv.eq(cq_iv[c]),
            self.p_cq_ien.eq(cq_ien[c]),
            self.p_sq_head.eq(sq_done[self.p_sq]),
        ]

        # A CQ head doorbell that empties the CQ withdraws its INTx level [QEMU].
        h = self.cq_head
        m.d.sync += [
            self.head_empty.valid.eq(h.valid & cq_valid[h.qid] & (h.value == cq_tail[h.qid])),
            self.head_empty.iv.eq(cq_iv[h.qid]),
        ]
        return m
