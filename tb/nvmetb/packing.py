"""Fast packing and unpacking of the gateware's structured payloads, for bench code that
runs every clock cycle.

``data.Layout.cast(L).const({...}).as_bits()`` and ``.from_bits(x).field`` are the
reference way to turn a :mod:`amaranth.lib.data` layout into bits and back, but each call
costs tens of microseconds; a bench that does it every cycle of every stream spends
most of its time there. :class:`Packer` reads a struct layout's field offsets and widths
once (from the same layout object the gateware uses; nothing is retyped) and then packs
and unpacks with shifts and masks::

    from nvmetb.packing import Packer
    from nvmecore.layouts import DmaReadRequest

    REQUEST = Packer(DmaReadRequest)                 # once, at import or set-up
    bits = REQUEST.pack(addr=0x1000, length=64, tag=3)
    req = REQUEST.unpack(bits)                       # req.addr, req.length, req.tag
    REQUEST.get(bits, "tag")                         # one field's bits, as an int
    valid = Packer(tap_layout).mask("valid")         # test a flag: bits & valid

Packing is stricter than ``Layout.const``: an int that does not fit its (unsigned or
signed) field raises ``ValueError`` instead of being truncated. Unpacking gives what
``from_bits`` gives for each field: an int (sign-extended for signed fields), an enum
member for enum-shaped fields (a value that is no member raises at once, where
``from_bits`` raises when the field is read), and a nested unpacked struct for
struct-shaped fields. New bench code that
drives or samples a structured port every cycle should use a :class:`Packer`; code that
runs once per command (building an SQ entry, decoding a CQ entry) may keep the layout's
own ``const`` / ``from_bits``.
"""

import dataclasses

from amaranth import hdl
from amaranth.hdl import Shape, ShapeCastable
from amaranth.lib import data

__all__ = ["Packer"]


class Packer:
    """Packs and unpacks one :class:`~amaranth.lib.data.StructLayout` (or a
    :class:`~amaranth.lib.data.Struct` class) as plain integers."""

    def __init__(self, layout):
        self.layout = data.Layout.cast(layout)
        if not isinstance(self.layout, data.StructLayout):
            raise TypeError(f"Packer needs a struct layout, not {self.layout!r}")
        #: Width of the packed value in bits.
        self.width = self.layout.size
        self._fields = {}                 # name -> (offset, mask, decode, encode)
        for name, field in self.layout:
            mask = (1 << field.width) - 1
            self._fields[name] = (field.offset, mask, *self._codec(field.shape, mask))
        self._decoders = [(offset, mask, decode)
                          for offset, mask, decode, _ in self._fields.values()]
        name = getattr(layout, "__name__", "Struct")
        self._make = dataclasses.make_dataclass(f"{name}Bits", list(self._fields),
                                                slots=True)

    @staticmethod
    def _codec(shape, mask):
        """(decode, encode) for a field: raw bits -> value, value -> raw bits (or None
        for plain unsigned fields, the fast path)."""
        if isinstance(shape, ShapeCastable):
            try:
                nested = Packer(shape)
            except TypeError:
                nested = None
            if nested is not None:
                return nested.unpack, lambda v: v if isinstance(v, int) else nested.pack(**v)
            # An enum or another shape of its own: converted as Layout.const converts it.
            return shape.from_bits, lambda v: hdl.Const.cast(hdl.Const(v, shape)).value & mask
        shape = Shape.cast(shape)
        if shape.signed:
            sign = 1 << (shape.width - 1)
            return (lambda raw: (raw ^ sign) - sign), \
                lambda v: v & mask if -sign <= v < sign else _range_error(v, shape)
        return None, None

    def pack(self, **fields) -> int:
        """The packed value with ``fields`` set and every other field zero."""
        bits = 0
        for name, value in fields.items():
            try:
                offset, mask, _, encode = self._fields[name]
            except KeyError:
                raise ValueError(f"{name!r} is not a field of {self.layout!r}") from None
            if encode is not None:
                value = encode(value)
            elif not 0 <= value <= mask:
                raise ValueError(f"{name}={value!r} does not fit {mask.bit_length()} bits")
            bits |= int(value) << offset
        return bits

    def unpack(self, bits: int):
        """Every field of ``bits`` as an attribute (``unpack(x).addr``), as ``from_bits``
        would give them."""
        return self._make(*[(bits >> offset) & mask if decode is None
                            else decode((bits >> offset) & mask)
                            for offset, mask, decode in self._decoders])

    def get(self, bits: int, name) -> int:
        """The raw bits of one field of ``bits``."""
        offset, mask, _, _ = self._fields[name]
        return (bits >> offset) & mask

    def mask(self, name) -> int:
        """The bits of field ``name`` in place (``bits & packer.mask("valid")``)."""
        offset, mask, _, _ = self._fields[name]
        return mask << offset


def _range_error(value, shape):
    raise ValueError(f"{value!r} does not fit {shape!r}")
