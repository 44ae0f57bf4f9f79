"""fastText student distilled from the GEM teacher (no Dagster imports)."""

from gem_dagster.student.evaluation import DistillationSplit, agreement_rate, split_for_distillation
from gem_dagster.student.model import StudentModel, StudentParams
from gem_dagster.student.normalize import normalize_text

__all__ = [
    "DistillationSplit",
    "StudentModel",
    "StudentParams",
    "agreement_rate",
    "normalize_text",
    "split_for_distillation",
]
