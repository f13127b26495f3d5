"""Per-queue dynamic state [NVMe 1.4 §4.1 (SQ and CQ heads and tails), §4.6 (phase
tag), §5.3–§5.7 (create and delete I/O queues)]: SQ tail/head, CQ head/tail/phase and
the CQ slot accounting, in memories.

Each field has one writer: the doorbell decoder (SQ tail, CQ head), the fetch engine (SQ
head, CQ slots reserved), the router's hand-over (the SQ head SQHD reports), the CQ
poster (CQ tail, phase, entries posted) and the admin engine (create, delete, and the
release of a held AER's slot, which only ever concerns CQ 0 and is counted in
flip-flops). A CQ's *credit* — slots neither holding an unconsumed entry nor promised to
a fetched command — is

    credit = size − 1 − ((tail − head) mod size) − (reserved − posted)

so a command is fetched only when its completion has a slot, and posting never waits.

Storage. Every field is a memory indexed by queue ID with one write port (so Yosys maps
it to block or distributed RAM), replicated once per reader: ``fetch`` (the fetch
engine), ``post`` (the CQ poster), ``admin`` (the admin engine), the CQ head doorbell's
INTx check, and a copy of CQ 0 for the admin engine's AER slots. Reads are synchronous:
a port shows the fields of the queue on its address in the cycle before, including a
write made in that cycle (transparent), which is what a register would show when the
address does not change. The only asynchronous reads are of the SQ → CQ map (a few bits
per queue, distributed RAM): the fetch engine's CQ lookup follows the SQ its arbiter is
choosing in the same cycle, so the credit comes with the SQ's fields and the doorbell →
SQE read latency is that of the flip-flop state; the per-CQ count of attached SQs
(Delete I/O CQ's "Invalid Queue Deletion" check) is read and updated the same way.

Creating a queue writes its fields' initial values. The fields that an engine also
writes take the create through the same write port: the doorbell decoder waits a cycle
(core.py holds ``update.ready`` low while a queue is set up); the fetch engine's head and
reservation writes and the poster's tail write win, and a create that meets one is
written the cycle after (none of those engines writes twice in a row, and creates are
many cycles apart). Nothing reads a queue in the cycle after it is created.

Which SQ has work is one flip-flop per SQ, ``sq_work``: set by a tail doorbell, cleared
when the fetch engine finds the SQ empty (``fetch.empty``); a doorbell in the same cycle
wins. Cleared when the SQ is set up and by a controller reset.
"""

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..bus import strobe
from ..config import CoreConfig
from ..bitmap import onehot, with_bits

__all__ = ["QueueState", "QueueSetup", "FetchLookup", "PostLookup", "AdminLookup"]


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


class FetchLookup(wiring.Signature):
    """The fetch engine's view: put an SQ on ``sq``; the cycle after, its fields and its
    CQ's credit are on the inputs. ``advance`` moves the head of the SQ on ``sq`` (the
    cycle before), ``reserve`` takes slots of a CQ (the SQ's CQ, or CQ 0), ``empty``
    clears an SQ's work bit."""

    def __init__(self, config: CoreConfig):
        qw = config.qid_width
        super().__init__({
            "sq":         Out(qw),
            "head":       In(16),
            "tail":       In(16),
            "size_m1":    In(16),
            "cqid":       In(qw),
            "credit":     In(16),
            "cq0_credit": In(16),         # the admin CQ's, without a lookup (AER slots)
            "advance":    Out(strobe(data.StructLayout({"qid": qw, "n": 16}))),
            "reserve":    Out(strobe(data.StructLayout({"qid": qw, "n": 16}))),
            "empty":      Out(strobe(data.StructLayout({"qid": qw}))),
        })


class PostLookup(wiring.Signature):
    """The CQ poster's view: ``cq`` and ``sq`` addressed, fields the cycle after.
    ``post`` advances the tail of the CQ on ``cq`` (the cycle before)."""

    def __init__(self, config: CoreConfig):
        qw = config.qid_width
        super().__init__({
            "cq":      Out(qw),
            "tail":    In(16),
            "phase":   In(1),
            "iv":      In(11),
            "ien":     In(1),
            "sq":      Out(qw),          # the SQ head the entry reports ...
            "sq_head": In(16),           # ... its entries delivered so far
            "post":    Out(strobe(data.StructLayout({"qid": qw}))),
        })


class AdminLookup(wiring.Signature):
    """The admin engine's view. ``sq`` → ``sq_cqid`` and ``cq`` → ``cq_inflight`` a
    cycle later; ``users_cq`` → ``cq_users`` (SQs attached) in the same cycle."""

    def __init__(self, config: CoreConfig):
        qw = config.qid_width
        n = config.queue_pairs
        super().__init__({
            "sq_valid":    In(n),
            "cq_valid":    In(n),
            "sq":          Out(qw),
            "sq_cqid":     In(qw),
            "cq":          Out(qw),
            "cq_inflight": In(16),        # commands fetched, not yet completed
            "users_cq":    Out(qw),
            "cq_users":    In(1),         # some valid SQ completes to it
            "release":     Out(strobe(data.StructLayout({"qid": qw}))),  # CQ 0 only
        })


class _CqTail(data.Struct):
    tail:   16
    phase:  1
    posted: 16


class _CqConfig(data.Struct):
    size_m1: 16
    iv:      11
    ien:     1


def _credit(m, name, valid, head, tail, size_m1, reserved, posted):
    used = Signal(16, name=f"{name}_used")
    m.d.comb += used.eq(Mux(tail >= head, tail - head, tail + size_m1 + 1 - head))
    inflight = Signal(16, name=f"{name}_inflight")
    m.d.comb += inflight.eq(reserved - posted)
    free = Signal(signed(18), name=f"{name}_free")
    m.d.comb += free.eq(size_m1 - used - inflight)
    credit = Signal(16, name=f"{name}_credit")
    m.d.comb += credit.eq(Mux(valid & (free > 0), free[:16], 0))
    return credit, inflight


class QueueState(wiring.Component):
    def __init__(self, config: CoreConfig):
        self._config = config
        n = config.queue_pairs
        qw = config.qid_width
        super().__init__({
            "setup":      In(strobe(QueueSetup)),
            "sq_tail":    In(strobe(data.StructLayout({"qid": qw, "value": 16}))),
            "cq_head":    In(strobe(data.StructLayout({"qid": qw, "value": 16}))),
            # an entry of SQ qid went to its engine: the head SQHD reports is past it
            "sq_fetched": In(strobe(data.StructLayout({"qid": qw, "sqhd": 16}))),
            "clear":      In(1),
            "sq_work":    Out(n),          # a doorbell came, not yet found empty
            "fetch":      In(FetchLookup(config)),
            "post":       In(PostLookup(config)),
            "admin":      In(AdminLookup(config)),
            # a CQ head doorbell emptied its CQ (INTx level withdrawn)
            "head_empty": Out(data.StructLayout({"valid": 1, "iv": 11})),
        })

    def elaborate(self, platform):  # noqa: C901 (one memory per field, top to bottom)
        m = Module()
        config = self._config
        n = config.queue_pairs
        qw = config.qid_width
        setup, f, p, a = self.setup, self.fetch, self.post, self.admin
        sq_valid = Signal(n)
        cq_valid = Signal(n)
        s_qid = setup.qid[:qw]
        sq_create = setup.valid & ~setup.cq & setup.create
        cq_create = setup.valid & setup.cq & setup.create

        def mem(name, shape):
            m.submodules[name] = mm = memory.Memory(shape=shape, depth=n, init=[])
            return mm

        def sync_reads(mm, wr, *addrs):
            ports = []
            for addr in addrs:
                rd = mm.read_port(transparent_for=(wr,))
                m.d.comb += rd.addr.eq(addr)
                ports.append(rd.data)
            return ports

        def write(wr, en, addr, value):
            m.d.comb += [wr.en.eq(en), wr.addr.eq(addr), wr.data.eq(value)]

        def shared_write(name, wr, en, addr, value, init):
            """The engine's write wins; a create that meets it is written a cycle later."""
            held = Signal(name=f"{name}_held")
            held_qid = Signal(qw, name=f"{name}_held_qid")
            create = sq_create if name.startswith("sq") else cq_create
            with m.If(en):
                write(wr, 1, addr, value)
                m.d.sync += [held.eq(create), held_qid.eq(s_qid)]
            with m.Elif(held):
                write(wr, 1, held_qid, init)
                m.d.sync += [held.eq(create), held_qid.eq(s_qid)]
            with m.Else():
                write(wr, create, s_qid, init)
                m.d.sync += held.eq(0)

        # Registered addresses of the read ports, for the flip-flop state beside them.
        f_cq = Signal(qw)              # the CQ of the SQ on fetch.sq (asynchronous map)
        f_cq_r = Signal(qw)
        p_cq_r = Signal(qw)
        a_cq_r = Signal(qw)
        m.d.sync += [f_cq_r.eq(f_cq), p_cq_r.eq(p.cq), a_cq_r.eq(a.cq)]

        # -- Validity (flip-flops: every engine checks an ID against them) -------------------
        for valid, is_cq in ((sq_valid, 0), (cq_valid, 1)):
            mine = onehot(s_qid, setup.valid & (setup.cq == is_cq), n)
            m.d.sync += valid.eq(with_bits(valid, clear=Mux(setup.create, 0, mine),
                                           set=Mux(setup.create, mine, 0)))
        with m.If(self.clear):
            m.d.sync += [sq_valid.eq(0), cq_valid.eq(0)]
        m.d.comb += [a.sq_valid.eq(sq_valid), a.cq_valid.eq(cq_valid)]

        # -- SQ fields ------------------------------------------------------------------------
        sq_tail = mem("sq_tail", 16)                   # doorbell decoder
        wr = sq_tail.write_port()
        (f_tail,) = sync_reads(sq_tail, wr, f.sq)
        with m.If(setup.valid):                        # the doorbell waits meanwhile
            write(wr, sq_create, s_qid, 0)
        with m.Else():
            write(wr, self.sq_tail.valid, self.sq_tail.qid, self.sq_tail.value)

        sq_head = mem("sq_head", 16)                   # fetch engine
        wr = sq_head.write_port()
        (f_head,) = sync_reads(sq_head, wr, f.sq)
        sq_size = mem("sq_size", 16)                   # admin engine
        wr_size = sq_size.write_port()
        (f_size,) = sync_reads(sq_size, wr_size, f.sq)
        write(wr_size, sq_create, s_qid, setup.size_m1)
        advanced = f_head + f.advance.n
        next_head = Signal(16)
        m.d.comb += next_head.eq(Mux(advanced > f_size, advanced - f_size - 1, advanced))
        shared_write("sq_head", wr, f.advance.valid, f.advance.qid, next_head, 0)

        # -- SQ work bits ---------------------------------------------------------------------
        # Cleared when a fetch takes everything up to the tail (as it stands: the port
        # shows a doorbell of the cycle before) or finds the SQ empty; a doorbell in the
        # same cycle wins.
        work = Signal(n)
        m.d.sync += work.eq(with_bits(
            work,
            clear=(onehot(f.advance.qid, f.advance.valid & (next_head == f_tail), n)
                   | onehot(f.empty.qid, f.empty.valid, n)
                   | onehot(s_qid, setup.valid & ~setup.cq, n)),
            set=onehot(self.sq_tail.qid, self.sq_tail.valid, n)))   # a doorbell wins
        with m.If(self.clear):
            m.d.sync += work.eq(0)
        m.d.comb += self.sq_work.eq(work & sq_valid)

        sq_cqid = mem("sq_cqid", qw)                   # admin engine; read at once
        wr = sq_cqid.write_port()
        write(wr, sq_create, s_qid, setup.cqid[:qw])
        f_map = sq_cqid.read_port(domain="comb")
        a_map = sq_cqid.read_port(domain="comb")
        s_map = sq_cqid.read_port(domain="comb")
        f_cqid = Signal(qw)
        a_cqid = Signal(qw)
        m.d.comb += [f_map.addr.eq(f.sq), f_cq.eq(f_map.data),
                     a_map.addr.eq(a.sq), s_map.addr.eq(s_qid)]
        m.d.sync += [f_cqid.eq(f_map.data), a_cqid.eq(a_map.data)]

        sq_done = mem("sq_done", 16)                   # router hand-over
        wr = sq_done.write_port()
        (p_sq_head,) = sync_reads(sq_done, wr, p.sq)
        write(wr, self.sq_fetched.valid, self.sq_fetched.qid, self.sq_fetched.sqhd)

        m.d.comb += [
            f.head.eq(f_head), f.tail.eq(f_tail), f.size_m1.eq(f_size), f.cqid.eq(f_cqid),
            p.sq_head.eq(p_sq_head), a.sq_cqid.eq(a_cqid),
        ]

        # -- CQ fields ------------------------------------------------------------------------
        h = self.cq_head
        cq_head = mem("cq_head", 16)                   # doorbell decoder
        wr = cq_head.write_port()
        f_cq_head, z_head = sync_reads(cq_head, wr, f_cq, 0)
        with m.If(setup.valid):                        # the doorbell waits meanwhile
            write(wr, cq_create, s_qid, 0)
        with m.Else():
            write(wr, h.valid, h.qid, h.value)

        cq_cfg = mem("cq_cfg", _CqConfig)              # admin engine
        wr = cq_cfg.write_port()
        f_cfg, p_cfg, h_cfg, z_cfg = (data.View(_CqConfig, x) for x in sync_reads(
            cq_cfg, wr, f_cq, p.cq, h.qid, 0))
        cfg = Signal(_CqConfig)
        m.d.comb += [cfg.size_m1.eq(setup.size_m1), cfg.iv.eq(setup.iv),
                     cfg.ien.eq(setup.ien)]
        write(wr, cq_create, s_qid, cfg)

        cq_tail = mem("cq_tail", _CqTail)              # CQ poster
        wr = cq_tail.write_port()
        f_tp, p_tp, h_tp, z_tp, a_tp = (data.View(_CqTail, x) for x in sync_reads(
            cq_tail, wr, f_cq, p.cq, h.qid, 0, a.cq))
        wrap = p_tp.tail == p_cfg.size_m1
        posted = Signal(_CqTail)
        m.d.comb += [
            posted.tail.eq(Mux(wrap, 0, p_tp.tail + 1)),
            posted.phase.eq(p_tp.phase ^ wrap),
            posted.posted.eq(p_tp.posted + 1),
        ]
        shared_write("cq_tail", wr, p.post.valid, p.post.qid, posted,
                     _CqTail.const({"phase": 1}))

        cq_res = mem("cq_reserved", 16)                # fetch engine
        wr = cq_res.write_port()
        f_res, z_res, a_res = sync_reads(cq_res, wr, f_cq, 0, a.cq)
        # The reservation's CQ is on the fetch port's address, or it is CQ 0.
        reserved = Mux(f.reserve.qid == 0, z_res, f_res) + f.reserve.n
        shared_write("cq_reserved", wr, f.reserve.valid, f.reserve.qid, reserved, 0)

        # Held AERs' slots given back: CQ 0 only, in flip-flops.
        released = Signal(16)
        with m.If(cq_create & (s_qid == 0)):
            m.d.sync += released.eq(0)
        with m.Elif(a.release.valid):
            m.d.sync += released.eq(released + 1)

        def posted_of(tp, cq):
            return tp.posted + Mux(cq == 0, released, 0)

        f_credit, _ = _credit(m, "f", cq_valid.bit_select(f_cq_r, 1), f_cq_head, f_tp.tail,
                              f_cfg.size_m1, f_res, posted_of(f_tp, f_cq_r))
        z_credit, _ = _credit(m, "cq0", cq_valid[0], z_head, z_tp.tail, z_cfg.size_m1,
                              z_res, posted_of(z_tp, 0))
        a_inflight = Signal(16)
        m.d.comb += [
            a_inflight.eq(a_res - posted_of(a_tp, a_cq_r)),
            f.credit.eq(f_credit), f.cq0_credit.eq(z_credit), a.cq_inflight.eq(a_inflight),
            p.tail.eq(p_tp.tail), p.phase.eq(p_tp.phase),
            p.iv.eq(p_cfg.iv), p.ien.eq(p_cfg.ien),
        ]

        # -- SQs attached to each CQ (Delete I/O CQ refuses while there are any) -------------
        users = mem("cq_users", qw + 1)                # admin engine; read at once
        wr = users.write_port()
        u_rd = users.read_port(domain="comb")         # the setup's own update
        a_rd = users.read_port(domain="comb")
        m.d.comb += [
            u_rd.addr.eq(Mux(setup.create, setup.cqid[:qw], s_map.data)),
            a_rd.addr.eq(a.users_cq),
            a.cq_users.eq(a_rd.data != 0),
        ]
        with m.If(setup.valid & setup.cq):
            write(wr, setup.create, s_qid, 0)
        with m.Elif(setup.valid & (sq_valid.bit_select(s_qid, 1) != setup.create)):
            write(wr, 1, u_rd.addr, Mux(setup.create, u_rd.data + 1, u_rd.data - 1))

        # -- A CQ head doorbell that empties the CQ withdraws its INTx level [QEMU] ----------
        h_valid = Signal()
        h_value = Signal(16)
        m.d.sync += [h_valid.eq(h.valid & cq_valid.bit_select(h.qid, 1)),
                     h_value.eq(h.value)]
        m.d.comb += [
            self.head_empty.valid.eq(h_valid & (h_value == h_tp.tail)),
            self.head_empty.iv.eq(h_cfg.iv),
        ]
        return m
