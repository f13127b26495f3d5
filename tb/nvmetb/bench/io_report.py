"""What a run's I/O moved, kept beside its results: each host scenario on a cocotb bench
writes ``io-<scenario>.json`` into its run directory (``sim/build/runs/<test id>/``) with
the driver's :class:`~nvmetb.host.io.IoStats`; :func:`summary` adds up a regression's."""

import dataclasses
import json
import re
from pathlib import Path

__all__ = ["save_io_stats", "summary"]


def save_io_stats(host, label):
    """Write ``host.io_stats`` as ``io-<label>.json`` in the working directory (nothing if
    the scenario moved no I/O)."""
    stats = getattr(host, "io_stats", None)
    if stats is None or not stats.commands:
        return
    name = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", label)
    Path(f"io-{name}.json").write_text(json.dumps(dataclasses.asdict(stats), indent=1))


def summary(root):
    """Totals over every ``io-*.json`` under ``root``: commands, bytes each way, the most
    commands in flight and the largest transfer seen."""
    total = {"runs": 0, "commands": 0, "errors": 0, "bytes_to_device": 0, "bytes_to_host": 0,
             "max_in_flight": 0, "largest": 0}
    for path in Path(root).rglob("io-*.json"):
        stats = json.loads(path.read_text())
        total["runs"] += 1
        for key in ("commands", "errors", "bytes_to_device", "bytes_to_host"):
            total[key] += stats.get(key, 0)
        for key in ("max_in_flight", "largest"):
            total[key] = max(total[key], stats.get(key, 0))
    return total


if __name__ == "__main__":
    import sys

    print(json.dumps(summary(sys.argv[1] if len(sys.argv) > 1 else "sim/build/runs"),
                     indent=1))
