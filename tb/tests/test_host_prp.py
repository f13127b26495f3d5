"""Quick tier: the host driver's PRP builder (``nvmetb.host.prp``) and namespace shadow,
checked against a PRP walk written here from the specification [NVMe 1.4 §4.3] and
against the reference model's walker."""

import random

import pytest

from nvmetb.host import HostMemoryTransport, NamespaceShadow, PrpLayout, build_prps
from nvmetb.host.prp import BAD_ENTRY_OFFSET, prp_pieces
from nvmetb.hostmem import HostMemory
from nvmetb.model.commands import Refused
from nvmetb.model.prp import prp_walk

pytestmark = pytest.mark.quick

PAGE = 4096
HIGH = 1 << 32


def walk(t, prp1, prp2, length):
    """The spec's walk: ``(pieces, list pages as (address, entries read), bad)``, where
    ``bad`` names the first entry that is not aligned as it must be."""
    pieces = [(prp1, min(length, PAGE - prp1 % PAGE))]
    left = length - pieces[0][1]
    lists = []
    if prp1 % 4:
        return pieces, lists, "prp1"
    if not left:
        return pieces, lists, None
    if left <= PAGE:
        return pieces + [(prp2, left)], lists, "prp2" if prp2 % PAGE else None
    if prp2 % 8:
        return pieces, lists, "prp2"
    at = prp2
    while left:
        slots = (PAGE - at % PAGE) // 8
        need = -(-left // PAGE)
        count = slots if need > slots else need
        raw = t.mem_read(at, 8 * count)
        entries = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw), 8)]
        lists.append((at, count))
        data = entries[:-1] if need > slots else entries
        for e in data:
            if e % PAGE:
                return pieces, lists, f"entry {len(pieces) - 1}"
            pieces.append((e, min(left, PAGE)))
            left -= pieces[-1][1]
        if need > slots:
            at = entries[-1]
            if at % PAGE:
                return pieces, lists, "chain"
    return pieces, lists, None


class MemoryOnly(HostMemoryTransport):
    """Host memory, and no controller."""

    async def mmio_read(self, offset, size=4):
        raise NotImplementedError

    async def mmio_write(self, offset, value, size=4):
        raise NotImplementedError

    async def wait(self, us):
        raise NotImplementedError


def transport():
    return MemoryOnly(HostMemory())


LAYOUTS = [
    PrpLayout(),
    PrpLayout(offset=4),
    PrpLayout(offset=PAGE - 4),
    PrpLayout(offset=0x800, contiguous=True),
    PrpLayout(shuffle=True, offset=0x10),
    PrpLayout(list_offset=8),
    PrpLayout(list_offset=PAGE - 16),
    PrpLayout(chain_after=1),
    PrpLayout(chain_after=3, offset=0x200, shuffle=True),
    PrpLayout(chain_after=63, data_high=True, list_high=True),
    PrpLayout(data_high="mixed", list_high=False, shuffle=True),
    PrpLayout(contiguous=True, data_high=True, list_offset=0x100),
]
LENGTHS = [4, 512, PAGE, PAGE + 512, 2 * PAGE, 3 * PAGE, 5 * PAGE + 4, 70 * PAGE, 128 * PAGE]


@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
@pytest.mark.parametrize("length", LENGTHS)
def test_layout_walks_back_to_its_pieces(layout, length):
    t = transport()
    prp = build_prps(t, length, layout, rng=random.Random(length))
    pieces, lists, bad = walk(t, prp.prp1, prp.prp2, length)
    assert bad is None
    assert pieces == prp.pieces
    assert lists == prp.lists
    assert sum(n for _, n in pieces) == length
    assert prp.prp1 % PAGE == layout.offset
    # The model's walker agrees, reading exactly the list entries built.
    assert prp_walk(prp.prp1, prp.prp2, length, PAGE, t.mem_read) == prp.pieces
    mem = t.memory
    if len(pieces) > 2:
        first = prp.lists[0][0]
        assert first % PAGE == layout.first_list_offset
    # Tight buffers: nothing allocated right after a piece unless the next piece is there,
    # nor right after the list entries.
    for i, (addr, n) in enumerate(pieces):
        assert mem.buffer_at(addr, n) is not None
        following = pieces[i + 1][0] if i + 1 < len(pieces) else None
        if following != addr + n:
            assert mem.buffer_at(addr + n) is None
        if i == 0:
            assert mem.buffer_at(addr - 1) is None
    for addr, n in prp.lists:
        assert mem.buffer_at(addr, 8 * n) is not None
        assert mem.buffer_at(addr + 8 * n) is None and mem.buffer_at(addr - 1) is None
    if layout.data_high is True:
        assert all(addr >= HIGH for addr, _ in pieces)
    if layout.data_high is False or layout.data_high is None:
        assert all(addr < HIGH for addr, _ in pieces)
    if layout.list_high:
        assert all(addr >= HIGH for addr, _ in prp.lists)
    if not layout.contiguous and len(pieces) > 1:
        addrs = [a for a, _ in pieces]
        assert all(b != a + PAGE for a, b in zip(addrs, addrs[1:], strict=False))
    data = random.Random(1).randbytes(length)
    prp.write(t, data)
    assert prp.read(t) == data


def test_chain_after():
    t = transport()
    prp = build_prps(t, 10 * PAGE, PrpLayout(chain_after=4))
    assert [n for _, n in prp.lists] == [5, 5]                  # 4 + pointer, then 5
    assert prp.chains == [prp.lists[0][0] + 32]
    assert int.from_bytes(t.mem_read(prp.chains[0], 8), "little") == prp.lists[1][0]
    # Exactly chain_after + 1 entries left: they fit, no chain.
    prp = build_prps(t, 6 * PAGE, PrpLayout(chain_after=4))
    assert [n for _, n in prp.lists] == [5] and not prp.chains


@pytest.mark.parametrize("layout, length, where", [
    (PrpLayout(bad_prp1=2), 512, "prp1"),
    (PrpLayout(offset=0x100, bad_prp1=1), 2 * PAGE, "prp1"),
    (PrpLayout(bad_prp2=8), 2 * PAGE, "prp2"),
    (PrpLayout(bad_prp2=4), 3 * PAGE, "prp2"),
    (PrpLayout(bad_entry=0), 3 * PAGE, "entry 0"),
    (PrpLayout(bad_entry=4, chain_after=2), 8 * PAGE, "entry 4"),
    (PrpLayout(bad_chain=True, chain_after=2), 8 * PAGE, "chain"),
])
def test_broken_layouts(layout, length, where):
    t = transport()
    prp = build_prps(t, length, layout, name="failing")
    _, _, bad = walk(t, prp.prp1, prp.prp2, length)
    assert bad == where
    with pytest.raises(Refused):
        prp_walk(prp.prp1, prp.prp2, length, PAGE, t.mem_read)
    if layout.bad_entry is not None or layout.bad_chain:
        raw = b"".join(t.mem_read(a, 8 * n) for a, n in prp.lists)
        entries = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw), 8)]
        assert sum(e % PAGE == BAD_ENTRY_OFFSET for e in entries) == 1


def test_refused_layouts():
    t = transport()
    with pytest.raises(ValueError):
        build_prps(t, 512, PrpLayout(bad_prp2=4))                # no PRP2 in use
    with pytest.raises(ValueError):
        build_prps(t, 2 * PAGE, PrpLayout(bad_entry=0))         # no list
    with pytest.raises(ValueError):
        build_prps(t, 3 * PAGE, PrpLayout(bad_chain=True))      # no chain
    with pytest.raises(ValueError):
        PrpLayout(chain_after=2, list_offset=8)


def test_pieces():
    assert prp_pieces(0, 3 * PAGE) == [PAGE] * 3
    assert prp_pieces(PAGE - 4, 8) == [4, 4]
    assert prp_pieces(0x200, 512) == [512]


def test_shadow():
    s = NamespaceShadow(8 * 512)
    assert not s.is_known(0, 512)
    assert s.mismatch(0, b"x" * 512) is None                    # unknown: not checked
    s.write(512, b"a" * 1024)
    assert s.is_known(512, 1024) and not s.is_known(0, 1024)
    assert s.mismatch(0, bytes(512) + b"a" * 1023 + b"b") == 1535
    s.forget(1024, 512)
    assert s.mismatch(0, bytes(512) + b"a" * 512 + b"b" * 512) is None
    s.begin("w", [(0, 1024)], True)
    with pytest.raises(ValueError):
        s.begin("r", [(512, 1024)], False)                     # overlaps a write
    s.begin("r", [(1024, 2048)], False)
    s.begin("r2", [(1024, 2048)], False)                       # two reads may overlap
    s.end("w")
    s.begin("w2", [(0, 1024)], True)
    s.format()
    assert s.is_known(0, 8 * 512) and s.mismatch(0, bytes(4096)) is None
