import pytest
import torch
from torch.nn import functional as F

from skvae.nn import SemiSupervisedLoss, VAEOutput, make_vae
from skvae.nn._semi import pseudo_label_loss, virtual_adversarial_kl


def _out(logits, teacher=None, adversarial=None):
    """A module output holding only what the loss reads besides the ELBO."""
    return VAEOutput(None, None, None, logits, teacher, adversarial)


def _batch():
    torch.manual_seed(0)
    log_px, kl = torch.randn(6), torch.rand(6)
    logits = torch.randn(6, 3, requires_grad=True)
    y = torch.tensor([0, 2, -1, -1, -1, -1])
    # Teacher: rows 2 and 3 confident (class 1 and 0), rows 4 and 5 not.
    teacher = torch.tensor(
        [[0.0, 0, 0], [0, 0, 0], [0, 9, 0], [9, 0, 0], [1, 0, 0], [0, 0, 0.5]]
    )
    return log_px, kl, logits, y, teacher


def test_labeled_cross_entropy_is_scaled_by_weight_and_features():
    log_px, kl, logits, y, _ = _batch()
    loss = SemiSupervisedLoss(classifier_weight=0.5, n_features=10)
    expected = -(log_px - kl).mean() + 0.5 * 10 * F.cross_entropy(logits[:2], y[:2])
    torch.testing.assert_close(loss(log_px, kl, _out(logits), y), expected)


def test_pseudo_labels_count_only_confident_unlabeled_rows():
    log_px, kl, logits, y, teacher = _batch()
    loss = SemiSupervisedLoss(unlabeled_weight=2.0, confidence_threshold=0.9)
    per_row = F.cross_entropy(logits[2:4], torch.tensor([1, 0]), reduction="none")
    # Averaged over all four unlabeled rows; the two unsure ones add zero.
    pseudo = per_row.sum() / 4
    expected = -(log_px - kl).mean() + F.cross_entropy(logits[:2], y[:2]) + 2.0 * pseudo
    torch.testing.assert_close(loss(log_px, kl, _out(logits, teacher), y), expected)


def test_pseudo_label_loss_sends_no_gradient_into_the_teacher():
    logits = torch.randn(4, 3, requires_grad=True)
    teacher = (torch.randn(4, 3) * 10).requires_grad_()
    pseudo_label_loss(logits, teacher, 0.0).backward()
    assert teacher.grad is None
    assert logits.grad is not None and torch.any(logits.grad != 0)


@pytest.mark.parametrize("unlabeled_weight", [0.0, 1.0])
def test_unlabeled_term_off_or_without_teacher_leaves_the_loss(unlabeled_weight):
    log_px, kl, logits, y, teacher = _batch()
    plain = SemiSupervisedLoss()(log_px, kl, _out(logits), y)
    loss = SemiSupervisedLoss(unlabeled_weight=unlabeled_weight)
    teacher_arg = teacher if unlabeled_weight == 0 else None
    torch.testing.assert_close(loss(log_px, kl, _out(logits, teacher_arg), y), plain)


def test_batch_without_labels_uses_only_pseudo_labels():
    log_px, kl, logits, _, teacher = _batch()
    y = torch.full((6,), -1)
    loss = SemiSupervisedLoss(unlabeled_weight=1.0, confidence_threshold=0.9)
    expected = -(log_px - kl).mean() + pseudo_label_loss(logits, teacher, 0.9)
    torch.testing.assert_close(loss(log_px, kl, _out(logits, teacher), y), expected)


def _kl(p_logits, q_logits):
    p = F.softmax(p_logits, dim=1)
    return torch.sum(p * (F.log_softmax(p_logits, 1) - F.log_softmax(q_logits, 1)), 1)


def test_virtual_adversarial_step_follows_the_only_feature_that_matters():
    # A linear classifier that reads feature 0 alone: the most sensitive
    # direction is +-e0, which one power iteration finds exactly.
    torch.manual_seed(0)
    weights = torch.zeros(5, 3)
    weights[0] = torch.tensor([2.0, -1.0, 0.5])
    x = torch.randn(8, 5)
    logits = x @ weights
    kl = virtual_adversarial_kl(lambda v: v @ weights, x, logits, eps=0.5)
    step = torch.zeros(1, 5)
    step[0, 0] = 0.5
    # The sign of the step is the random probe's; either way it is +-e0.
    plus = _kl(logits, (x + step) @ weights)
    minus = _kl(logits, (x - step) @ weights)
    assert torch.all(torch.isclose(kl, plus) | torch.isclose(kl, minus))
    random_step = 0.5 * F.normalize(torch.randn(8, 5), dim=1)
    assert kl.shape == (8,)
    assert torch.all(kl > _kl(logits, (x + random_step) @ weights))


def test_virtual_adversarial_gradient_reaches_the_classifier_not_the_target():
    weights = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    weights.requires_grad_()
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))

    def gradient(target_logits):
        torch.manual_seed(2)  # the same random probe for both calls
        kl = virtual_adversarial_kl(lambda v: v @ weights, x, target_logits, eps=1.0)
        return kl, torch.autograd.grad(kl.sum(), weights)[0]

    kl, through_target = gradient(x @ weights)
    _, constant_target = gradient((x @ weights).detach())
    assert torch.all(kl > 0) and torch.any(through_target != 0)
    torch.testing.assert_close(through_target, constant_target)


def test_adversarial_divergence_adds_its_mean_to_the_classification_term():
    log_px, kl, logits, y, teacher = _batch()
    adversarial = torch.tensor([0.0, 1, 2, 3, 4, 5])
    loss = SemiSupervisedLoss(classifier_weight=0.5, n_features=10)
    expected = loss(log_px, kl, _out(logits, teacher), y) + 0.5 * 10 * 2.5
    torch.testing.assert_close(
        loss(log_px, kl, _out(logits, teacher, adversarial), y), expected
    )


@pytest.mark.parametrize("vat_eps", [0.0, 1.0])
def test_module_returns_the_adversarial_divergence_only_when_training(vat_eps):
    torch.manual_seed(0)
    module = make_vae((1, 8, 8), 2, hidden_dims=(4,), n_classes=3, vat_eps=vat_eps)
    x = torch.rand(5, 1, 8, 8)
    adversarial = module.train()(x).adversarial
    if vat_eps > 0:
        assert adversarial.shape == (5,)
        assert torch.all(adversarial > 0) and adversarial.requires_grad
    else:
        assert adversarial is None
    assert module.eval()(x).adversarial is None
