"""SQ arbiter: which SQ the fetch engine serves next [NVMe 1.4 §4.11].

*Round robin* (CC.AMS = 000b) [NVMe 1.4 §4.11.1]: every SQ with work, the admin SQ
included, in turn; QPRIO is ignored.

*Weighted round robin with urgent priority class* (CC.AMS = 001b) [NVMe 1.4 §4.11.2]:
three strict classes — the admin SQ first, then the urgent SQs (QPRIO 00b), then the
weighted ones — and, among the weighted, high, medium and low (QPRIO 01b, 10b, 11b) share
the fetches by their weights HPW + 1, MPW + 1, LPW + 1 (Set Features Arbitration, 0's
based). Each weighted class holds a credit of commands; a class is served only while it
has credit, and each fetch takes from it the commands fetched (a fetch takes at most the
credit left: ``limit``). When no weighted class with work has credit left, a new round
starts: every class gets its weight again. Within each class (and over all SQs in round
robin mode) the SQs take turns: the search starts after the SQ of that class served
last. With all classes busy, high, medium and low therefore get (HPW + 1) : (MPW + 1) :
(LPW + 1) of the commands fetched; the urgent class can starve them (the spec warns the
host of it).

Cost per SQ: its two QPRIO bits, one LUT that keeps its candidate bit when it is of the
class served, and its share of one round-robin priority encoder; the class choice is a
few OR reductions and three credit counters, whatever the number of SQs. The encoder
serves the class chosen in the cycle before (a register), so the class logic is not in
front of it; its pick counts only while that is still the class to serve, so a change of
class costs a cycle (never in round robin mode: one class) and never changes a decision.

The fetch engine says when it chose ``pick`` (``take``) and how many commands it then
fetched from that SQ (``fetched``); ``limit`` holds for the SQ taken last.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..admin_layouts import Arbitration, QueuePriority
from ..bus import strobe
from ..config import CoreConfig
from ..bitmap import onehot, with_bits
from ..priority import round_robin
from .queue_state import QueueSetup

__all__ = ["SqArbiter", "NO_LIMIT"]

#: ``limit`` when the class served has no credit to respect (admin, urgent, round robin):
#: above any weight (at most 256) and any fetch.
NO_LIMIT = 0x1FF

#: The weighted classes, in the order a round serves them.
WEIGHTED = (QueuePriority.HIGH, QueuePriority.MEDIUM, QueuePriority.LOW)


class SqArbiter(wiring.Component):
    def __init__(self, config: CoreConfig):
        self._config = config
        n = config.queue_pairs
        qw = config.qid_width
        super().__init__({
            "candidates": In(n),          # SQs with work the fetch engine may serve
            "wrr":        In(1),          # CC.AMS = weighted round robin with urgent
            "weights":    In(Arbitration),  # LPW, MPW, HPW (AB is the fetch engine's)
            "setup":      In(strobe(QueueSetup)),   # QPRIO of each SQ created
            "clear":      In(1),          # controller reset
            "pick":       Out(qw),
            "found":      Out(1),
            "take":       In(1),          # the fetch engine chose ``pick``
            "limit":      Out(range(NO_LIMIT + 1)),   # commands the SQ taken may fetch
            "fetched":    In(data.StructLayout({"valid": 1, "n": 16})),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._config.queue_pairs
        qw = self._config.qid_width

        # -- QPRIO of every SQ, as two bitmaps (bit 0 of each: the admin SQ, unused) ------
        prio_lo = Signal(n)
        prio_hi = Signal(n)
        s = self.setup
        mine = onehot(s.qid[:qw], s.valid & ~s.cq & s.create, n)
        m.d.sync += [prio_lo.eq(with_bits(prio_lo, clear=mine, set=Mux(s.prio[0], mine, 0))),
                     prio_hi.eq(with_bits(prio_hi, clear=mine, set=Mux(s.prio[1], mine, 0)))]

        io = Signal(n)
        m.d.comb += io.eq(self.candidates & ~Const(1, n))
        masks = {}
        for cls in QueuePriority:
            mask = Signal(n, name=f"cand_{cls.name.lower()}")
            lo = prio_lo if cls.value & 1 else ~prio_lo
            hi = prio_hi if cls.value & 2 else ~prio_hi
            m.d.comb += mask.eq(io & lo & hi)
            masks[cls] = mask

        # -- Weighted classes: credits, a new round when none with work has any ----------
        weight = {
            QueuePriority.HIGH: self.weights.hpw + 1,
            QueuePriority.MEDIUM: self.weights.mpw + 1,
            QueuePriority.LOW: self.weights.lpw + 1,
        }
        # Class numbers: the four QPRIO values, ADMIN, ALL (round robin mode), NONE.
        ADMIN, ALL, NONE = 4, 5, 6
        taken_cls = Signal(range(7), init=ALL)
        credit = {cls: Signal(9, name=f"credit_{cls.name.lower()}") for cls in WEIGHTED}
        busy = {cls: masks[cls].any() for cls in WEIGHTED}
        new_round = Signal()
        m.d.comb += new_round.eq(~Cat(*(busy[c] & (credit[c] != 0) for c in WEIGHTED)).any())
        cls_now = Signal(range(7))                      # the class to serve
        with m.If(~self.wrr):
            m.d.comb += cls_now.eq(ALL)
        with m.Elif(self.candidates[0]):
            m.d.comb += cls_now.eq(ADMIN)
        with m.Elif(masks[QueuePriority.URGENT].any()):
            m.d.comb += cls_now.eq(QueuePriority.URGENT.value)
        for cls in WEIGHTED:
            with m.Elif(busy[cls] & ((credit[cls] != 0) | new_round)):
                m.d.comb += cls_now.eq(cls.value)
        with m.Else():
            m.d.comb += cls_now.eq(NONE)
        # The encoder serves the class chosen in the cycle before (``cls_q``, a register:
        # the class logic is not in front of the encoder), and its pick counts only when
        # that is still the class to serve; when the class changes, the pick waits a
        # cycle. Round robin mode has one class (ALL): no such cycle there.
        cls_q = Signal(range(7), init=NONE)
        m.d.sync += cls_q.eq(Mux(self.clear, NONE, cls_now))
        weighted_q = Cat(*(cls_q == c.value for c in WEIGHTED)).any()
        with m.If(self.take & weighted_q & new_round):
            m.d.sync += [credit[c].eq(weight[c]) for c in WEIGHTED]
        for cls in WEIGHTED:
            with m.If(self.fetched.valid & (taken_cls == cls.value)):
                m.d.sync += credit[cls].eq(credit[cls] - self.fetched.n)
        with m.If(self.clear):
            m.d.sync += [c.eq(0) for c in credit.values()]

        # -- The class served: its candidates, round robin among them --------------------
        # Each candidate is kept when it is of the class served: one LUT per SQ (its
        # candidate bit, its two QPRIO bits and the class).
        of_class = Signal(n)
        m.d.comb += of_class[0].eq((cls_q == ALL) | (cls_q == ADMIN))
        for q in range(1, n):
            m.d.comb += of_class[q].eq((cls_q == ALL) |
                                       (cls_q == Cat(prio_lo[q], prio_hi[q], Const(0, 1))))
        chosen = Signal(n)
        m.d.comb += chosen.eq(self.candidates & of_class)
        # One "served last" pointer per class; ADMIN and NONE need none.
        last = [Signal(qw, name=f"last_{i}") for i in range(6)]
        last_now = Signal(qw)
        with m.Switch(cls_q):
            for i in (*(c.value for c in QueuePriority), ALL):
                with m.Case(i):
                    m.d.comb += last_now.eq(last[i])
        pick, found = round_robin(m, chosen, last_now, qw, name="rr")
        m.d.comb += [self.pick.eq(pick), self.found.eq(found & (cls_now == cls_q))]

        # -- Taken: remember the class and the SQ --------------------------------------
        with m.If(self.take):
            m.d.sync += taken_cls.eq(cls_q)
            with m.Switch(cls_q):
                for i in (*(c.value for c in QueuePriority), ALL):
                    with m.Case(i):
                        m.d.sync += last[i].eq(self.pick)

        m.d.comb += self.limit.eq(NO_LIMIT)
        for cls in WEIGHTED:
            with m.If(taken_cls == cls.value):
                m.d.comb += self.limit.eq(credit[cls])

        with m.If(self.clear):
            m.d.sync += [taken_cls.eq(ALL), *(p.eq(0) for p in last)]
        return m
