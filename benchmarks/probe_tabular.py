"""Probe (not library code): VAEOutlierDetector settings on breast-cancer data.

The breast-cancer benchmark of ``python -m skvae.benchmark --dataset
breast-cancer --splits 10 --anomaly-share 0.1`` (benign normal, a fresh
half/half split per split, standardised features, malignant rows 10% of each
test set), for a few settings of the MLP VAE: mean ROC-AUC and mean average
precision (x 100) over the ten splits, per score type.

    OMP_NUM_THREADS=1 python benchmarks/probe_tabular.py
"""

import warnings
from types import SimpleNamespace

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from skvae import VAEOutlierDetector
from skvae.benchmark.__main__ import breast_cancer_splits, standardized
from skvae.terms._builtin import COMBINATIONS

PARTS = ("elbo", "latent_knn", "latent_mahalanobis")

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
args = SimpleNamespace(splits=10, random_state=0, anomaly_share=0.1)
configs = {
    "default": {},
    "latent4": {"latent_dim": 4},
    "latent2": {"latent_dim": 2},
    "hidden64": {"hidden_dims": (64, 32)},
    "latent4_h64": {"latent_dim": 4, "hidden_dims": (64, 32)},
    "epochs30": {"max_epochs": 30},
}
res = {k: {} for k in configs}
for _split, _description, Xf, Xe, inl in standardized(breast_cancer_splits(args)):
    for name, p in configs.items():
        # One fit, every score: the standardised parts and their sums.
        det = VAEOutlierDetector(random_state=0, score_type=PARTS, **p).fit(Xf)
        parts = det.score_parts(Xe)
        sums = {"auto": ("elbo", "latent_knn"), **COMBINATIONS}
        scores = {**parts, **{k: sum(parts[n] for n in v) for k, v in sums.items()}}
        for st, s in scores.items():
            res[name].setdefault(st, []).append(
                (roc_auc_score(inl, s), average_precision_score(1 - inl, -s))
            )
for name, r in res.items():
    print(
        name,
        {
            st: (
                round(100 * np.mean([a for a, _ in v]), 2),
                round(100 * np.mean([b for _, b in v]), 1),
            )
            for st, v in r.items()
        },
    )
