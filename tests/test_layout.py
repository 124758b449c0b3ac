"""The package layout: stage packages whose imports run one way, and no module too long to read."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "medr1"
STAGES = ["sources", "data", "rewards", "evaluation", "train", "embedded"]
MAX_LINES = 600


def medr1_imports(path: Path) -> list[str]:
    """Every `medr1.*` module a file imports, at any depth (function-level imports included)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return [name for name in names if name.split(".")[0] == "medr1"]


def stage_violations(package: Path) -> list[str]:
    rank = {stage: i for i, stage in enumerate(STAGES)}
    bad = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).parts
        if len(parts) < 2 or parts[0] not in rank:
            continue
        for name in medr1_imports(path):
            target = name.split(".")
            if len(target) > 1 and target[1] in rank and rank[target[1]] > rank[parts[0]]:
                bad.append(f"{path.relative_to(package)} imports {name}")
    return bad


def test_every_module_lives_in_a_stage_package():
    top_level = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top_level == ["__init__.py", "cli.py"]
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(STAGES)
    for stage in STAGES:
        assert (PACKAGE / stage / "__init__.py").read_text(encoding="utf-8").startswith('"""'), stage


def test_imports_run_one_way_through_the_stages():
    assert stage_violations(PACKAGE) == []


def test_the_stage_check_catches_an_import_to_the_right(tmp_path):
    """The check above can fail: a train module importing the embedded default is reported."""
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "sft.py").write_text("def f():\n    from medr1.embedded.synth import finding_colour\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ok.py").write_text("from medr1.sources import omnimedvqa\n")
    assert stage_violations(tmp_path) == ["train/sft.py imports medr1.embedded.synth",
                                          "train/sft.py imports medr1.embedded.synth.finding_colour"]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_the_size_limit(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES
