"""The widget script stays small, self-contained and safe with customer text."""

from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "src/rapport/web/static/widget.js"
BUDGET_BYTES = 40 * 1024  # unminified; docs/webchat.md reports the current size


def test_widget_stays_within_its_size_budget():
    assert SCRIPT.stat().st_size < BUDGET_BYTES


def test_widget_loads_nothing_else_and_never_injects_customer_html():
    source = SCRIPT.read_text()
    assert "import " not in source and "document.write" not in source
    assert "eval(" not in source
    # The only innerHTML is the constant SVG icon markup.
    assert source.count("innerHTML") == 1
    assert "attachShadow" in source
