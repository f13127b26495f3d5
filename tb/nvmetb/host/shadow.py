"""What the host knows its namespace holds.

:class:`NamespaceShadow` keeps a copy of the namespace, byte for byte, and which
512-byte sectors of it are known: written by a command that succeeded, zeroed by Write
Zeroes, deallocation or Format NVM. A sector the host never wrote, or one a failed write
left undefined, is unknown and is not checked. It also keeps the LBA ranges of the
commands in flight, so that two commands whose blocks overlap, one of them writing, are
never in flight together (docs/io-commands.md "Many commands in flight": their outcome
would depend on timing).
"""

from nvmecore.nvm_layouts import SECTOR_BYTES

__all__ = ["NamespaceShadow"]


class NamespaceShadow:
    """A ``size``-byte namespace as the host knows it (``zeroed``: known to be all
    zeroes, as after Format NVM)."""

    def __init__(self, size, *, zeroed=False):
        if size % SECTOR_BYTES:
            raise ValueError(f"a namespace of {size} bytes is not whole sectors")
        self.size = size
        self.image = bytearray(size)
        self.known = bytearray([int(zeroed)]) * (size // SECTOR_BYTES)
        self.in_flight = {}                 # key -> (start, stop, writes), byte ranges

    def _sectors(self, start, stop):
        if not (0 <= start <= stop <= self.size and start % SECTOR_BYTES == 0
                and stop % SECTOR_BYTES == 0):
            raise ValueError(f"bytes {start:#x}..{stop:#x} are not whole sectors of the "
                             f"namespace")
        return slice(start // SECTOR_BYTES, stop // SECTOR_BYTES)

    # -- What commands do --------------------------------------------------------------

    def write(self, start, data):
        self.image[start:start + len(data)] = data
        span = self._sectors(start, start + len(data))
        self.known[span] = b"\1" * (span.stop - span.start)

    def zero(self, start, length):
        self.write(start, bytes(length))

    def forget(self, start, length):
        """The bytes are undefined now (a failed Write or Write Zeroes)."""
        span = self._sectors(start, start + length)
        self.known[span] = bytes(span.stop - span.start)

    def format(self):
        """Format NVM: all zeroes."""
        self.image[:] = bytes(self.size)
        self.known[:] = b"\1" * len(self.known)

    # -- Checks ------------------------------------------------------------------------

    def is_known(self, start, length):
        span = self._sectors(start, start + length)
        return all(self.known[span])

    def mismatch(self, start, data):
        """The first byte offset (into ``data``) where ``data`` differs from a known
        sector at namespace byte ``start``, or None."""
        span = self._sectors(start, start + len(data))
        for sector in range(span.start, span.stop):
            if not self.known[sector]:
                continue
            lo = sector * SECTOR_BYTES - start
            want = self.image[sector * SECTOR_BYTES:(sector + 1) * SECTOR_BYTES]
            got = data[lo:lo + SECTOR_BYTES]
            if got != want:
                return lo + next(i for i in range(SECTOR_BYTES) if got[i] != want[i])
        return None

    # -- Commands in flight ----------------------------------------------------------------

    def conflicts(self, ranges, writes):
        """The in-flight keys whose ranges overlap one of ``ranges`` (``(start, stop)``
        byte pairs) where either side writes."""
        return [key for key, (spans, other_writes) in self.in_flight.items()
                if (writes or other_writes)
                and any(a < d and c < b for a, b in ranges for c, d in spans)]

    def begin(self, key, ranges, writes):
        clash = self.conflicts(ranges, writes)
        if clash:
            raise ValueError(f"command {key} overlaps {clash} in flight, one of them "
                             f"writing: the outcome would depend on timing")
        self.in_flight[key] = (list(ranges), writes)

    def end(self, key):
        self.in_flight.pop(key, None)
