"""UltraScale+ read engine: the core's DMA reads as memory read TLPs, their completions
back in request order.

A :class:`DmaReadRequest` from the core becomes one memory read TLP on ``tlp`` (the RQ
formatter builds the beats); the adapter never splits [DESIGN.md §2]. A request that is
not DWORD-aligned, not a whole number of DWORDs, empty, longer than max read request size
[PCIe 4.0 §2.2.7] or crossing a 4 KiB boundary [PCIe 4.0 §2.2.7] is not sent; it still
returns its beats, all with ``error``.

Per request, in issue order, a table entry indexed by the PCIe tag holds what delivery
needs (core tag, beats, issue time) and where its data goes (first ring row, length).
Tags are handed out round-robin, modulo 32 or, with extended tags [PCIe 4.0 §7.5.3.4],
modulo ``tags_max``; data leaves in request order, so the outstanding tags always form one
window ``[oldest, next)`` and the table is a FIFO over it. A request that is not sent takes
a tag slot too (never used on the link), so that order is kept in one place.

Before a read is sent it reserves, until its data has been delivered:

- completion headers: the read completion boundary (RCB) blocks it spans, since a
  completer may split it at every RCB [PCIe 4.0 §2.3.1.1], at most ``cpl_headers``. The
  RCB is 64 B, or 128 B while ``rcb_128`` is set (the IP's ``cfg_rcb_status``: Link
  Control's RCB bit, which configuration software sets to the root port's RCB [PCIe 4.0
  §7.5.3.7]): then a read needs half the headers, and twice the bytes may be in flight;
- ring space: its beats in a ring of ``cpl_bytes``, beat-aligned, so that delivery reads
  whole beats. The ring is one memory per DWORD lane, so the parser
  (:class:`~.usp_rc.UspRcParser`) can write a completion at any DWORD offset in one cycle.

A request is complete when its last completion (``request_done``) has been written — the
hard IP's own completion time-out arrives that way too, as an error completion (error code
1001) that ends the request — or, as a backstop, when it is the oldest and more than
``completion_timeout`` cycles have passed since it was sent (only the oldest needs a
timer: delivery is in issue order; the time is kept modulo 2^(bits of the time-out + 1),
so a request kept from being the oldest by backpressure for longer than that may time out
late, never early). Then its beats go out, one a cycle, with ``error`` if any completion
failed or it timed out.

Tags belong to the hard IP until it says so [PG213 "Tag Management for Non-Posted
Transactions"]: a request given up by the backstop keeps its tag *awaiting* until a
completion ending it (its last one, an error, the IP's time-out) comes in; such
completions are taken and their data dropped, and round robin waits at an awaiting tag
rather than re-issue it. The IP ends every read by itself unless the host disabled the
completion time-out (Device Control 2); then a lost completion keeps its tag until reset.

Extended tags or the RCB changing while reads are outstanding: new reads wait until all
have been delivered, then tags restart at 0 under the new limit and headers are counted
at the new RCB (a read sent under a 128 B RCB may not be answered at 64 B boundaries).
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..bus import DmaReadBeat
from ..layouts import DmaReadRequest
from .usp_layouts import USP_WIDTHS, Axis, RqRead
from .usp_rc import UspRcParser

__all__ = ["UspReadEngine"]

RCB = 64                    # read completion boundary of a root complex [PCIe 4.0 §2.3.1.1]
RCB_128 = 128               # the other RCB, where Link Control's RCB bit says so
MAX_READ = 4096             # largest read request size [PCIe 4.0 §7.5.3.4]


class UspReadEngine(wiring.Component):
    def __init__(self, width, completion_timeout, *, tags_max=256, cpl_headers=128,
                 cpl_bytes=32768):
        if width not in USP_WIDTHS:
            raise ValueError(f"width must be one of {USP_WIDTHS}")
        if tags_max not in (8, 16, 32, 64, 128, 256):
            raise ValueError("tags_max must be a power of two from 8 to 256")
        beat_bytes = width // 8
        if cpl_bytes < MAX_READ or cpl_bytes & (cpl_bytes - 1):
            raise ValueError("cpl_bytes must be a power of two of at least 4096")
        if cpl_headers < MAX_READ // RCB + 1:
            raise ValueError(f"cpl_headers must be at least {MAX_READ // RCB + 1}")
        if completion_timeout < 1:
            raise ValueError("completion_timeout must be at least 1 cycle")
        self._width = width
        self._timeout = completion_timeout
        self._tags_max = tags_max
        self._cpl_headers = cpl_headers
        self._ring_rows = cpl_bytes // beat_bytes
        super().__init__({
            "req":  In(stream.Signature(DmaReadRequest)),
            "tlp":  Out(stream.Signature(RqRead)),
            "rc":   In(Axis("rc", width)),
            "data": Out(stream.Signature(DmaReadBeat(width))),
            "ext_tag_enable":        In(1),
            "max_read_request_size": In(3),
            "rcb_128":    In(1),            # the root port's RCB is 128 B (cfg_rcb_status)
            "idle":       Out(1),
            "unexpected": Out(1),
            "err_cor":    Out(1),           # for cfg_err_cor_in / cfg_err_uncor_in
            "err_uncor":  Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        width, tags_max, ring_rows = self._width, self._tags_max, self._ring_rows
        lanes = width // 32
        beat_log = exact_log2(width // 8)
        row_bits = exact_log2(ring_rows)
        beat_bits = ((8191 >> beat_log) + 1).bit_length()   # beats of any 13-bit length
        time_bits = self._timeout.bit_length() + 1

        # -- Tag window and reservations --------------------------------------------------
        ext = Signal()                          # extended tags in force for the window
        rcb128 = Signal()                       # the 128 B RCB in force for the window
        mask = Signal(8)                        # tag modulus − 1
        m.d.comb += mask.eq(Mux(ext, tags_max - 1, min(32, tags_max) - 1))
        next_tag = Signal(8)                    # tag of the next request
        deliver = Signal(8)                     # tag of the request being delivered
        deliver1 = Signal(8, init=1)            # (deliver + 1) & mask, kept alongside
        oldest = Signal(8)                      # oldest tag not yet released
        count = Signal(9)                       # requests in [oldest, next)
        todo = Signal(9)                        # requests in [deliver, next)
        # free ring rows and completion headers (kept as what is free, not what is used: a
        # comparison, no addition, before the issue decision)
        rows_free = Signal(row_bits + 1, init=ring_rows)
        hdrs_free = Signal(range(self._cpl_headers + 1), init=self._cpl_headers)
        wr_row = Signal(row_bits)               # ring allocation pointer
        rd_row = Signal(row_bits)               # ring delivery pointer
        done = Signal(tags_max)                 # request complete (data in, failed or timed out)
        failed = Signal(tags_max)
        now = Signal(time_bits)
        m.d.sync += now.eq(now + 1)

        req_entry = data.StructLayout({
            "core_tag": 8, "last_beat": beat_bits, "bad": 1, "hdrs": 7, "issued": time_bits})
        rc_entry = data.StructLayout({"row": row_bits, "dwords": 11})
        m.submodules.req_table = req_table = memory.Memory(
            shape=req_entry, depth=tags_max, init=[])
        m.submodules.rc_table = rc_table = memory.Memory(
            shape=rc_entry, depth=tags_max, init=[])
        req_wr, rc_wr = req_table.write_port(), rc_table.write_port()
        cur_rd = req_table.read_port(domain="comb")

        # -- Request checks, registered ---------------------------------------------------
        r_valid = Signal()
        r = Signal(data.StructLayout({
            "addr": 64, "dwords": 11, "core_tag": 8, "bad": 1, "beats": beat_bits,
            "last_beat": beat_bits, "hdrs": 7, "hdrs64": 7, "hdrs128": 7}))
        p = self.req.payload
        mrrs = Mux(self.max_read_request_size > 5, 5, self.max_read_request_size)
        bad = ((p.addr[:2] != 0) | (p.length[:2] != 0) | (p.length == 0) |
               (p.length > (Const(128, 13) << mrrs)) |              # [PCIe 4.0 §7.5.3.4]
               (p.addr[:12] + p.length > 4096))                     # [PCIe 4.0 §2.2.7]
        issue = Signal()
        restart = Signal()
        # headers at each RCB; r.hdrs is the one in force (a register: no select before
        # the room comparison), chosen again when a restart changes the RCB
        hdrs64 = (p.addr[:6] + p.length + RCB - 1) >> 6
        hdrs128 = (p.addr[:7] + p.length + RCB_128 - 1) >> 7
        rcb_next = Mux(restart, self.rcb_128, rcb128)
        with m.If(restart):
            m.d.sync += r.hdrs.eq(Mux(self.rcb_128, r.hdrs128, r.hdrs64))
        m.d.comb += self.req.ready.eq(~r_valid | issue)
        with m.If(self.req.ready):
            m.d.sync += r_valid.eq(self.req.valid)
            m.d.sync += [
                r.addr.eq(p.addr), r.dwords.eq(p.length[2:]), r.core_tag.eq(p.tag),
                r.bad.eq(bad),
                r.beats.eq(Mux(p.length == 0, 1, (p.length + (1 << beat_log) - 1) >> beat_log)),
                # beats - 1, kept for delivery (an equality, no subtraction, finds its end)
                r.last_beat.eq(Mux(p.length == 0, 0, (p.length - 1) >> beat_log)),
                r.hdrs64.eq(hdrs64), r.hdrs128.eq(hdrs128),
                r.hdrs.eq(Mux(rcb_next, hdrs128, hdrs64)),
            ]

        # -- Issue ------------------------------------------------------------------------
        # A tag is the hard IP's until its verdict: a request the engine's own timer gave up
        # keeps its tag out of use until the IP ends it [PG213 "Tag Management for
        # Non-Posted Transactions": with client tags the IP still tracks every read].
        awaiting = Signal(tags_max)             # own time-out, the IP's verdict not yet in
        # awaiting[next_tag], from a register (LUT depth: a 256-way select off the issue
        # path): computed a cycle ahead for each tag next_tag can become (the same, the
        # next, or 0 when the tag limit changes), with the updates awaiting takes then.
        held_same, held_next, held_zero = Signal(), Signal(), Signal()
        issue_q, restart_q = Signal(), Signal()     # what next_tag did at the last edge
        next_held = Mux(restart_q, held_zero, Mux(issue_q, held_next, held_same))
        next_tag1 = Signal(8, init=1)           # (next_tag + 1) & mask, kept alongside
        slot_ok = ((count <= mask) & (ext == self.ext_tag_enable) & (rcb128 == self.rcb_128)
                   & ~next_held)
        room_ok = (r.beats <= rows_free) & (r.hdrs <= hdrs_free)
        offered = Signal()                      # tlp.valid held until taken (stream rules)
        m.d.comb += [
            self.tlp.valid.eq(r_valid & ~r.bad & ((slot_ok & room_ok) | offered)),
            self.tlp.payload.addr.eq(r.addr),
            self.tlp.payload.dwords.eq(r.dwords),
            self.tlp.payload.tag.eq(next_tag),
            issue.eq((self.tlp.valid & self.tlp.ready) | (r_valid & r.bad & slot_ok)),
        ]
        m.d.sync += offered.eq(self.tlp.valid & ~self.tlp.ready)
        m.d.comb += [
            req_wr.en.eq(issue), req_wr.addr.eq(next_tag),
            req_wr.data.core_tag.eq(r.core_tag), req_wr.data.last_beat.eq(r.last_beat),
            req_wr.data.bad.eq(r.bad), req_wr.data.hdrs.eq(r.hdrs), req_wr.data.issued.eq(now),
            rc_wr.en.eq(issue), rc_wr.addr.eq(next_tag),
            rc_wr.data.row.eq(wr_row), rc_wr.data.dwords.eq(r.dwords),
        ]
        take_room = issue & ~r.bad
        with m.If(issue):
            m.d.sync += [next_tag.eq(next_tag1), next_tag1.eq((next_tag1 + 1) & mask)]
            with m.If(~r.bad):
                m.d.sync += wr_row.eq(wr_row + r.beats)
        m.d.comb += restart.eq((count == 0) & ~offered &
                               ((ext != self.ext_tag_enable) | (rcb128 != self.rcb_128)))
        with m.If(restart):
            m.d.sync += [ext.eq(self.ext_tag_enable), rcb128.eq(self.rcb_128),
                         next_tag.eq(0), next_tag1.eq(1),
                         deliver.eq(0), deliver1.eq(1), oldest.eq(0)]

        # -- Reorder ring: one memory per DWORD lane ---------------------------------------
        timeout_q = Signal()                    # the backstop gave up a request
        m.submodules.parser = parser = UspRcParser(width, ring_rows)
        wiring.connect(m, wiring.flipped(self.rc), parser.rc)
        m.d.comb += [
            self.unexpected.eq(parser.unexpected),
            self.err_cor.eq(parser.err_cor),
            # a completion time-out is uncorrectable [PCIe 4.0 §6.2.3.2.4.4], also when the
            # backstop finds it
            self.err_uncor.eq(parser.err_uncor | timeout_q),
        ]
        advance = Signal()                      # the output register takes a new beat
        ring_data = []
        for b in range(lanes):
            bank = memory.Memory(shape=32, depth=ring_rows, init=[])
            m.submodules[f"ring{b}"] = bank
            wr, rd = bank.write_port(), bank.read_port()
            port = parser.write[b]
            m.d.comb += [wr.en.eq(port.en), wr.addr.eq(port.row), wr.data.eq(port.data),
                         rd.en.eq(advance), rd.addr.eq(rd_row)]
            ring_data.append(rd.data)

        # The parser's questions, one per TLP that may start in a beat: a tag is outstanding
        # while in the window [oldest, next) and not complete, or awaiting. ``live`` keeps
        # that per tag (set when the tag is issued, cleared when its request completes,
        # except by the backstop, which makes it awaiting): one 256-way select per question.
        live = Signal(tags_max)
        for look in parser.lookup:
            rc_rd = rc_table.read_port(domain="comb")
            held = awaiting.bit_select(look.tag, 1)
            m.d.comb += [
                look.live.eq(live.bit_select(look.tag, 1)),
                look.discard.eq(held),
                rc_rd.addr.eq(look.tag), look.row.eq(rc_rd.data.row),
                look.dwords.eq(rc_rd.data.dwords),
            ]

        # -- Delivery of the oldest request ------------------------------------------------
        cur = cur_rd.data
        m.d.comb += cur_rd.addr.eq(deliver)
        # done[deliver] and failed[deliver] from registers (LUT depth: 256-way selects off
        # the delivery path), computed a cycle ahead for deliver and the tag after it.
        moved_on = Signal()                     # deliver moved to deliver1 at the last edge
        done_cur, done_nxt, failed_cur, failed_nxt = Signal(), Signal(), Signal(), Signal()
        cur_done = Mux(moved_on, done_nxt, done_cur)
        cur_failed = Mux(moved_on, failed_nxt, failed_cur)
        complete = (todo != 0) & cur_done
        # The backstop's decision is a register: the request being delivered ran out of
        # time a cycle ago (and is still that request, still not done).
        timeout = Signal()
        expired, expired_tag = Signal(), Signal(8)
        m.d.sync += [
            timeout_q.eq(timeout),
            # (not again in the cycle after it fired: its tag is marked done a cycle late)
            expired.eq((todo != 0) & ((now - cur.issued)[:time_bits] > self._timeout) &
                       ~timeout),
            expired_tag.eq(deliver),
        ]
        m.d.comb += timeout.eq(expired & (expired_tag == deliver) & (todo != 0) & ~cur_done)
        beat = Signal(beat_bits)
        last = beat == cur.last_beat
        out_tag, out_last, out_error = Signal(8), Signal(), Signal()
        out_rows, out_hdrs = Signal(beat_bits), Signal(7)   # released with the last beat
        m.d.comb += [
            advance.eq(~self.data.valid | self.data.ready),
            self.data.payload.data.eq(Cat(ring_data)),
            self.data.payload.tag.eq(out_tag),
            self.data.payload.last.eq(out_last),
            self.data.payload.error.eq(out_error),
        ]
        pushed_last = Signal()
        with m.If(advance):
            m.d.sync += self.data.valid.eq(complete)
            with m.If(complete):
                m.d.sync += [
                    out_tag.eq(cur.core_tag), out_last.eq(last),
                    out_error.eq(Mux(beat == 0, cur_failed, out_error)),
                ]
                with m.If(~cur.bad):
                    m.d.sync += rd_row.eq(rd_row + 1)
                with m.If(last):
                    m.d.comb += pushed_last.eq(1)
                    m.d.sync += [
                        beat.eq(0), deliver.eq(deliver1), deliver1.eq((deliver1 + 1) & mask),
                        out_rows.eq(Mux(cur.bad, 0, cur.last_beat + 1)),
                        out_hdrs.eq(Mux(cur.bad, 0, cur.hdrs)),
                    ]
                with m.Else():
                    m.d.sync += beat.eq(beat + 1)
        release = self.data.valid & self.data.ready & out_last
        with m.If(release):
            m.d.sync += oldest.eq((oldest + 1) & mask)

        m.d.sync += [
            count.eq(count + issue - release),
            todo.eq(todo + issue - pushed_last),
            rows_free.eq(rows_free - Mux(take_room, r.beats, 0) + Mux(release, out_rows, 0)),
            hdrs_free.eq(hdrs_free - Mux(take_room, r.hdrs, 0) + Mux(release, out_hdrs, 0)),
        ]

        # -- Per-tag state: cleared when a tag is issued, set by the parser and by time-outs --
        def onehot(en, tag):
            sig = Signal(tags_max)
            m.d.comb += sig.eq(en << tag)
            return sig

        # A request not sent and a backstop time-out mark their tag a cycle later, from a
        # register (LUT depth: the per-tag decode is off the issue and delivery paths).
        event = parser.event
        # An issued tag is marked (live, not done, not failed) a cycle later too; a
        # completion for it cannot be looked up that soon (its TLP has yet to pass the
        # requester's and the hard IP's registers), and delivery reads done and failed
        # through after(), which counts the issue at once.
        bad_q, issued_tag, to_q, to_tag = Signal(), Signal(8), Signal(), Signal(8)
        m.d.sync += [issue_q.eq(issue), bad_q.eq(issue & r.bad), issued_tag.eq(next_tag),
                     to_q.eq(timeout), to_tag.eq(deliver)]
        issued = onehot(issue_q, issued_tag)
        bad_issued = onehot(bad_q, issued_tag)
        timed_out = onehot(to_q, to_tag)
        ev = onehot(event.valid, event.tag)
        m.d.sync += [
            awaiting.eq((awaiting | timed_out) & ~Mux(event.done, ev, 0)),
            done.eq((done & ~issued) | bad_issued | timed_out | Mux(event.done, ev, 0)),
            failed.eq((failed & ~issued) | bad_issued | timed_out |
                      Mux(event.failed, ev, 0)),
            live.eq((live | issued) & ~bad_issued & ~Mux(event.done, ev, 0)),
        ]

        def held_after(tag):
            """awaiting[tag] as it will be next cycle."""
            return ((awaiting.bit_select(tag, 1) | (to_q & (to_tag == tag))) &
                    ~(event.valid & event.done & (event.tag == tag)))

        def after(state, tag, field):
            """``state[tag]`` (done or failed) as it will be next cycle, with the events the
            parser reports as it writes a completion's last piece (``field``: the event bit
            that sets it): the delivery decision sees a request complete the cycle after
            its data went into the ring, a cycle before ``state`` does."""
            early = Cat(e.valid & e[field] & (e.tag == tag) for e in parser.early).any()
            return ((state.bit_select(tag, 1) & ~(issue & (next_tag == tag)) &
                     ~(issue_q & (issued_tag == tag))) |
                    (bad_q & (issued_tag == tag)) | (to_q & (to_tag == tag)) |
                    (event.valid & event[field] & (event.tag == tag)) | early)

        m.d.sync += [
            moved_on.eq(pushed_last),
            done_cur.eq(after(done, deliver, "done")),
            done_nxt.eq(after(done, deliver1, "done")),
            failed_cur.eq(after(failed, deliver, "failed")),
            failed_nxt.eq(after(failed, deliver1, "failed")),
        ]
        m.d.sync += [held_zero.eq(held_after(0)), held_next.eq(held_after(next_tag1)),
                     held_same.eq(held_after(next_tag)), restart_q.eq(restart)]
        m.d.comb += self.idle.eq((count == 0) & ~r_valid)
        return m
