"""The clinical-validation steps every protocol shares (a mixin of :class:`Protocol`)."""

from __future__ import annotations

from typing import Any, ClassVar

from ...errors import ConfigurationError

__all__ = ["ClinicalSteps"]


class ClinicalSteps:
    """Clinical section, checklist and the ClinicalClassifier wrapping of a protocol.

    The options themselves are fields of :class:`Protocol` (so that front ends
    list them); this mixin holds the steps that read them.
    """

    name: str
    calibration: str | None
    operating_point: str | None
    inner_split: float
    conformal_alpha: float | None
    prevalence: float | tuple[float, ...] | None
    random_state: int
    supports_clinical_fit: ClassVar[bool]

    def clinical(self, ev: Any) -> None:
        """Add the "Clinical validation" report section (see :mod:`cxrkit.evaluation.clinical`)."""
        from ..clinical.run import clinical_report

        try:
            ev.result.sections.append(clinical_report(self, ev))
        except Exception as exc:  # the clinical figures must never hide the run's results
            ev.result.warnings.append(
                f"Clinical validation could not run: {type(exc).__name__}: {exc}"
            )

    def checklist(self, ev: Any) -> None:
        """Add the TRIPOD+AI / CLAIM checklist section, answered from the run's facts."""
        from ..clinical.checklist import checklist_section

        try:
            ev.result.sections.append(checklist_section(ev.result))
        except Exception as exc:  # the checklist must never hide the run's results
            ev.result.warnings.append(f"Checklist could not be filled: {type(exc).__name__}: {exc}")

    def check_clinical_options(self) -> None:
        """Refuse clinical options this protocol cannot honour, and malformed ones."""
        from ..clinical import check_threshold_rule

        if self.operating_point is not None:
            check_threshold_rule(self.operating_point)
        if self.calibration not in (None, "sigmoid", "isotonic", "temperature"):
            raise ConfigurationError(
                f"calibration={self.calibration!r} is not known; expected 'sigmoid', "
                "'isotonic', 'temperature' or none."
            )
        if self.conformal_alpha is not None and not 0 < self.conformal_alpha < 1:
            raise ConfigurationError(
                f"conformal_alpha must be in (0, 1); got {self.conformal_alpha!r} (e.g. 0.1)."
            )
        asked = [
            k for k in ("calibration", "operating_point", "conformal_alpha") if getattr(self, k)
        ]
        if asked and not self.supports_clinical_fit:
            raise ConfigurationError(
                f"Protocol {self.name!r} does not fit {', '.join(asked)} on its training data; "
                "use hall2020-cv or external, or leave these options unset (the clinical "
                "section still reports calibration, the 0.5 operating point and subgroups)."
            )

    def wants_clinical_fit(self) -> bool:
        """Whether anything is fitted on an inner split (recalibration, threshold, conformal)."""
        return bool(self.calibration or self.operating_point or self.conformal_alpha)

    def clinical_estimator(self, est: Any) -> Any:
        """``est`` wrapped in a ClinicalClassifier with this run's options."""
        from ..clinical import ClinicalClassifier

        rule = self.operating_point if self.operating_point is not None else 0.5
        return ClinicalClassifier(
            est,
            calibration=self.calibration,
            threshold=rule,
            inner_split=self.inner_split,
            always_split=self.conformal_alpha is not None,
            random_state=self.random_state,
        )

    def prevalences(self) -> tuple[float, ...]:
        """Return the ``prevalence`` option as a tuple of floats."""
        p = self.prevalence
        if p is None:
            return ()
        if isinstance(p, (tuple, list)):
            return tuple(float(v) for v in p)
        return (float(p),)
