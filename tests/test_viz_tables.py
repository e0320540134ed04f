"""The one Markdown table writer (:mod:`wttm_core.viz.tables`) and its mapping-rows form."""

from __future__ import annotations

import pytest

from wttm_core.viz import markdown_records, markdown_table


def test_markdown_records_writes_mapping_rows_through_markdown_table() -> None:
    # the experiments' result rows: floats at .2f, a missing key or None an empty cell
    text = markdown_records([{"a": 1.234, "b": "x"}, {"a": None}], [("a", "A"), ("b", "B")])
    assert text.splitlines() == ["| A | B |", "|---|---|", "| 1.23 | x |", "|  |  |"]
    # the same escaping, bool and number rules as markdown_table
    rows = [{"k": "p|q", "ok": True, "n": 3, "x": 0.5}]
    columns = [("k", "key"), ("ok", "holds"), ("n", "n"), ("x", "x")]
    assert markdown_records(rows, columns, float_format=".1f") == markdown_table(
        ["key", "holds", "n", "x"], [("p|q", True, 3, 0.5)], float_format=".1f"
    )
    assert markdown_records(rows, columns).splitlines()[2] == "| p\\|q | yes | 3 | 0.50 |"
    with pytest.raises(ValueError, match="columns must not be empty"):
        markdown_records(rows, [])
