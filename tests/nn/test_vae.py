import pytest
import torch

from skvae.nn import VAE, ConvDecoder, ConvEncoder, make_vae


@pytest.mark.parametrize(
    "image_shape", [(1, 8, 8), (1, 28, 28), (1, 32, 32), (3, 32, 32), (2, 7, 13)]
)
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_conv_decoder_lands_on_input_shape(image_shape, kernel_size):
    encoder = ConvEncoder(image_shape, 4, channels=(4, 8, 8), kernel_size=kernel_size)
    decoder = ConvDecoder(image_shape, 4, channels=(4, 8, 8), kernel_size=kernel_size)
    mu, logvar = encoder(torch.rand(3, *image_shape))
    assert mu.shape == logvar.shape == (3, 4)
    assert decoder(mu).shape == (3, *image_shape)


@pytest.mark.parametrize("input_shape", [(1, 8, 8), (10,)])
def test_vae_forward_shapes(input_shape):
    vae = make_vae(input_shape, 3, hidden_dims=(8, 16))
    output = vae(torch.rand(5, *input_shape))
    assert output.params.shape == (5, *input_shape)
    assert output.mu.shape == output.logvar.shape == (5, 3)
    assert output.logits is None and output.adversarial is None


def test_eval_mode_uses_posterior_mean_and_train_mode_samples():
    vae = make_vae((6,), 2, hidden_dims=(8,))
    x = torch.rand(4, 6)
    vae.eval()
    output = vae(x)
    torch.testing.assert_close(output.params, vae.decode(output.mu))
    torch.testing.assert_close(vae(x).params, output.params)
    vae.train()
    assert not torch.equal(vae(x).params, vae(x).params)


def test_eval_output_of_a_sample_does_not_depend_on_its_batch():
    vae = make_vae((1, 8, 8), 4, hidden_dims=(8, 16)).eval()
    x = torch.rand(16, 1, 8, 8)
    with torch.no_grad():
        together = vae(x).mu
        alone = torch.cat([vae(x[i : i + 8]).mu for i in (0, 8)])
    torch.testing.assert_close(together, alone)


def test_elbo_terms_are_per_sample():
    vae = make_vae((6,), 2, hidden_dims=(8,))
    x = torch.rand(4, 6)
    log_px, kl = vae.elbo_terms(x, vae(x))
    assert log_px.shape == kl.shape == (4,)
    assert torch.all(kl >= 0)


def test_vae_accepts_user_modules():
    encoder = ConvEncoder((1, 8, 8), 2, channels=(4,))
    decoder = ConvDecoder((1, 8, 8), 2, channels=(4,))
    from skvae.nn import BernoulliLikelihood

    vae = VAE(encoder, decoder, BernoulliLikelihood())
    assert vae(torch.rand(2, 1, 8, 8))[0].shape == (2, 1, 8, 8)
