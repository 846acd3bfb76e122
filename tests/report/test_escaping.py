"""User-supplied strings in the HTML report are text, never markup, and plot file names made
from them are safe; checked on the HTML itself (no browser needed; tests/report/test_browser.py
checks the same report in Chromium)."""

import re
from html.parser import HTMLParser

import pytest
from reportstores import (
    ATTRIBUTES,
    HOSTILE_WORKLOADS,
    TAGS,
    hostile_store,
    hostile_texts,
    hp_json,
    workload_name,
)

from trainlab.report.html import MAX_SLUG, _slug, build_report


class Page(HTMLParser):
    """The tags, attributes and text of a page as a browser's parser would split them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    store, bid = hostile_store(root)
    out = root / "report"
    index = build_report(store, out, bid, n_boot=0)
    return out, index.read_text(encoding="utf-8")


def test_hostile_strings_are_text_not_markup(report):
    out, text = report
    page = Page(text)
    tags = {tag for tag, _ in page.tags}
    assert tags <= TAGS, tags - TAGS
    attributes = {name for _, attrs in page.tags for name in attrs}
    assert attributes <= ATTRIBUTES, attributes - ATTRIBUTES
    assert "<script" not in text.lower() and "<svg" not in text.lower()
    cells = set(page.text)
    for hostile in hostile_texts():
        # each appears whole as the text of one element (a table cell, a heading)
        assert any(hostile in cell for cell in cells), hostile
    # the --set string value, inside the hyperparameters' JSON
    assert hp_json(0) in cells and hp_json(1) in cells


def test_images_are_inlined_and_alt_texts_name_the_workloads(report):
    out, text = report
    images = [attrs for tag, attrs in Page(text).tags if tag == "img"]
    assert len(images) == len(list(out.glob("*.png")))
    assert all(attrs["src"].startswith("data:image/png;base64,") for attrs in images)
    alts = [attrs["alt"] for attrs in images]
    for workload, variant in HOSTILE_WORKLOADS:
        assert f"learning curves of {workload_name(workload, variant)}" in alts


def test_plot_file_names_are_safe_and_distinct(report):
    out, _ = report
    names = sorted(p.name for p in out.glob("*.png"))
    for name in names:
        assert re.fullmatch(r"[a-z]+_[A-Za-z0-9][A-Za-z0-9_-]*\.png", name), name
        assert len(name) <= MAX_SLUG + len(".png"), name
    # distinct even where the file system ignores case ("W" and "w" are two workloads)
    assert len({n.lower() for n in names}) == len(names)
    assert sum(n.startswith("curves_") for n in names) == len(HOSTILE_WORKLOADS)
    assert sum(n.startswith("lr_") for n in names) == len(HOSTILE_WORKLOADS)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("curves_digits_cnn:gelu", "curves_digits_cnn_gelu"),
        ("../../etc/passwd", "etc_passwd"),
        ("v0.5 -", "v0_5"),
        ("curves_\u03bc-w", "curves_w"),
        (".hidden", "hidden"),
        ("<script>", "script"),
        ("\u00e9\u00e9", "plot"),
        ("", "plot"),
        ("x" * 500, "x" * MAX_SLUG),
    ],
)
def test_slug(name, expected):
    assert _slug(name, set()) == expected


def test_slug_repeats_are_numbered_ignoring_case():
    used: set[str] = set()
    assert [_slug(n, used) for n in ("W", "w", "w", "W?")] == ["W", "w_2", "w_3", "W_4"]


def test_long_names_are_cut_in_plots():
    from trainlab.report.plots import MAX_LABEL, label

    assert label("a" * MAX_LABEL) == "a" * MAX_LABEL
    cut = label("b" * (MAX_LABEL + 1))
    assert len(cut) == MAX_LABEL and cut.endswith("\u2026")
    assert label("$" * (MAX_LABEL + 5)).count(r"\$") == MAX_LABEL - 1
