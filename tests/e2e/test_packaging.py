"""What ``pip install`` leaves: one import package and one script, and a client that needs no server."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import council
from tests.e2e.procs import Services

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The distribution as ``pip install .`` builds it."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    yield next(out.glob("council-*.whl"))


def test_the_distribution_installs_one_import_package_and_the_council_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = f"council-{council.__version__}.dist-info"
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    assert {name.split("/")[0] for name in names} == {"council", dist_info}
    assert {"council/schemas/events.py", "council/deliberation/fold.py", "council/py.typed"} <= set(names)
    assert "council/common/simulated.toml" in names  # the built-in catalogues ship as package data
    assert re.search(r"^council = council\.cli:main$", entry_points, re.MULTILINE)


def _readme_client_example(url: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    example = next(block for block in blocks if "from council.client import CouncilClient" in block)
    return example.replace("http://127.0.0.1:8000", url)


def test_the_readme_client_example_runs_with_only_the_clients_dependencies(
    wheel: Path, services: Services, tmp_path: Path
) -> None:
    url = services.start_gateway()
    services.start("orchestrator", "orchestrator")
    services.start("runner", "runner")
    venv = tmp_path / "client-only"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, capture_output=True)
    subprocess.run([*pip, "httpx>=0.27", "httpx-sse>=0.4", "msgspec>=0.18"], check=True, capture_output=True)
    absent = subprocess.run([python, "-c", "import litestar"], capture_output=True)
    assert absent.returncode != 0  # the venv really holds only what the client needs
    run = subprocess.run(
        [python, "-c", _readme_client_example(url)], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert run.returncode == 0, run.stderr
    events, _, final_answer = run.stdout.partition(" council.completed\n")
    assert events.splitlines()[0].endswith(" council.submitted")  # every event, live, then the answer
    assert final_answer.strip()
