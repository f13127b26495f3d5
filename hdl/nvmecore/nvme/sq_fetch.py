"""SQ arbiter and fetch engine [NVMe 1.4 §4.1, §4.11].

The arbiter (:mod:`.sq_arbiter`: round robin, or weighted round robin with urgent
priority class, by CC.AMS) chooses among the SQs with work. For the chosen SQ it
fetches, with one DMA read,
``n = min(entries available, credit of its CQ, Arbitration Burst, max read request size
/ 64, entries before the ring wraps, entries before a 4 KiB boundary, room downstream,
its weighted class's credit)``
entries and reserves ``n`` slots of the CQ (docs/admin-commands.md, "Queues"). An SQ whose
CQ has no credit is skipped until a CQ head doorbell returns slots. Several reads may be
in flight (``CoreConfig.sq_fetch_reads``); their data comes back in request order and
leaves as one :class:`FetchedCommand` per entry.

*Room downstream*: an entry is fetched only when the block it goes to can take it at
once — the admin FIFO (``admin_slots`` entries, ``admin_taken`` gives one back) for SQ 0,
the I/O engine (``io_slots`` commands, ``io_returned`` gives one back) for the others — so
the read data of a fetch never waits, and never holds up the reads behind it on the
shared DMA read port (docs/io-commands.md "Many commands in flight"). While the I/O
engine holds :data:`FETCH_BATCH` commands or more, an I/O SQ is fetched only once the
room for min(:data:`FETCH_BATCH`, its entries waiting) is back, so a busy engine is fed by
multi-entry reads rather than one read per completion.

A read that fails (an error beat), or is outstanding while no data at all moves on the
shared DMA read port for ``dma_read_timeout`` cycles (``port_moved``: data comes back in
request order, so a read behind others is only waiting), is fatal:
``fatal`` pulses (CSTS.CFS), nothing more is fetched or passed on until a controller
reset, and data still arriving for abandoned reads is dropped. No entry of a failed read
is passed on: a bus may flag only one beat of a failed read (the last, say), so the
entries of a read of several wait for its last beat (in ``hold``, sized for the largest
read) before they leave; a read's last entry leaves at once when none wait.

*An SQ deleted while it is being fetched* (Delete I/O SQ completes between the arbiter's
choice and the DMA read being taken — the read port can be busy for a long time): the
fetch is cancelled. Before the request is offered nothing happens; once offered, the
request stays valid until taken (``amaranth.lib.stream``'s rule), but the SQ's head and
the CQ's slots are left alone and the read's data is dropped, so no command of a deleted
SQ runs or completes after its Delete I/O SQ did [NVMe 1.4 §5.6].

*Held CQ* (``hold``): while the admin engine waits for the commands of a deleted SQ to
complete — it waits for every command in flight on that SQ's CQ — no other SQ of that
CQ is fetched, so the wait ends however busy they are.

The admin engine can ask for one slot of CQ 0 (``reserve``) to complete an Asynchronous
Event Request it holds; the engine grants it between fetches.
"""

from amaranth import Cat, Const, Module, Mux, ResetInserter, Signal
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..admin_layouts import Arbitration
from ..bus import DmaRead, strobe
from ..config import CoreConfig
from ..layouts import Sqe
from .queue_state import FetchLookup, QueueSetup
from .sq_arbiter import SqArbiter

__all__ = ["FetchEngine", "FetchedCommand", "FETCH_BATCH"]

SQE_BYTES = 64
#: Entries an I/O SQ's fetch waits to gather room for while the I/O engine is busy (at
#: most half of ``io_slots``).
FETCH_BATCH = 4


class FetchedCommand(data.StructLayout):
    def __init__(self, config: CoreConfig):
        super().__init__({
            "sqe":  Sqe,
            "sqid": config.qid_width,
            "cqid": config.qid_width,
            "sqhd": 16,
        })


class FetchEngine(wiring.Component):
    def __init__(self, config: CoreConfig, admin_slots=4, *, error_on_every_beat=False):
        self._config = config
        self._max_reads = config.sq_fetch_reads
        self._admin_slots = admin_slots
        self._error_on_every_beat = error_on_every_beat
        n = config.queue_pairs
        qw = config.qid_width
        super().__init__({
            "dma":       Out(DmaRead(config.data_width)),
            "cmd":       Out(stream.Signature(FetchedCommand(config))),
            "run":       In(1),
            "bus_master_enable": In(1),
            "max_read_request_size": In(3),
            "burst_log2": In(3),                  # Arbitration Burst; 7 = no limit
            "wrr":       In(1),                   # CC.AMS: weighted round robin + urgent
            "weights":   In(Arbitration),         # LPW, MPW, HPW (AB: burst_log2)
            "setup":     In(strobe(QueueSetup)),
            "unblock":   In(1),                   # a CQ got slots back
            "clear":     In(1),                   # controller reset
            "fatal":     Out(1),
            "idle":      Out(1),                  # no read outstanding, nothing buffered
            "reserve":   In(1),                   # admin: hold one slot of CQ 0 ...
            "reserve_ack": Out(1),                # ... granted (one-cycle pulse)
            "admin_taken": In(1),                 # an admin command left the admin FIFO
            "io_returned": In(1),                 # an I/O command left the I/O engine
            "port_moved": In(1),                  # a data beat moved on the shared port
            "hold":      In(data.StructLayout({"valid": 1, "qid": qw})),  # CQ not to feed
            # QueueState
            "sq_work":   In(n),                   # SQs a doorbell came for
            "queues":    Out(FetchLookup(config)),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        n_q = config.queue_pairs
        qw = config.qid_width
        width = config.data_width
        beats_per_sqe = max(1, SQE_BYTES * 8 // width)

        # -- SQ base addresses ----------------------------------------------------------------
        m.submodules.base = base_mem = memory.Memory(shape=52, depth=n_q, init=[])
        base_wr = base_mem.write_port()
        base_rd = base_mem.read_port(transparent_for=(base_wr,))
        m.d.comb += [
            base_wr.addr.eq(self.setup.qid),
            base_wr.data.eq(self.setup.base),
            base_wr.en.eq(self.setup.valid & ~self.setup.cq & self.setup.create),
        ]

        # -- In-flight reads -------------------------------------------------------------------
        ctx_layout = data.StructLayout({"sqid": qw, "cqid": qw, "first": 16, "count": 16,
                                        "size_m1": 16, "drop": 1})
        ctx = fifo.SyncFIFOBuffered(width=ctx_layout.size, depth=self._max_reads)
        m.submodules.ctx = ResetInserter(self.clear)(ctx)
        outstanding = Signal(range(self._max_reads + 2))
        discard = Signal(range(self._max_reads + 2))   # reads abandoned by a reset
        dead = Signal()                                 # fatal error seen: drop all data

        # -- Arbiter (sq_arbiter.py): round robin, or weighted round robin with urgent
        # class, over the SQs with work and no credit block --------------------------------
        blocked = Signal(n_q)
        m.submodules.arbiter = arbiter = SqArbiter(config)
        m.d.comb += [
            arbiter.candidates.eq(self.sq_work & ~blocked),
            arbiter.wrr.eq(self.wrr),
            arbiter.weights.eq(self.weights),
            arbiter.setup.eq(self.setup),
            arbiter.clear.eq(self.clear),
        ]
        pick, found = arbiter.pick, arbiter.found

        sq = Signal(qw)
        picking = Signal()
        # The queue state and the base address are read a cycle after their address (the
        # SQ being picked, then the SQ chosen); the ports follow their address: hold it.
        qs = self.queues
        m.d.comb += [qs.sq.eq(Mux(picking, pick, sq)), base_rd.addr.eq(Mux(picking, pick, sq))]

        # Entries to fetch now.
        head, tail, size_m1 = qs.head, qs.tail, qs.size_m1
        available = Signal(16)
        m.d.comb += available.eq(Mux(tail >= head, tail - head, tail + size_m1 + 1 - head))
        to_wrap = Signal(17)
        m.d.comb += to_wrap.eq(size_m1 + 1 - head)
        addr = Signal(64)
        m.d.comb += addr.eq(Cat(Const(0, 12), base_rd.data) + (head << 6))
        to_page = Signal(7)
        m.d.comb += to_page.eq(64 - addr[6:12])                 # entries to the 4 KiB edge
        mrrs_entries = Signal(7)
        m.d.comb += mrrs_entries.eq(Const(2, 7) << self.max_read_request_size)  # 128 B << x
        burst = Signal(8)
        m.d.comb += burst.eq(Mux(self.burst_log2 == 7, 255, Const(1, 8) << self.burst_log2))

        # Room downstream: entries asked for (pending) and handed over but not yet taken
        # on (held), per destination.
        io_slots, admin_slots = config.io_slots, self._admin_slots
        io_pending = Signal(range(io_slots + 1))
        io_held = Signal(range(io_slots + 1))
        admin_pending = Signal(range(admin_slots + 1))
        admin_held = Signal(range(admin_slots + 1))
        room = Signal(16)
        m.d.comb += room.eq(Mux(sq == 0, admin_slots - admin_pending - admin_held,
                                io_slots - io_pending - io_held))
        limits = [available, qs.credit, to_wrap, to_page, room, arbiter.limit, mrrs_entries,
                  burst]
        # The smallest, as a tree of pairs (three compare-and-select stages, not seven in
        # a row); whether it is zero comes from the limits themselves, beside the tree.
        level = limits
        while len(level) > 1:
            pairs = []
            for i in range(0, len(level) - 1, 2):
                smaller = Signal(17, name=f"count_{len(level)}_{i // 2}")
                a, b = level[i], level[i + 1]
                m.d.comb += smaller.eq(Mux(a < b, a, b))
                pairs.append(smaller)
            level = pairs + level[len(level) - len(level) % 2:]
        count = level[0]
        none = Signal()                # nothing may be fetched now: some limit is zero
        m.d.comb += none.eq(Cat(*(limit == 0 for limit in limits)).any())

        # Batching: while the I/O engine holds a batch of commands or more (each gives
        # its room back as it completes), an I/O SQ is not fetched for less room than
        # min(batch, entries waiting). Fewer, larger reads: with one read request per
        # entry, short commands spend a third of RQ's beats on SQ reads. (From the room a
        # cycle before: room only grows meanwhile, and each slot given back looks at the
        # SQs again, so the wait never outlasts its reason.)
        batch = min(FETCH_BATCH, io_slots // 2)
        bits = (batch - 1).bit_length()
        in_engine = Signal(range(io_slots + 1))
        room_low = Signal()             # less than a batch of room, a batch in the engine
        room_r = Signal(bits)           # ... and that room
        m.d.comb += in_engine.eq(io_pending + io_held)
        m.d.sync += [room_low.eq((in_engine > io_slots - batch) & (in_engine >= batch)),
                     room_r.eq(io_slots - in_engine)]
        wait_batch = Signal()
        m.d.comb += wait_batch.eq((sq != 0) & room_low
                                  & ((available >= batch) | (available[:bits] > room_r)))

        req = self.dma.req
        req_cqid = Signal(qw)
        req_head = Signal(16)
        req_count = Signal(16)
        req_size_m1 = Signal(16)
        can_issue = self.run & self.bus_master_enable & ~dead & (outstanding < self._max_reads)

        # The SQ chosen deleted by the admin engine: cancel its fetch. A deletion in the
        # cycle the SQ is chosen is compared in SIZE, with the SQ chosen (a register),
        # rather than with the arbiter's choice as it is made: the arbiter's paths then
        # end at ``sq`` and the queue state's read ports.
        deleting = Signal()
        removed = Signal()                  # the SQ chosen was deleted as it was chosen
        removed_qid = Signal.like(self.setup.qid)
        removing = self.setup.valid & ~self.setup.cq & ~self.setup.create
        m.d.comb += deleting.eq(removing & (self.setup.qid == sq))
        m.d.sync += [removed.eq(removing), removed_qid.eq(self.setup.qid)]
        cancelled = Signal()
        drop_now = Signal()            # the request being taken belongs to a deleted SQ
        # Slots back in a CQ, a queue set up, room back downstream, a CQ no longer held:
        # every SQ is looked at again (``blocked`` cleared). One that came in the cycle
        # the SQ in SIZE was chosen is not in the credit SIZE weighs (read as it was
        # chosen): that SQ is then skipped but not blocked, or it would stay blocked
        # with the event that clears it gone by.
        holding = Signal()
        m.d.sync += holding.eq(self.hold.valid)
        rescan = Signal()
        m.d.comb += rescan.eq(self.unblock | self.setup.valid | self.admin_taken
                              | self.io_returned | (holding & ~self.hold.valid))
        rescanned = Signal()           # a rescan in the cycle the SQ in SIZE was chosen
        m.d.sync += rescanned.eq(rescan)
        # ... and in weighted round robin, if an SQ was blocked then, the choice was made
        # without it (it may be of a class that goes first): choose again. (Round robin
        # has no order between classes to keep.)
        had_blocked = Signal()

        with m.FSM(name="fetch"):
            with m.State("IDLE"):
                # (The payloads of the strobes to the queue state follow the state only,
                # not the handshakes that make them valid: the admin engine's and the
                # DMA port's paths then end at ``valid``.)
                m.d.comb += [picking.eq(1), qs.reserve.qid.eq(0), qs.reserve.n.eq(1)]
                with m.If(self.reserve):
                    with m.If(qs.cq0_credit != 0):
                        m.d.comb += [self.reserve_ack.eq(1), qs.reserve.valid.eq(1)]
                with m.Elif(can_issue & found):
                    m.d.comb += [base_rd.en.eq(1), arbiter.take.eq(1)]
                    m.d.sync += [sq.eq(pick), cancelled.eq(0), had_blocked.eq(blocked.any())]
                    m.next = "SIZE"
            with m.State("SIZE"):
                # The request is fixed here, and must not change while it waits. It is
                # latched whatever is decided below (it is offered only from ISSUE), so
                # that the decision does not lengthen the paths into it.
                m.d.sync += [
                    req.p.addr.eq(addr), req.p.length.eq(count << 6), req.p.tag.eq(0),
                    req_cqid.eq(qs.cqid), req_head.eq(head),
                    req_count.eq(count), req_size_m1.eq(size_m1),
                ]
                # No credit (or the work went away, or its CQ is held): skip it until slots
                # come back (whether or not fetching stopped meanwhile: the two decisions
                # are kept apart so that neither lengthens the other's paths).
                skip = Signal()
                m.d.comb += skip.eq(none | wait_batch
                                    | (self.hold.valid & (qs.cqid == self.hold.qid)))
                with m.If(available == 0):
                    # Nothing there (a doorbell that added nothing): its work bit goes.
                    m.d.comb += [qs.empty.valid.eq(1), qs.empty.qid.eq(sq)]
                with m.Elif(skip & ~rescanned):
                    m.d.sync += blocked.bit_select(sq, 1).eq(1)
                # Stopped, or the SQ deleted, while deciding: nothing to fetch.
                stale = self.wrr & rescanned & had_blocked
                with m.If(skip | stale | ~can_issue | deleting | (removed & (removed_qid == sq))):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += [
                    req.valid.eq(1), drop_now.eq(cancelled | deleting),
                    arbiter.fetched.n.eq(req_count),
                    qs.advance.qid.eq(sq), qs.advance.n.eq(req_count),
                    qs.reserve.qid.eq(req_cqid), qs.reserve.n.eq(req_count),
                ]
                with m.If(deleting):
                    m.d.sync += cancelled.eq(1)
                with m.If(req.ready & drop_now):
                    # Deleted while offered: the read goes out, its data is dropped.
                    m.d.comb += [
                        ctx.w_en.eq(1),
                        ctx.w_data.eq(Cat(sq, req_cqid, req_head, req_count, req_size_m1,
                                          Const(1, 1))),
                    ]
                    m.next = "IDLE"
                with m.Elif(req.ready):
                    m.d.comb += [
                        arbiter.fetched.valid.eq(1),
                        qs.advance.valid.eq(1),
                        qs.reserve.valid.eq(1),
                        ctx.w_en.eq(1),
                        ctx.w_data.eq(Cat(sq, req_cqid, req_head, req_count, req_size_m1,
                                          Const(0, 1))),
                    ]
                    m.next = "IDLE"
        with m.If(rescan):
            m.d.sync += blocked.eq(0)

        # -- Read data: assemble entries ------------------------------------------------------
        beat = self.dma.data
        cur = data.View(ctx_layout, ctx.r_data)
        sqe_buf = Signal(512)
        beat_in_sqe = Signal(max(1, (beats_per_sqe - 1).bit_length()))
        entry = Signal(16)             # entry index within the current read
        read_failed = Signal()         # an error beat so far in the current read

        # A failed read may flag only one of its beats (the last, say: DmaRead): its
        # entries are handed on only once the whole read is in, with its verdict. Entries
        # before a read's last beat wait in ``hold``; the last one goes straight to the
        # output when nothing waits (a read of one entry: no added cycle). A port that
        # flags every beat of a failed read (``error_on_every_beat``: the UltraScale+
        # read engine delivers a read once all its completions are in) needs no hold:
        # each entry is judged by its own beats.
        hold_room = Signal(init=1)
        hold_empty = Signal(init=1)
        if not self._error_on_every_beat:
            most = min(64, max(config.io_slots, self._admin_slots))  # entries in one read
            hold_bits = max(1, (most - 1).bit_length())
            m.submodules.hold = hold = memory.Memory(shape=FetchedCommand(config),
                                                     depth=1 << hold_bits, init=[])
            hold_wr = hold.write_port()
            hold_rd = hold.read_port(domain="comb")
            # Pointers with a wrap bit: written, released (its read's verdict good), read.
            hold_w = Signal(hold_bits + 1)
            hold_rel = Signal(hold_bits + 1)
            hold_r = Signal(hold_bits + 1)
            m.d.comb += [
                hold_room.eq((hold_w - hold_r)[:hold_bits + 1] != (1 << hold_bits)),
                hold_empty.eq(hold_w == hold_r),
                hold_wr.addr.eq(hold_w[:hold_bits]),
                hold_rd.addr.eq(hold_r[:hold_bits]),
            ]

            def drop_held():
                m.d.sync += hold_w.eq(hold_rel)
        else:
            def drop_held():
                pass

        # Data beats are taken when the command output has room (or is being dropped).
        out = self.cmd
        # (and only once the read's context is out of the FIFO, which takes a cycle or two
        # after the request: a fast host can answer sooner).
        out_free = ~out.valid | out.ready
        m.d.comb += beat.ready.eq((out_free & hold_room & ctx.r_rdy) | (discard != 0)
                                  | (dead & ctx.r_rdy))
        with m.If(out.valid & out.ready):
            m.d.sync += out.valid.eq(0)
        if not self._error_on_every_beat:
            # Released entries leave in order, one a cycle.
            with m.If(out_free & (hold_r != hold_rel)):
                m.d.sync += [out.p.eq(hold_rd.data), out.valid.eq(1), hold_r.eq(hold_r + 1)]

        with m.If(beat.valid & beat.ready):
            with m.If(discard != 0):
                with m.If(beat.p.last):
                    m.d.sync += discard.eq(discard - 1)
            with m.Else():
                full = beat_in_sqe == beats_per_sqe - 1
                if beats_per_sqe == 1:
                    word = beat.p.data[:512]
                else:
                    word = Cat(sqe_buf[width:], beat.p.data)
                    m.d.sync += sqe_buf.eq(word)
                if self._error_on_every_beat:
                    failed = beat.p.error
                else:
                    failed = read_failed | beat.p.error
                    m.d.sync += read_failed.eq(failed & ~beat.p.last)
                m.d.sync += beat_in_sqe.eq(Mux(full, 0, beat_in_sqe + 1))
                with m.If(full):
                    index = cur.first + entry
                    index_wrapped = Mux(index > cur.size_m1, index - cur.size_m1 - 1, index)
                    command = Signal(FetchedCommand(config))
                    m.d.comb += [
                        command.sqe.eq(word),
                        command.sqid.eq(cur.sqid),
                        command.cqid.eq(cur.cqid),
                        command.sqhd.eq(Mux(index_wrapped == cur.size_m1, 0,
                                            index_wrapped + 1)),
                    ]
                    m.d.sync += entry.eq(entry + 1)
                    keep = ~dead & ~cur.drop
                    last_word = beat.p.last if not self._error_on_every_beat else 1
                    with m.If(keep & failed):
                        # Fatal; what this read left waiting is dropped.
                        m.d.comb += self.fatal.eq(1)
                        m.d.sync += dead.eq(1)
                        drop_held()
                    with m.Elif(keep & last_word & hold_empty):
                        m.d.sync += [out.p.eq(command), out.valid.eq(1)]
                    if not self._error_on_every_beat:
                        with m.Elif(keep):
                            m.d.comb += [hold_wr.en.eq(1), hold_wr.data.eq(command)]
                            m.d.sync += hold_w.eq(hold_w + 1)
                            with m.If(beat.p.last):
                                m.d.sync += hold_rel.eq(hold_w + 1)
                with m.If(beat.p.last):
                    m.d.comb += ctx.r_en.eq(1)
                    m.d.sync += entry.eq(0)

        # -- Outstanding reads and the time-out ----------------------------------------------
        issued = req.valid & req.ready
        finished = beat.valid & beat.ready & beat.p.last & (discard == 0)
        m.d.sync += outstanding.eq(outstanding + issued - finished)
        timer = Signal(range(config.dma_read_timeout + 1))
        with m.If((outstanding == 0) | (beat.valid & beat.ready) | self.port_moved | dead):
            m.d.sync += timer.eq(0)
        with m.Elif(timer == config.dma_read_timeout):
            m.d.comb += self.fatal.eq(1)
            m.d.sync += dead.eq(1)
            drop_held()
        with m.Else():
            m.d.sync += timer.eq(timer + 1)

        m.d.comb += self.idle.eq(((outstanding == 0) | dead) & ~out.valid & hold_empty)

        fetched = req.valid & req.ready & ~drop_now
        delivered = out.valid & out.ready
        to_admin = out.p.sqid == 0
        m.d.sync += [
            admin_pending.eq(admin_pending + Mux(fetched & (sq == 0), req_count, 0)
                             - (delivered & to_admin)),
            admin_held.eq(admin_held + (delivered & to_admin) - self.admin_taken),
            io_pending.eq(io_pending + Mux(fetched & (sq != 0), req_count, 0)
                          - (delivered & ~to_admin)),
            io_held.eq(io_held + (delivered & ~to_admin) - self.io_returned),
        ]

        with m.If(self.clear):
            # Reads still out after a fatal error are abandoned; their data is dropped,
            # and so are the admin commands still queued (the router drops them too).
            m.d.sync += [
                io_pending.eq(0), admin_pending.eq(0), admin_held.eq(0),
                discard.eq(discard + outstanding - finished),
                outstanding.eq(0), dead.eq(0), entry.eq(0), beat_in_sqe.eq(0),
                read_failed.eq(0), out.valid.eq(0), blocked.eq(0),
            ]
            if not self._error_on_every_beat:
                m.d.sync += [hold_w.eq(0), hold_rel.eq(0), hold_r.eq(0)]
        return m
