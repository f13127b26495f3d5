"""The Error Information log [NVMe 1.4 §5.14.1.1]: one entry per command completed with
an error status (refused commands and aborted Asynchronous Event Requests included),
newest first, ELPE + 1 entries kept (docs/admin-commands.md "Error Information log
entries"). The error count starts at 1 and is 64 bits; it survives a controller reset
and clears only with a bus reset (the core keeps it in volatile memory)."""

from collections import deque

from nvmecore.nvme.identify import ERROR_LOG_ENTRIES, error_log

from .commands import Status

__all__ = ["ErrorLog"]


class ErrorLog:
    def __init__(self):
        self.count = 0                               # the newest entry's error count
        self.entries = deque(maxlen=ERROR_LOG_ENTRIES)   # newest first

    def add(self, *, sqid, cid, status: Status, nsid, lba=0):
        """An entry for a completion with an error. ``lba``: the SLBA of a Read, Write,
        Compare or Write Zeroes (docs/io-commands.md), else 0."""
        self.count += 1
        self.entries.appendleft({
            "error_count": self.count, "sqid": sqid, "cid": cid,
            "sct": status.sct.value, "sc": status.sc, "dnr": status.dnr, "nsid": nsid,
            "lba": lba,
            # parameter error location FFFFh: the builder's default
        })

    def page(self):
        """The 4096-byte log page."""
        return error_log(self.entries)
