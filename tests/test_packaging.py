"""The project as a wheel: templates, the sample corpus and migrations ship inside it and are found from there.

Built with pip (its build backend, hatchling, comes from the package index like every other dependency), unpacked,
and imported from a directory outside the checkout: the modules, templates and data files used are the wheel's.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

USE_THE_WHEEL = """
import sys
from pathlib import Path
import newsletter, templates
unpacked = Path(sys.argv[1]).resolve()
assert Path(newsletter.__file__).resolve().is_relative_to(unpacked), newsletter.__file__
assert templates.TEMPLATES_DIR.is_relative_to(unpacked), templates.TEMPLATES_DIR
from newsletter import db
from newsletter.config import Settings
from newsletter.ingest import sample_sources
from newsletter.render.compile import compiled_html_template, text_template
from newsletter.web.app import create_app
compiled_html_template(), text_template()
create_app(Settings(_env_file=None, data_dir=Path(sys.argv[2])))
assert len(sample_sources()) == 3 and all(Path(s).resolve().is_relative_to(unpacked) for s in sample_sources())
db.upgrade(f"sqlite:///{sys.argv[2]}/wheel.db")
print("wheel ok")
"""


@pytest.mark.slow
def test_a_wheel_install_finds_its_templates_sample_and_migrations(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("*.whl")
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    used = subprocess.run([sys.executable, "-c", USE_THE_WHEEL, str(unpacked), str(tmp_path)], cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(unpacked)}, capture_output=True, text=True,
                          timeout=120)
    assert used.returncode == 0 and "wheel ok" in used.stdout, used.stderr
