"""A model folder's operating point: read, written, and refused when malformed."""

from __future__ import annotations

import json

import pytest

from cxrkit.errors import ConfigurationError
from cxrkit.estimators import (
    OPERATING_POINT_FILENAME,
    read_operating_point,
    write_operating_point,
)


def test_written_point_reads_back_and_the_command_line_wins(tmp_path):
    assert read_operating_point(tmp_path) is None  # no file: decide at 0.5
    write_operating_point(tmp_path, 0.31, "youden")
    assert read_operating_point(tmp_path) == {"threshold": 0.31, "name": "youden"}
    assert read_operating_point(tmp_path, threshold=0.7)["threshold"] == 0.7
    config = {"operating_point": {"threshold": 0.4, "name": "config"}}
    (tmp_path / OPERATING_POINT_FILENAME).unlink()
    assert read_operating_point(tmp_path, config)["name"] == "config"


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "is not valid JSON"),
        (json.dumps({"threshold": 1.5}), r"threshold' in \(0, 1\)"),
        (json.dumps({"threshold": True}), r"threshold' in \(0, 1\)"),
        (json.dumps({"name": "no threshold"}), r"threshold' in \(0, 1\)"),
    ],
)
def test_malformed_files_are_refused_with_the_fix(tmp_path, text, match):
    (tmp_path / OPERATING_POINT_FILENAME).write_text(text)
    with pytest.raises(ConfigurationError, match=match):
        read_operating_point(tmp_path)
    with pytest.raises(ConfigurationError, match="must lie in"):
        write_operating_point(tmp_path, 0.0, "bad")
