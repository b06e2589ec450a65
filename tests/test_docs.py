"""The manual as a specification: its tables list exactly what the registries hold.

Every name registered for a component must be documented in ``docs/toolbox.md`` and no name
documented there may be missing from its registry; every data source and every metric must be
documented; the README stays a first page (at most 10 KB) with the CI's test command; and every
relative link in the README, CONTRIBUTING.md and docs/*.md points to a file that exists.
"""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_LIMIT = 10_240  # bytes

# kind: (heading in docs/toolbox.md, module, registry)
TOOLBOX = {
    "activations": ("Activations", "bpnn.nn.activations", "ACTIVATIONS"),
    "losses": ("Losses", "bpnn.nn.losses", "LOSSES"),
    "initializers": ("Initializers", "bpnn.nn.initializers", "INITIALIZERS"),
    "bias initializers": ("Bias initializers", "bpnn.nn.initializers", "BIAS_INITIALIZERS"),
    "optimizers": ("Optimizers", "bpnn.nn.optimizers", "OPTIMIZERS"),
    "schedules": ("Learning-rate schedules", "bpnn.nn.schedules", "SCHEDULES"),
}


def section(text: str, heading: str) -> str:
    """The text under the Markdown heading that starts with ``heading``, up to the next heading
    of the same or a higher level."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"(#+)\s+(.*)", line)
        if match and match.group(2).startswith(heading):
            level = len(match.group(1))
            body = []
            for following in lines[i + 1 :]:
                other = re.match(r"(#+)\s", following)
                if other and len(other.group(1)) <= level:
                    break
                body.append(following)
            return "\n".join(body)
    raise AssertionError(f"no heading starting with {heading!r}")


def first_column_names(markdown: str) -> set[str]:
    """The backticked names in the first column of every table row (header and rule excluded)."""
    names: set[str] = set()
    for line in markdown.splitlines():
        line = line.strip()
        if not line.startswith("|") or re.fullmatch(r"\|[\s:|-]+\|?", line):
            continue
        first = line.strip("|").split("|")[0]
        names.update(re.findall(r"`([^`]+)`", first))
    return names


def test_section_and_table_parsing() -> None:
    text = "# A\n## Things\n\n| name | x |\n|---|---|\n| `a` | `b` |\n| `c`, `d` | |\n"
    text += "## Other\n| `e` |\n"
    assert first_column_names(section(text, "Things")) == {"a", "c", "d"}


@pytest.mark.parametrize("kind", list(TOOLBOX))
def test_toolbox_table_lists_exactly_the_registered_names(kind: str) -> None:
    heading, module, registry = TOOLBOX[kind]
    text = (DOCS / "toolbox.md").read_text(encoding="utf-8")
    documented = first_column_names(section(text, heading))
    registered = set(getattr(importlib.import_module(module), registry))
    assert registered - documented == set(), f"registered {kind} missing from docs/toolbox.md"
    assert documented - registered == set(), f"docs/toolbox.md lists unregistered {kind}"


def test_every_data_source_is_documented() -> None:
    from bpnn.data import SOURCES

    data_md = (DOCS / "data.md").read_text(encoding="utf-8")
    config_md = section((DOCS / "config.md").read_text(encoding="utf-8"), "`data`")
    for name in SOURCES:
        assert f"`{name}`" in data_md, f"data source {name!r} is not in docs/data.md"
        assert f"`{name}`" in config_md, f"data source {name!r} is not in docs/config.md"


def test_every_metric_is_documented() -> None:
    from bpnn.metrics import METRICS

    text = (DOCS / "run-directory.md").read_text(encoding="utf-8")
    for name in METRICS:
        assert f"`{name}`" in text, f"metric {name!r} is not in docs/run-directory.md"


def test_readme_is_a_first_page() -> None:
    size = README.stat().st_size
    assert size <= README_LIMIT, f"README.md is {size} bytes; the limit is {README_LIMIT}"


def ci_test_command() -> str:
    """The test command .ci/run runs (it reads it from the README's quick start)."""
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "run"), "--print-command"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def _contains(words: list[str], part: list[str]) -> bool:
    """Whether ``part`` occurs in ``words`` as a contiguous run of words."""
    return any(words[i : i + len(part)] == part for i in range(len(words) - len(part) + 1))


def test_readme_quick_start_has_the_ci_test_command() -> None:
    command = ci_test_command()
    assert "pytest" in command
    # .ci/run adds --quiet to pip; the README's command is the same without it
    words = [word for word in shlex.split(command) if word != "--quiet"]
    quick_start = section(README.read_text(encoding="utf-8"), "Quick start")
    blocks = re.findall(r"```[^\n]*\n(.*?)```", quick_start, flags=re.S)
    commands = [line for block in blocks for line in block.splitlines() if line.strip()]
    assert len(commands) == 2, "the quick start is exactly two commands"
    assert any(_contains(shlex.split(line), words) for line in commands), (
        f"the quick start does not contain the test command of .ci/run: {' '.join(words)}"
    )
    assert any("bpnn train configs/digits.yaml" in line for line in commands)


LINKED_FILES = [README, ROOT / "CONTRIBUTING.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("path", LINKED_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links are not looked for in code blocks
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    for target in targets:
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        assert "#" not in target, f"{path.name}: link {target!r} has an anchor"
        assert (path.parent / target).exists(), f"{path.name}: link {target!r} points nowhere"


#: a claim that two runs give the same numbers exactly
EXACT_CLAIM = re.compile(
    r"bit[\s-]+for[\s-]+bit|bit[\s-]+identical|bitwise|to\s+the\s+last\s+digit", re.IGNORECASE
)


def exact_claims(path: Path) -> list[str]:
    """Every paragraph (a table row, a line of a code block) of ``path`` that claims exact
    equality, outside the section "Reproducibility" of run-directory.md, which says when it
    holds."""
    text = path.read_text(encoding="utf-8")
    if path.name == "run-directory.md":
        text = text.replace(section(text, "Reproducibility"), "")
    paragraphs = [
        piece
        for block in re.split(r"\n\s*\n", text)
        for piece in (block.splitlines() if block.lstrip().startswith(("|", "```")) else [block])
    ]
    return [" ".join(p.split()) for p in paragraphs if EXACT_CLAIM.search(p)]


@pytest.mark.parametrize("path", LINKED_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_bit_for_bit_claim_says_when_it_holds(path: Path) -> None:
    """Same numbers only on the same machine, library versions, BLAS and thread count: each claim
    points to the one paragraph that says so (run-directory.md, section "Reproducibility")."""
    for claim in exact_claims(path):
        assert ("Reproducibility" in claim and "run-directory.md" in claim) or (
            path.name == "run-directory.md" and 'section "Reproducibility" below' in claim
        ), f"{path.name}: {claim[:200]}"
