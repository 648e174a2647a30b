"""Analyses of a float model before it is binarized: which groups of modules binarization hurts, per byte it saves
(:mod:`.sensitivity`, ``hf-binarize sensitivity``), and which precision per group reaches a size with the least
damage (:mod:`.allocation`)."""

from .allocation import Option, allocate
from .groups import group_of, module_groups
from .sensitivity import GroupResult, Score, SensitivityReport, Suggestion, analyse, score_config, suggest

__all__ = ["GroupResult", "Option", "Score", "SensitivityReport", "Suggestion", "allocate", "analyse", "group_of",
           "module_groups", "score_config", "suggest"]
