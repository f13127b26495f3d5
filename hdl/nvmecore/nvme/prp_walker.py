"""PRP walker: a command's PRP1 / PRP2 and PRP lists, turned into host memory pieces
[NVMe 1.4 §4.3; docs/io-commands.md "PRPs"].

For each :class:`PrpJob` (in order) it produces the command's pieces (:class:`Segment`:
a DWORD-aligned host address and a DWORD count, never crossing a 4 KiB page) on the
segment stream of the job's direction, then a :class:`PrpToken` that says how many pieces
belong to the command and whether its PRPs were good. A mover starts a command's data only
once it holds the token, so every PRP of a command is read and checked before any of its
data moves, as QEMU's ``nvme_map_prp`` does.

- PRP1 may start at any DWORD in its page (bits 1:0 set: Invalid PRP Offset).
- Nothing after PRP1's page: PRP2 is not looked at. One page more: PRP2 is that page and
  must be page aligned. More: PRP2 points at a PRP list (a QWORD-aligned offset is
  allowed); when a list page cannot hold every entry still needed, its last entry points
  at the next list page (page aligned). Every data entry must be page aligned.
- List entries are read ahead in bursts (up to max read request size, never past the list
  page, within the room of the walker's own entry buffer), so list data never waits on
  the shared read port; a read that fails gives a Data Transfer Error.

Each direction's segment FIFO holds ``SEGMENT_DEPTH`` pieces, more than the largest
command needs (MDTS / 4 KiB + 1), so a command never waits for its own pieces to drain.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..backend.interface import TAG_WIDTH
from ..bus import DmaRead
from ..nvm_layouts import PAGE_BYTES
from .dword_pack import MAX_DWORDS

__all__ = ["PrpWalker", "PrpJob", "PrpToken", "PrpStatus", "Segment", "IoOp",
           "SEGMENT_DEPTH", "MAX_TRANSFER_BYTES"]

#: MDTS 7 with 4 KiB pages [docs/io-commands.md]: the most bytes one command moves.
MAX_TRANSFER_BYTES = PAGE_BYTES << 7
#: Pieces each direction's segment FIFO holds.
SEGMENT_DEPTH = 256
#: Beats of list entries the walker may have asked for and not yet used.
LIST_BUFFER_BEATS = 32
#: PRP tokens waiting per direction.
TOKEN_DEPTH = 16

ENTRY_BYTES = 8


class IoOp(enum.Enum, shape=2):
    """What the I/O engine does with a command's data."""
    READ    = 0     # namespace → host
    WRITE   = 1     # host → namespace
    COMPARE = 2     # host data compared with the namespace
    DSM     = 3     # host data is a Dataset Management range list


class PrpStatus(enum.Enum, shape=2):
    OK                 = 0
    INVALID_PRP_OFFSET = 1
    TRANSFER_ERROR     = 2


class Segment(data.Struct):
    addr:   64                          # host byte address, DWORD aligned
    dwords: range(MAX_DWORDS + 1)       # 1 .. 1024, never crossing a 4 KiB page


def _job_fields(addr_width):
    return {
        "tag":     TAG_WIDTH,
        "op":      IoOp,
        "prp1":    64,
        "prp2":    64,
        "length":  range(MAX_TRANSFER_BYTES + 1),     # bytes, DWORD multiple, ≥ 4
        "ns_addr": addr_width,                        # where in the namespace
    }


class PrpJob(data.StructLayout):
    def __init__(self, addr_width):
        super().__init__(_job_fields(addr_width))


class PrpToken(data.StructLayout):
    def __init__(self, addr_width):
        super().__init__({
            **_job_fields(addr_width),
            "status": PrpStatus,
            "pieces": range(SEGMENT_DEPTH + 1),
        })


def to_host(op):
    """The direction of an :class:`IoOp`: 0 = to the host (segment stream ``seg0``)."""
    return op == IoOp.READ


class PrpWalker(wiring.Component):
    def __init__(self, data_width, addr_width):
        self._width = data_width
        self._addr_width = addr_width
        super().__init__({
            "job":   In(stream.Signature(PrpJob(addr_width))),
            "dma":   Out(DmaRead(data_width)),
            "max_read_request_size": In(3),
            # direction 0: to the host (Read); 1: from the host (Write, Compare, DSM)
            "seg0":  Out(stream.Signature(Segment)),
            "tok0":  Out(stream.Signature(PrpToken(addr_width))),
            "seg1":  Out(stream.Signature(Segment)),
            "tok1":  Out(stream.Signature(PrpToken(addr_width))),
            "idle":  Out(1),
        })

    def elaborate(self, platform):  # noqa: C901 (one walker, read top to bottom)
        m = Module()
        width = self._width
        per_beat = width // 64                      # list entries per beat
        lane_bits = max(1, (per_beat - 1).bit_length())

        segs = [fifo.SyncFIFOBuffered(width=data.Layout.cast(Segment).size,
                                      depth=SEGMENT_DEPTH) for _ in range(2)]
        toks = [fifo.SyncFIFOBuffered(width=data.Layout.cast(PrpToken(self._addr_width)).size,
                                      depth=TOKEN_DEPTH) for _ in range(2)]
        for d in range(2):
            m.submodules[f"seg{d}"] = segs[d]
            m.submodules[f"tok{d}"] = toks[d]
            seg_out, tok_out = getattr(self, f"seg{d}"), getattr(self, f"tok{d}")
            m.d.comb += [
                seg_out.p.eq(segs[d].r_data), seg_out.valid.eq(segs[d].r_rdy),
                segs[d].r_en.eq(seg_out.ready),
                tok_out.p.eq(toks[d].r_data), tok_out.valid.eq(toks[d].r_rdy),
                toks[d].r_en.eq(tok_out.ready),
            ]

        job = Signal(PrpJob(self._addr_width))
        direction = Signal()                        # 0: to host
        status = Signal(PrpStatus)
        pieces = Signal(range(SEGMENT_DEPTH + 1))
        rem = Signal(range(MAX_TRANSFER_BYTES + 1))  # bytes not yet in a piece

        # -- Pushing a piece into the job's direction ----------------------------------------
        push = Signal()
        push_addr = Signal(64)
        push_bytes = Signal(range(PAGE_BYTES + 1))
        seg_room = Mux(direction, segs[1].w_rdy, segs[0].w_rdy)
        seg_in = Signal(Segment)
        m.d.comb += [seg_in.addr.eq(push_addr), seg_in.dwords.eq(push_bytes >> 2)]
        for d in range(2):
            m.d.comb += [segs[d].w_data.eq(seg_in), segs[d].w_en.eq(push & (direction == d))]

        # -- List entries: reads issued ahead, entries used one per cycle ----------------------
        m.submodules.lists = lists = fifo.SyncFIFOBuffered(width=width,
                                                           depth=LIST_BUFFER_BEATS)
        m.submodules.counts = counts = fifo.SyncFIFO(width=10, depth=LIST_BUFFER_BEATS)
        issue_addr = Signal(64)
        issue_left = Signal(range(PAGE_BYTES // ENTRY_BYTES + 1))   # entries still to ask for
        requested = Signal(range(PAGE_BYTES // ENTRY_BYTES + 1))    # asked for, this page
        used = Signal(range(PAGE_BYTES // ENTRY_BYTES + 1))         # taken, this page
        reserved = Signal(range(LIST_BUFFER_BEATS + 1))             # beats asked, not taken
        req = self.dma.req
        mrrs_entries = Signal(range(4096 // ENTRY_BYTES + 1))
        m.d.comb += mrrs_entries.eq(Const(128 // ENTRY_BYTES, 10) << self.max_read_request_size)
        room_entries = Signal(range(LIST_BUFFER_BEATS * per_beat + 1))
        m.d.comb += room_entries.eq((LIST_BUFFER_BEATS - reserved) * per_beat)
        capped = Signal(range(PAGE_BYTES // ENTRY_BYTES + 1))
        m.d.comb += capped.eq(Mux(mrrs_entries < issue_left, mrrs_entries, issue_left))
        burst = Signal(range(PAGE_BYTES // ENTRY_BYTES + 1))
        m.d.comb += burst.eq(Mux(room_entries < capped, room_entries, capped))
        burst_beats = (burst + per_beat - 1) >> lane_bits if per_beat > 1 else burst
        requesting = Signal()                       # `req` holds a request
        req_beats = Signal(range(LIST_BUFFER_BEATS + 1))
        stop_issue = Signal()
        m.d.comb += [req.valid.eq(requesting), req.p.tag.eq(0)]
        with m.If(requesting):
            with m.If(req.ready):
                m.d.sync += requesting.eq(0)
        with m.Elif((issue_left != 0) & (burst != 0) & counts.w_rdy & ~stop_issue):
            m.d.sync += [
                requesting.eq(1),
                req.p.addr.eq(issue_addr),
                req.p.length.eq(burst << 3),
                req_beats.eq(burst_beats),
                issue_addr.eq(issue_addr + (burst << 3)),
                issue_left.eq(issue_left - burst),
                requested.eq(requested + burst),
            ]
            m.d.comb += [counts.w_en.eq(1), counts.w_data.eq(burst)]
        popped = lists.r_en & lists.r_rdy
        m.d.sync += reserved.eq(reserved + Mux(req.valid & req.ready, req_beats, 0) - popped)

        beat = self.dma.data
        m.d.comb += [
            lists.w_data.eq(beat.p.data),
            lists.w_en.eq(beat.valid),
            beat.ready.eq(1),                       # room was reserved
        ]
        # A failed read may flag only one of its beats (the last, say): its entries are
        # used only once the whole read is in, with its verdict.
        m.submodules.verdicts = verdicts = fifo.SyncFIFO(width=1, depth=LIST_BUFFER_BEATS)
        failed = Signal()
        with m.If(beat.valid):
            m.d.sync += failed.eq(Mux(beat.p.last, 0, failed | beat.p.error))
        m.d.comb += [verdicts.w_data.eq(failed | beat.p.error),
                     verdicts.w_en.eq(beat.valid & beat.p.last)]
        lane = Signal(lane_bits)
        read_left = Signal(10)                      # entries left in the current read
        read_started = Signal()
        entry = Signal(64)
        entry_error = Signal()
        m.d.comb += [
            entry.eq(lists.r_data.word_select(lane, 64) if per_beat > 1
                     else lists.r_data[:64]),
            entry_error.eq(verdicts.r_data),
        ]
        entry_ok = lists.r_rdy & (read_started | counts.r_rdy) & verdicts.r_rdy
        take_entry = Signal()                       # the process side uses `entry` now
        cur_read = Mux(read_started, read_left, counts.r_data)
        with m.If(take_entry):
            last_in_read = cur_read == 1
            m.d.sync += [read_left.eq(cur_read - 1), read_started.eq(~last_in_read),
                         used.eq(used + 1)]
            m.d.comb += [counts.r_en.eq(last_in_read), verdicts.r_en.eq(last_in_read)]
            with m.If(last_in_read | (lane == per_beat - 1)):
                m.d.comb += lists.r_en.eq(1)
                m.d.sync += lane.eq(0)
            with m.Else():
                m.d.sync += lane.eq(lane + 1)

        # -- The job --------------------------------------------------------------------------
        page_entries = Signal(range(PAGE_BYTES // ENTRY_BYTES + 1))  # entries used, this page
        chained = Signal()                          # this page's last entry is a chain
        need = Signal(range(MAX_TRANSFER_BYTES // PAGE_BYTES + 2))   # data entries to go
        index = Signal(range(PAGE_BYTES // ENTRY_BYTES + 1))         # entry on this page
        list_addr = Signal(64)
        next_list = Signal(64)

        to_page_end = Signal(range(PAGE_BYTES + 1))
        m.d.comb += to_page_end.eq(PAGE_BYTES - job.prp1[:12])
        first_bytes = Signal(range(PAGE_BYTES + 1))
        m.d.comb += first_bytes.eq(Mux(job.length < to_page_end, job.length, to_page_end))
        piece = Signal(range(PAGE_BYTES + 1))       # bytes of the next data entry
        m.d.comb += piece.eq(Mux(rem < PAGE_BYTES, rem, PAGE_BYTES))
        token = Signal(PrpToken(self._addr_width))
        m.d.comb += [token.eq(Cat(job, status, pieces))]
        tok_room = Mux(direction, toks[1].w_rdy, toks[0].w_rdy)

        with m.FSM(name="prp"):
            with m.State("IDLE"):
                m.d.comb += [self.idle.eq(~requesting & ~lists.r_rdy), self.job.ready.eq(1)]
                with m.If(self.job.valid):
                    m.d.sync += [
                        job.eq(self.job.p), direction.eq(~to_host(self.job.p.op)),
                        status.eq(PrpStatus.OK), pieces.eq(0),
                    ]
                    m.next = "FIRST"
            with m.State("FIRST"):
                with m.If(job.prp1[:2] != 0):
                    m.d.sync += status.eq(PrpStatus.INVALID_PRP_OFFSET)
                    m.next = "TOKEN"
                with m.Elif(seg_room):
                    m.d.comb += [push.eq(1), push_addr.eq(job.prp1), push_bytes.eq(first_bytes)]
                    m.d.sync += [pieces.eq(1), rem.eq(job.length - first_bytes)]
                    m.next = "SECOND"
            with m.State("SECOND"):
                with m.If(rem == 0):
                    m.next = "TOKEN"
                with m.Elif(rem <= PAGE_BYTES):
                    with m.If(job.prp2[:12] != 0):
                        m.d.sync += status.eq(PrpStatus.INVALID_PRP_OFFSET)
                        m.next = "TOKEN"
                    with m.Elif(seg_room):
                        m.d.comb += [push.eq(1), push_addr.eq(job.prp2), push_bytes.eq(rem)]
                        m.d.sync += [pieces.eq(pieces + 1), rem.eq(0)]
                        m.next = "TOKEN"
                with m.Elif(job.prp2[:3] != 0):
                    m.d.sync += status.eq(PrpStatus.INVALID_PRP_OFFSET)
                    m.next = "TOKEN"
                with m.Else():
                    m.d.sync += [
                        next_list.eq(job.prp2),
                        need.eq((rem + PAGE_BYTES - 1) >> 12),
                    ]
                    m.next = "PAGE"
            with m.State("PAGE"):
                # A new list page: how many entries it has for us, and ask for them.
                in_page = (PAGE_BYTES - next_list[:12]) >> 3
                is_chained = need > in_page
                entries = Mux(is_chained, in_page, need)
                m.d.sync += [
                    list_addr.eq(next_list), chained.eq(is_chained),
                    page_entries.eq(entries), index.eq(0),
                    issue_addr.eq(next_list), issue_left.eq(entries),
                    requested.eq(0), used.eq(0),
                ]
                m.next = "ENTRIES"
            with m.State("ENTRIES"):
                with m.If(index == page_entries):
                    with m.If(chained):
                        m.next = "PAGE"
                    with m.Else():
                        m.next = "TOKEN"
                with m.Elif(entry_ok):
                    is_chain = chained & (index == page_entries - 1)
                    with m.If(entry_error):
                        m.d.comb += take_entry.eq(1)
                        m.d.sync += status.eq(PrpStatus.TRANSFER_ERROR)
                        m.next = "DRAIN"
                    with m.Elif(entry[:12] != 0):
                        m.d.comb += take_entry.eq(1)
                        m.d.sync += status.eq(PrpStatus.INVALID_PRP_OFFSET)
                        m.next = "DRAIN"
                    with m.Elif(is_chain):
                        m.d.comb += take_entry.eq(1)
                        m.d.sync += [next_list.eq(entry), index.eq(index + 1)]
                    with m.Elif(seg_room):
                        m.d.comb += [take_entry.eq(1), push.eq(1), push_addr.eq(entry),
                                     push_bytes.eq(piece)]
                        m.d.sync += [pieces.eq(pieces + 1), rem.eq(rem - piece),
                                     need.eq(need - 1), index.eq(index + 1)]
            with m.State("DRAIN"):
                # No more reads for this page; use up the entries already asked for.
                m.d.comb += stop_issue.eq(1)
                m.d.sync += issue_left.eq(0)
                with m.If(~requesting & (used == requested)):
                    m.next = "TOKEN"
                with m.Elif(entry_ok):
                    m.d.comb += take_entry.eq(1)
            with m.State("TOKEN"):
                m.d.comb += stop_issue.eq(1)
                for d in range(2):
                    m.d.comb += [toks[d].w_data.eq(token),
                                 toks[d].w_en.eq(tok_room & (direction == d))]
                with m.If(tok_room):
                    m.next = "IDLE"
        return m
