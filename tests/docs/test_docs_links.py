"""Every relative link in README.md and docs/*.md reaches an existing file and, if it names one, heading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", flags=re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", flags=re.M)


def prose(text: str) -> str:
    """The text without fenced code blocks, where `#` and `[x](y)` are not markdown."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a markdown page, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(prose(page.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def relative_links() -> list[tuple[Path, str]]:
    links = []
    for page in PAGES:
        for target in LINK.findall(CODE_SPAN.sub("", prose(page.read_text()))):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not ours
                links.append((page, target))
    return links


def test_slugs_follow_github():
    assert slug("Scheduling and faults: leases, attempts, retries") == "scheduling-and-faults-leases-attempts-retries"
    assert slug("The `basilisk` engine") == "the-basilisk-engine"
    assert slug("`latin_hypercube`") == "latin_hypercube"
    assert slug("A local stack: `lynx up` and `lynx run`") == "a-local-stack-lynx-up-and-lynx-run"


def test_the_readme_links_every_docs_page():
    linked = {(ROOT / target.split("#")[0]).resolve() for page, target in relative_links() if page.name == "README.md"}
    missing = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert len(PAGES) > 1 and not missing, f"docs pages the README does not link: {missing}"


@pytest.mark.parametrize(("page", "target"), relative_links(), ids=[f"{p.name}->{t}" for p, t in relative_links()])
def test_relative_link_resolves(page: Path, target: str):
    path, _, anchor = target.partition("#")
    dest = (page.parent / path).resolve() if path else page
    assert dest.exists(), f"{page.relative_to(ROOT)} links to {target}: no such file"
    if anchor:
        assert dest.suffix == ".md", f"{page.relative_to(ROOT)} links to an anchor in a non-markdown file: {target}"
        assert anchor in anchors(dest), f"{page.relative_to(ROOT)} links to {target}: no heading #{anchor}"
