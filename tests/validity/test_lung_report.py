"""The protocols' lung step: skip section, switch-off and the overlay section."""

from types import SimpleNamespace

import numpy as np

from cxrkit.evaluation.results import ReportSection
from cxrkit.segmentation import LungSegmenter, synthetic_lung_images
from cxrkit.validity._lung_report import lung_guard_jobs, lung_overlay_section


def _ev():
    return SimpleNamespace(
        result=SimpleNamespace(sections=[], warnings=[], y_true=[]),
        explain_model=None,
        explain_X=None,
    )


def test_no_segmenter_adds_info_section(monkeypatch):
    monkeypatch.delenv("CXRKIT_LUNG_SEGMENTER", raising=False)
    ev = _ev()
    proto = SimpleNamespace(lung_guards=True, lung_segmenter=None, n_jobs=None)
    assert lung_guard_jobs(proto, ev, None, None, None, None, 2, None) == []
    (sec,) = ev.result.sections
    assert isinstance(sec, ReportSection) and "cxrkit train-lungs" in sec.html
    assert sec.data["status"] == "skipped"


def test_switched_off_adds_nothing():
    ev = _ev()
    proto = SimpleNamespace(lung_guards=False, lung_segmenter="/nonexistent", n_jobs=None)
    assert lung_guard_jobs(proto, ev, None, None, None, None, 2, None) == []
    assert ev.result.sections == []


def test_overlay_section_png():
    data = synthetic_lung_images(n=6, size=32, random_state=0)
    X, masks = data[0], data[1]
    seg = LungSegmenter(max_epochs=1, input_size=32, random_state=0).fit(X, masks)
    sec = lung_overlay_section(seg, np.asarray(X), n=4)
    png = sec.figures["lung-masks-overlays.png"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(sec.data["examples"]) == 4
