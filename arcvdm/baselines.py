"""Published reference figures without predictions: the paper's Table 3 and ConceptARC's per-concept results.

The ConceptARC table is computed from the authors' spreadsheet (victorvikram/ConceptARC @ b22ef52, data.xlsx,
exported as CSV in ../shared/baselines/conceptarc-paper) and embedded here, because users do not have that
folder; `conceptarc_table_from_csv` recomputes it and the tests check both agree.
Corpus tasks only (16 concepts × 10 tasks × 3 test inputs), each test input scored on its own, 3 attempts.
"""

from __future__ import annotations

import csv
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

PUBLISHED = "published, no predictions"


@dataclass(frozen=True)
class Reference:
    """A published figure: `value` is a percentage under `metric`, on `dataset`, from `source`."""

    name: str
    dataset: str
    metric: str
    value: float
    source: str


PAPER_SOURCE = "paper, Table 3 (ARC-AGI-1 evaluation, strict, 2 attempts)"
PAPER_TABLE3 = tuple(
    Reference(name, "arc-agi-1/evaluation", "strict", value, PAPER_SOURCE)
    for name, value in [
        ("OpenAI o1-preview", 21.00),
        ("Claude 3.5 Sonnet", 21.00),
        ("CogVideoX1.5 (paper)", 16.75),
        ("GPT-4o", 9.00),
        ("Gemini 1.5", 8.00),
    ]
)

CONCEPTARC_SOURCE = "ConceptARC data.xlsx (victorvikram/ConceptARC @ b22ef52), per test input, 3 attempts"
# solver → concept → accuracy over that concept's 30 test inputs ("all" = the 480 corpus test inputs).
# Humans: mean of each test input's fraction of participants solving it; machines: fraction CORRECT.
CONCEPTARC_SOLVERS = {
    "human": "Accuracy",
    "Kaggle-2020 1st place": "First Place ARC-Kaggle",
    "Kaggle-2020 2nd place": "Second Place ARC-Kaggle",
    "GPT-4 (T=0)": "GPT-4, Temperature 0",
}
CONCEPTARC_TABLE: dict[str, dict[str, float]] = {
    "human": {
        "AboveBelow": 0.9048, "Center": 0.9426, "CleanUp": 0.9735, "CompleteShape": 0.8513,
        "Copy": 0.936, "Count": 0.8802, "ExtendToBoundary": 0.9338, "ExtractObjects": 0.863,
        "FilledNotFilled": 0.9592, "HorizontalVertical": 0.9106, "InsideOutside": 0.9095, "MoveToBoundary": 0.9101,
        "Order": 0.8283, "SameDifferent": 0.8826, "TopBottom2D": 0.9544, "TopBottom3D": 0.9286,
        "all": 0.9105,
    },
    "Kaggle-2020 1st place": {
        "AboveBelow": 0.7, "Center": 0.5, "CleanUp": 0.5, "CompleteShape": 0.4667,
        "Copy": 0.2333, "Count": 0.6, "ExtendToBoundary": 0.7667, "ExtractObjects": 0.4333,
        "FilledNotFilled": 0.7333, "HorizontalVertical": 0.4333, "InsideOutside": 0.5667, "MoveToBoundary": 0.3667,
        "Order": 0.2667, "SameDifferent": 0.5333, "TopBottom2D": 0.6, "TopBottom3D": 0.6,
        "all": 0.5188,
    },
    "Kaggle-2020 2nd place": {
        "AboveBelow": 0.3333, "Center": 0.2, "CleanUp": 0.2, "CompleteShape": 0.3,
        "Copy": 0.2667, "Count": 0.4, "ExtendToBoundary": 0.4667, "ExtractObjects": 0.4333,
        "FilledNotFilled": 0.4333, "HorizontalVertical": 0.1, "InsideOutside": 0.1, "MoveToBoundary": 0.3,
        "Order": 0.2333, "SameDifferent": 0.1667, "TopBottom2D": 0.5667, "TopBottom3D": 0.0333,
        "all": 0.2833,
    },
    "GPT-4 (T=0)": {
        "AboveBelow": 0.2333, "Center": 0.3333, "CleanUp": 0.2, "CompleteShape": 0.2333,
        "Copy": 0.2333, "Count": 0.1333, "ExtendToBoundary": 0.0667, "ExtractObjects": 0.0333,
        "FilledNotFilled": 0.1667, "HorizontalVertical": 0.2667, "InsideOutside": 0.1, "MoveToBoundary": 0.2,
        "Order": 0.2667, "SameDifferent": 0.1667, "TopBottom2D": 0.2333, "TopBottom3D": 0.2,
        "all": 0.1917,
    },
}


CONCEPTS = (
    "AboveBelow", "Center", "CleanUp", "CompleteShape", "Copy", "Count", "ExtendToBoundary", "ExtractObjects",
    "FilledNotFilled", "HorizontalVertical", "InsideOutside", "MoveToBoundary", "Order", "SameDifferent",
    "TopBottom2D", "TopBottom3D",
)
_CORPUS_FILE = re.compile(rf"({'|'.join(CONCEPTS)})[0-9]+\.json")


def concept_of(task_file: str) -> str | None:
    """'AboveBelow7.json' → 'AboveBelow'. Anything else → None: the Minimal tasks are not in the paper's corpus
    figures, and the sheet has two stray rows with misspelled names ('CountMinimaljson', 'CountMinimall.json')."""
    match = _CORPUS_FILE.fullmatch(task_file)
    return match.group(1) if match else None


def conceptarc_table_from_csv(folder: str | Path) -> dict[str, dict[str, float]]:
    """Recompute CONCEPTARC_TABLE from human_performance.csv and machine_solver_performance.csv."""
    folder = Path(folder)
    scores: dict[str, dict[str, list[float]]] = {solver: {} for solver in CONCEPTARC_SOLVERS}
    for file in ("human_performance.csv", "machine_solver_performance.csv"):
        with open(folder / file, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                concept = concept_of(row["Task File"])
                if concept is None:
                    continue
                for solver, column in CONCEPTARC_SOLVERS.items():
                    if column in row:
                        value = row[column]
                        score = float(value) if solver == "human" else float(value == "CORRECT")
                        for key in (concept, "all"):
                            scores[solver].setdefault(key, []).append(score)
    return {
        solver: {c: round(statistics.fmean(v), 4) for c, v in sorted(by_concept.items())}
        for solver, by_concept in scores.items()
    }


def references_for(dataset: str) -> tuple[list[Reference], dict[str, dict[str, float]]]:
    """Reference rows that apply to `dataset` (a name or path): Table 3 rows and/or the ConceptARC table."""
    key = dataset.lower().replace("\\", "/")
    if "conceptarc" in key:
        return [], CONCEPTARC_TABLE
    if "arc-agi-1" in key and "evaluation" in key:
        return list(PAPER_TABLE3), {}
    return [], {}
