"""Probe (not library code): which score terms lift one-class Fashion-MNIST.

Per class (train on its 6,000 training images, ROC-AUC x 100 on the full test
set, seed 0, one thread): skvae's default VAE (ELBO, latent Mahalanobis, kNN-5
on its standardised posterior means); a separate transformation classifier
(three 3x3 stride-2 convolutions 32/64/128, global average pool, linear to 8:
4 rotations x horizontal flip; 1,500 Adam steps of 64 images, one random
transform each), scored by its mean log-probability of the right transform
over the 8 copies ("head") and by kNN-5 on its pooled features ("head_knn");
and a VAE whose encoder also feeds a transformation head, trained jointly
with weight 1 or 78.4 on the cross-entropy ("j1", "j78.4"). Combinations are
sums of z-scores standardised on the training scores. Writes one JSON line
per class.

    OMP_NUM_THREADS=1 python benchmarks/probe_detection_terms.py
"""

import argparse
import json
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors
from torch import nn
from torch.nn import functional as F

from skvae import VAEOutlierDetector
from skvae.datasets import load_fashion_mnist
from skvae.nn import make_vae
from skvae.scoring import latent_means

torch.set_num_threads(1)


def transforms(x, t):
    """Apply transform t in 0..7 (rotation t % 4, flip t // 4) to a batch."""
    out = torch.rot90(x, int(t % 4), dims=(2, 3))
    return out.flip(-1) if t >= 4 else out


def random_transform(x, generator):
    t = torch.randint(0, 8, (len(x),), generator=generator)
    out = torch.empty_like(x)
    for k in range(8):
        rows = t == k
        if rows.any():
            out[rows] = transforms(x[rows], k)
    return out, t


class TransformNet(nn.Module):
    def __init__(self, n_out=8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 3, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 3, 2, 1),
            nn.LeakyReLU(0.2),
        )
        self.out = nn.Linear(128, n_out)

    def embed(self, x):
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x):
        return self.out(self.embed(x))


def train_transform_net(X, steps, seed):
    torch.manual_seed(seed)
    net = TransformNet()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    g = torch.Generator().manual_seed(seed)
    X = torch.as_tensor(X)
    for _ in range(steps):
        idx = torch.randint(0, len(X), (64,), generator=g)
        xt, t = random_transform(X[idx], g)
        loss = F.cross_entropy(net(xt), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def transform_scores(net, X, embed_fn=None):
    """Mean log p(right transform) over the 8 copies, and the embeddings."""
    X = torch.as_tensor(X)
    logp, emb = [], []
    for start in range(0, len(X), 500):
        x = X[start : start + 500]
        total = 0
        for k in range(8):
            logits = net(transforms(x, k))
            total = total + F.log_softmax(logits, 1)[:, k]
        logp.append(total / 8)
        emb.append(net.embed(x))
    return torch.cat(logp).numpy(), torch.cat(emb).numpy()


class JointVAE(nn.Module):
    """skvae's default VAE plus a transformation head on the encoder features."""

    def __init__(self):
        super().__init__()
        self.vae = make_vae(
            (1, 28, 28), 16, hidden_dims=(32, 64), decoder_var="learned"
        )
        self.head = nn.Sequential(
            nn.Linear(64, 128), nn.LeakyReLU(0.2), nn.Linear(128, 8)
        )

    def features(self, x):
        return self.vae.encoder.features(x).mean(dim=(2, 3))

    def forward(self, x):
        return self.head(self.features(x))


def train_joint(X, steps, seed, weight):
    torch.manual_seed(seed)
    model = JointVAE()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    g = torch.Generator().manual_seed(seed)
    X = torch.as_tensor(X)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(X), (64,), generator=g)
        x = X[idx]
        out = model.vae(x)
        log_px, kl = model.vae.elbo_terms(x, out)
        xt, t = random_transform(x, g)
        ce = F.cross_entropy(model(xt), t)
        loss = -(log_px - kl).mean() + weight * ce
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def joint_scores(model, X):
    X = torch.as_tensor(X)
    elbo, mu = [], []
    for start in range(0, len(X), 500):
        x = X[start : start + 500]
        out = model.vae(x)
        log_px, kl = model.vae.elbo_terms(x, out)
        elbo.append(log_px - kl)
        mu.append(out.mu)
    logp, feats = transform_scores(_JointAsNet(model), X)
    return torch.cat(elbo).numpy(), torch.cat(mu).numpy(), logp, feats


class _JointAsNet:
    def __init__(self, model):
        self.model = model

    def __call__(self, x):
        return self.model(x)

    def embed(self, x):
        return self.model.features(x)


def knn_scores(train, test, k=5):
    """Minus the mean distance to the k nearest standardised training codes."""
    mean, std = train.mean(0), train.std(0) + 1e-8
    train, test = (train - mean) / std, (test - mean) / std
    nn_ = NearestNeighbors(n_neighbors=k + 1).fit(train)
    d_train = nn_.kneighbors(train)[0][:, 1:].mean(1)
    d_test = nn_.kneighbors(test, n_neighbors=k)[0].mean(1)
    return -d_train, -d_test


def z(train, test):
    m, s = train.mean(), train.std() + 1e-12
    return (test - m) / s


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", type=int, nargs="+", default=list(range(10)))
    parser.add_argument(
        "--out", default="benchmarks/results/probe_detection_terms.jsonl"
    )
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--joint-weights", type=float, nargs="*", default=[1.0, 78.4])
    args = parser.parse_args()
    train, test = load_fashion_mnist(subset="train"), load_fashion_mnist(subset="test")
    Xte = (test.images / np.float32(255))[:, None]
    for c in args.classes:
        t0 = time.perf_counter()
        Xtr = (train.images[train.target == c] / np.float32(255))[:, None]
        y = (test.target == c).astype(int)
        parts = {}  # name -> (train scores, test scores)
        # The 0.1 default's VAE (1,500 steps on 6,000 images), alone.
        det = VAEOutlierDetector(
            max_epochs=16, transformations=None, random_state=0
        ).fit(Xtr)
        for st in ["elbo", "latent_mahalanobis"]:
            det.set_params(score_type=st)
            parts[st] = (det.score_samples(Xtr), det.score_samples(Xte))
        kw = {"input_shape": det.input_shape_}
        tr_mu = latent_means(det.net_.module_, Xtr.reshape(len(Xtr), -1), **kw)
        te_mu = latent_means(det.net_.module_, Xte.reshape(len(Xte), -1), **kw)
        parts["knn"] = knn_scores(tr_mu, te_mu)
        t1 = time.perf_counter()
        net = train_transform_net(Xtr, args.steps, 0)
        tr_lp, tr_emb = transform_scores(net, Xtr)
        te_lp, te_emb = transform_scores(net, Xte)
        parts["head"] = (tr_lp, te_lp)
        parts["head_knn"] = knn_scores(tr_emb, te_emb)
        t2 = time.perf_counter()
        seconds = {"vae": t1 - t0, "head": t2 - t1}
        for w in args.joint_weights:
            t3 = time.perf_counter()
            model = train_joint(Xtr, args.steps, 0, w)
            a = joint_scores(model, Xtr)
            b = joint_scores(model, Xte)
            tag = f"j{w:g}"
            parts[f"{tag}_elbo"] = (a[0], b[0])
            parts[f"{tag}_knn"] = knn_scores(a[1], b[1])
            parts[f"{tag}_head"] = (a[2], b[2])
            parts[f"{tag}_fknn"] = knn_scores(a[3], b[3])
            seconds[tag] = time.perf_counter() - t3
        zs = {k: z(*v) for k, v in parts.items()}
        combos = {k: [k] for k in zs}
        combos.update(
            {
                "default": ["elbo", "latent_mahalanobis"],
                "default+knn+head": ["elbo", "latent_mahalanobis", "knn", "head"],
                "elbo+knn+head": ["elbo", "knn", "head"],
                "elbo+knn+head+head_knn": ["elbo", "knn", "head", "head_knn"],
                "elbo+head_knn": ["elbo", "head_knn"],
                "elbo+knn+head_knn": ["elbo", "knn", "head_knn"],
                "default+knn+head+head_knn": [
                    "elbo",
                    "latent_mahalanobis",
                    "knn",
                    "head",
                    "head_knn",
                ],
            }
        )
        for w in args.joint_weights:
            tag = f"j{w:g}"
            combos[f"{tag}:elbo+knn+head"] = [
                f"{tag}_elbo",
                f"{tag}_knn",
                f"{tag}_head",
            ]
            combos[f"{tag}:elbo+knn+head+fknn"] = [
                f"{tag}_elbo",
                f"{tag}_knn",
                f"{tag}_head",
                f"{tag}_fknn",
            ]
            combos[f"{tag}:elbo+head"] = [f"{tag}_elbo", f"{tag}_head"]
        aucs = {
            name: 100 * roc_auc_score(y, sum(zs[p] for p in ps))
            for name, ps in combos.items()
        }
        with open(args.out, "a") as f:
            f.write(json.dumps({"class": c, "auc": aucs, "seconds": seconds}) + "\n")
        print(c, {k: round(v, 2) for k, v in aucs.items()}, seconds, flush=True)


if __name__ == "__main__":
    main()
