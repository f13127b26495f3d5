# amaranth: UnusedElaboratable=no
"""Quick tier: nvmetb.packing.Packer gives the same bits and fields as the layouts' own
``const`` / ``from_bits``, for every layout the benches pack or unpack per cycle."""

import random

import pytest
from amaranth import signed
from amaranth.lib import data

from nvmecore import CoreConfig, NvmeCore
from nvmecore.bus import DmaReadBeat, DmaWriteBeat
from nvmecore.layouts import (
    AsyncEvent,
    AsyncEventType,
    Cqe,
    DmaReadRequest,
    DmaWriteRequest,
    DoorbellUpdate,
    IrqRequest,
    QueueSizeUpdate,
    RegRequest,
    StatusCodeType,
)
from nvmetb.packing import Packer

pytestmark = pytest.mark.quick

_PORTS = NvmeCore(CoreConfig(debug=True)).signature.members
LAYOUTS = {
    "DmaReadRequest": DmaReadRequest, "DmaWriteRequest": DmaWriteRequest,
    "RegRequest": RegRequest, "DoorbellUpdate": DoorbellUpdate,
    "QueueSizeUpdate": QueueSizeUpdate, "IrqRequest": IrqRequest, "AsyncEvent": AsyncEvent,
    "Cqe": Cqe, "DmaReadBeat": DmaReadBeat(256), "DmaWriteBeat": DmaWriteBeat(512),
    "dbg_doorbell": _PORTS["dbg_doorbell"].shape, "dbg_event": _PORTS["dbg_event"].shape,
    "signed": data.StructLayout({"a": 3, "b": signed(5), "c": signed(1)}),
}


def _random_bits(layout, rng):
    layout = data.Layout.cast(layout)
    bits = rng.getrandbits(layout.size)
    for _, field in layout:
        shape = field.shape
        if isinstance(shape, type) and issubclass(shape, (AsyncEventType, StatusCodeType)):
            member = rng.choice(list(shape))
            bits &= ~(((1 << field.width) - 1) << field.offset)
            bits |= member.value << field.offset
        elif _nested(field):
            bits &= ~(((1 << field.width) - 1) << field.offset)
            bits |= _random_bits(shape, rng) << field.offset
    return bits


def _same_fields(layout, ref, got):
    for name, field in data.Layout.cast(layout):
        want = ref[name]
        have = getattr(got, name)
        if isinstance(field.shape, (data.Layout, data._AggregateMeta)):
            _same_fields(field.shape, want, have)
        else:
            assert have == want and type(have) is type(want), name


def _values(layout, const):
    """Every field of a ``data.Const`` as ``const`` takes it: nested structs as dicts."""
    return {name: _values(field.shape, const[name]) if _nested(field) else const[name]
            for name, field in data.Layout.cast(layout)}


def _nested(field):
    return isinstance(field.shape, (data.Layout, data._AggregateMeta))


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_packer_matches_layout(name):
    layout = data.Layout.cast(LAYOUTS[name])
    packer = Packer(LAYOUTS[name])
    rng = random.Random(name)
    assert packer.width == layout.size
    assert sum(packer.mask(field) for field, _ in layout) == (1 << layout.size) - 1
    for _ in range(200):
        bits = _random_bits(layout, rng)
        ref = layout.from_bits(bits)
        _same_fields(layout, ref, packer.unpack(bits))
        values = _values(layout, ref)
        assert packer.pack(**values) == bits == layout.const(values).as_bits()
        for field, f in layout:
            assert packer.get(bits, field) == ref.as_bits() >> f.offset & ((1 << f.width) - 1)
        # A nested struct may also be given as its raw bits.
        raw = {field: packer.get(bits, field) if _nested(f) else values[field]
               for field, f in layout}
        assert packer.pack(**raw) == bits


def test_packer_refuses_what_does_not_fit():
    request = Packer(DmaReadRequest)
    with pytest.raises(ValueError, match="tag=256"):
        request.pack(tag=256)
    with pytest.raises(ValueError, match="tag=-1"):
        request.pack(tag=-1)
    with pytest.raises(ValueError, match="'size' is not a field"):
        request.pack(size=1)
    with pytest.raises(ValueError):
        Packer(LAYOUTS["signed"]).pack(b=16)
    assert Packer(LAYOUTS["signed"]).pack(b=-16) == 0x10 << 3
    with pytest.raises(TypeError):
        Packer(data.ArrayLayout(8, 4))
