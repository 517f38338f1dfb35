"""Field-aware scoring at the trusted linkage unit (issue 13): Fellegi-Sunter match weights
from per-field segment Dice, m and u estimated without labels, a prior from the record
counts, and per-pair waterfalls. One concept per module:

- :mod:`.compare`: per-field similarities (segment Dice, names compared in both orders);
- :mod:`.levels`: comparison levels (and the joint location comparison);
- :mod:`.training`: random and exact-agreement training pairs;
- :mod:`.em`: EM for m (and u) probabilities;
- :mod:`.prior`: the prior from record counts;
- :mod:`.model`: fitting and match weights;
- :mod:`.explain`: why a pair linked (waterfall);
- :mod:`.rescore`: the match flow's step.

See docs/quality.md.
"""

from linkage.tlu.scoring.explain import waterfall, waterfall_text
from linkage.tlu.scoring.model import FieldModel, fit_model, probability
from linkage.tlu.scoring.rescore import CANDIDATE_THRESHOLD, FieldScores, field_layout, score_pairs

__all__ = [
    "CANDIDATE_THRESHOLD",
    "FieldModel",
    "FieldScores",
    "field_layout",
    "fit_model",
    "probability",
    "score_pairs",
    "waterfall",
    "waterfall_text",
]
