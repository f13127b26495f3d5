"""CoreConfig validation, the generate CLI and the Verilog it writes."""

import subprocess
import sys

import pytest

from nvmecore import ConfigError, CoreConfig
from nvmecore.cli import generate_verilog, main

pytestmark = pytest.mark.quick


def test_defaults():
    config = CoreConfig()
    assert (config.io_queues, config.max_queue_entries, config.msix_vectors,
            config.data_width, config.ready_timeout) == (16, 4096, 17, 256, 0x0F)
    assert not config.debug


@pytest.mark.parametrize("kwargs, words", [
    ({"io_queues": 512}, "511 I/O queue pairs"),
    ({"io_queues": 0}, "io_queues=0"),
    ({"msix_vectors": 257}, "256 MSI-X vectors"),
    ({"io_queues": 300}, "msix_vectors=301"),          # the default vector count too
    ({"max_queue_entries": 1}, "2..65536"),
    ({"max_queue_entries": 65537}, "2..65536"),
    ({"data_width": 100}, "data_width=100"),
    ({"mps_min": 2, "mps_max": 1}, "mps_min=2"),
    ({"ready_timeout": 256}, "CAP.TO"),
    ({"io_queues": "4"}, "must be an integer"),
])
def test_refuses(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        CoreConfig(**kwargs)


def test_largest_bar0_fit():
    CoreConfig(io_queues=511, msix_vectors=256)


@pytest.mark.slow
def test_generate_writes_verilog(tmp_path):
    out = tmp_path / "core.v"
    assert main(["generate", "--io-queues", "4", "--data-width", "512", "-o", str(out)]) == 0
    text = out.read_text()
    assert "module nvmecore(" in text
    assert "dbg_" not in text, "test ports must stay out of the default Verilog"
    assert text == generate_verilog(CoreConfig(io_queues=4, data_width=512)), \
        "generation is reproducible"


def test_generate_refuses_bad_config(tmp_path):
    result = subprocess.run([sys.executable, "-m", "nvmecore", "generate", "--msix-vectors",
                             "300", "-o", str(tmp_path / "x.v")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "256 MSI-X vectors" in result.stderr
    assert not (tmp_path / "x.v").exists()


def test_regmap(capsys):
    main(["regmap"])
    out = capsys.readouterr().out
    assert "0x0014  CC" in out and "0x2000  MSI-X table, 17 vectors" in out
