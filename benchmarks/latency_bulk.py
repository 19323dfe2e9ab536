"""Bulk scoring cost of the scoring block size, against the 0.2 code.

``score_samples`` of 4,000 Fashion-MNIST images (random ones without the
data set) by the default detector, per image, best of 3 alternating
repeats, for blocks of 4 (the default) and 16, with the transformation
classifier's 8 copies classified in one pass (now) or one by one (0.2, with
blocks of 256). One epoch of training: weights do not change the timing.

    OMP_NUM_THREADS=1 python benchmarks/latency_bulk.py
"""

import time

import torch
from latency import images
from torch.nn import functional as F

from skvae import VAEOutlierDetector
from skvae.nn import _transformations
from skvae.scoring import _batches as batches

BATCHED_COPIES = _transformations.TransformationClassifier.score_copies


def copies_one_by_one(self, x):
    """TransformationClassifier.score_copies as skvae 0.2 had it."""
    n = self.n_transformations
    log_prob, features = torch.zeros(len(x), device=x.device), 0
    for index in range(n):
        embedded = self.embed(_transformations.transform_images(x, index, n))
        log_prob = log_prob + F.log_softmax(self.out(embedded), dim=1)[:, index]
        features = features + embedded
    return log_prob / n, features / n


SETTINGS = {
    "0.2: blocks of 256, copies one by one": (256, copies_one_by_one),
    "blocks of 4, copies in one pass (default)": (4, BATCHED_COPIES),
    "blocks of 16, copies in one pass": (16, BATCHED_COPIES),
    "blocks of 4, copies one by one": (4, copies_one_by_one),
}


def main():
    torch.set_num_threads(1)
    X = images()
    detector = VAEOutlierDetector(max_epochs=1, random_state=0).fit(X)
    bulk = X[:4000]
    default_rows = batches.CPU_IMAGE_BLOCK_ROWS
    best = {}
    for _ in range(3):
        for name, (rows, copies) in SETTINGS.items():
            _transformations.TransformationClassifier.score_copies = copies
            batches.CPU_IMAGE_BLOCK_ROWS = rows
            start = time.perf_counter()
            detector.score_samples(bulk)
            seconds = time.perf_counter() - start
            best[name] = min(best.get(name, seconds), seconds)
    _transformations.TransformationClassifier.score_copies = BATCHED_COPIES
    batches.CPU_IMAGE_BLOCK_ROWS = default_rows
    for name, seconds in best.items():
        print(f"{name:45s} {1e3 * seconds / len(bulk):.3f} ms per image")


if __name__ == "__main__":
    main()
