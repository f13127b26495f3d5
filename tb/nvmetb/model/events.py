"""Asynchronous events and the Asynchronous Event Requests that report them
[NVMe 1.4 §5.2], as docs/admin-commands.md ("Asynchronous events") fixes them.

- An event is pending until reported; a second event of a type already pending merges
  with it (the first one's information is kept).
- Up to AERL + 1 requests are held; they take no CQ slot.
- A held request completes with the oldest pending event whose type is not masked;
  that type is then masked until its log page is read with RAE = 0 (:meth:`rearm`).
- An Abort that names a held request takes it out; it completes with Abort Requested.
- A controller reset drops held requests, pending events and masks.

When a request can complete is the controller's business (a free admin CQ slot): it
asks :meth:`next_completion`.
"""

from collections import deque
from dataclasses import dataclass

from nvmecore.layouts import AsyncEvent, GenericStatus
from nvmecore.nvme.identify import AERL

from .commands import SUCCESS, Status, encode

__all__ = ["HeldRequest", "AsyncEventUnit"]


@dataclass(frozen=True)
class HeldRequest:
    """An Asynchronous Event Request waiting for an event (admin SQ)."""
    cid: int
    nsid: int


class AsyncEventUnit:
    #: Requests held at most: AERL is 0's based [NVMe 1.4 §5.2].
    LIMIT = AERL + 1

    def __init__(self):
        self.reset()

    def reset(self):
        self.held: deque[HeldRequest] = deque()       # oldest first
        self.pending: dict = {}                       # AsyncEventType -> DW0, oldest first
        self.masked: set = set()                      # types reported, not yet re-armed
        self.aborted: deque[HeldRequest] = deque()    # aborted, waiting for a CQ slot

    def report(self, type, info, lid):
        """An event occurred: it is pending (or merges with a pending one of its type)."""
        self.pending.setdefault(type, encode(AsyncEvent, {"type": type, "info": info,
                                                          "lid": lid}))

    def hold(self, request: HeldRequest):
        """Hold an Asynchronous Event Request; False if AERL + 1 are already held."""
        if len(self.held) >= self.LIMIT:
            return False
        self.held.append(request)
        return True

    def rearm(self, type):
        """The log page of ``type`` was read with RAE = 0 [NVMe 1.4 §5.14.1]."""
        self.masked.discard(type)

    def abort(self, cid):
        """Take the held request with command identifier ``cid`` out (the oldest, if the
        host reused a CID); True if there was one."""
        for request in self.held:
            if request.cid == cid:
                self.held.remove(request)
                self.aborted.append(request)
                return True
        return False

    def next_completion(self):
        """``(request, DW0, status)`` for the next request that can complete, or None.
        Aborted requests come first, then the oldest held one with the oldest unmasked
        pending event."""
        if self.aborted:
            return self.aborted.popleft(), 0, Status.of(GenericStatus.ABORT_REQUESTED)
        if not self.held:
            return None
        for type, dw0 in self.pending.items():
            if type not in self.masked:
                del self.pending[type]
                self.masked.add(type)
                return self.held.popleft(), dw0, SUCCESS
        return None
