import math
from copy import deepcopy

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


@pytest.mark.parametrize(
    "image_shape, pad_to, padding",
    [((1, 28, 28), (32, 32), (2, 2, 2, 2)), ((2, 7, 13), (9, 16), (1, 2, 1, 1))],
)
def test_pad_to_pads_the_encoder_input_and_crops_the_decoder_output(
    image_shape, pad_to, padding
):
    kwargs = {"channels": (4, 8, 8), "kernel_size": 5, "pad_to": pad_to}
    encoder = ConvEncoder(image_shape, 3, **kwargs)
    decoder = ConvDecoder(image_shape, 3, **kwargs)
    assert encoder.padding == decoder.padding == padding
    # The layers are sized for the padded image: 32 -> 16 -> 8 -> 4.
    assert encoder.mu.in_features == 8 * math.prod(-(-side // 8) for side in pad_to)
    x = torch.rand(2, *image_shape)
    assert decoder(encoder(x)[0]).shape == (2, *image_shape)
    # Padding is zeros: an image and its zero-padded copy encode alike.
    unpadded = ConvEncoder(
        (image_shape[0], *pad_to), 3, channels=(4, 8, 8), kernel_size=5
    )
    unpadded.load_state_dict(encoder.state_dict())
    left, right, top, bottom = padding
    padded_x = torch.nn.functional.pad(x, (left, right, top, bottom))
    torch.testing.assert_close(unpadded(padded_x)[0], encoder(x)[0])


def test_pad_to_smaller_than_the_image_is_an_error():
    with pytest.raises(ValueError, match="smaller than the images"):
        ConvEncoder((1, 28, 28), 3, pad_to=(24, 32))


def test_batch_norm_and_relu_follow_every_hidden_convolution():
    vae = make_vae(
        (1, 32, 32),
        8,
        hidden_dims=(4, 8, 16),
        kernel_size=5,
        batch_norm=True,
        activation="relu",
    )
    modules = list(vae.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in modules) == 3 + 2
    assert not any(isinstance(m, torch.nn.LeakyReLU) for m in modules)
    assert sum(isinstance(m, torch.nn.ReLU) for m in modules) == 3 + 1 + 2
    # The output layer is bare: a Gaussian mean may be any real number.
    assert isinstance(vae.decoder.features[-1], torch.nn.ConvTranspose2d)


def test_batch_norm_in_eval_mode_is_deterministic_and_batch_independent():
    vae = make_vae((1, 8, 8), 4, hidden_dims=(8, 16), batch_norm=True)
    x = torch.rand(16, 1, 8, 8)
    vae.train()
    vae(x * 3)  # moves the running statistics away from their start
    vae.eval()
    with torch.no_grad():
        together = vae(x).params
        alone = torch.cat([vae(x[i : i + 1]).params for i in range(16)])
    torch.testing.assert_close(together, alone)
    with torch.no_grad():
        torch.testing.assert_close(vae(x).params, together)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_shape": (10,), "batch_norm": True}, "convolutional architecture"),
        ({"input_shape": (10,), "pad_to": (4, 4)}, "convolutional architecture"),
        (
            {"input_shape": (1, 8, 8), "architecture": "grad2vae", "batch_norm": True},
            "grad2vae",
        ),
        (
            {
                "input_shape": (1, 8, 8),
                "architecture": "grad2vae",
                "activation": "relu",
            },
            "grad2vae",
        ),
    ],
)
def test_layer_options_outside_their_architectures_are_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_vae(latent_dim=2, hidden_dims=(4, 8), **kwargs)


@pytest.mark.parametrize("n_in, n_out", [(32, 3), (784, 256), (7, 8), (16, 4096)])
def test_dense_rows_do_not_depend_on_their_position(n_in, n_out):
    from skvae.nn._blocks import Dense

    torch.manual_seed(0)
    layer = Dense(n_in, n_out).eval()
    row = torch.randn(1, n_in)
    with torch.no_grad():
        alone = layer(row)[0]
        for n_rows in (2, 3, 4, 8, 32):
            batch = torch.randn(n_rows, n_in)
            for position in range(n_rows):
                placed = batch.clone()
                placed[position] = row[0]
                assert torch.equal(layer(placed)[position], alone)
        reference = torch.nn.functional.linear(row, layer.weight, layer.bias)[0]
    torch.testing.assert_close(alone, reference)


def test_dense_trains_like_linear():
    from skvae.nn._blocks import Dense

    layer = Dense(5, 2).train()
    x = torch.randn(4, 5)
    expected = torch.nn.functional.linear(x, layer.weight, layer.bias)
    assert torch.equal(layer(x), expected)
    assert set(layer.state_dict()) == {"weight", "bias"}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "n_in, n_out, side", [(8, 16, 19), (8, 16, 3), (16, 1, 28), (32, 64, 7)]
)
def test_pointwise_conv_images_do_not_depend_on_how_many_share_the_pass(
    n_in, n_out, side, threads
):
    """On one thread torch convolves 1x1 kernels otherwise below 16 images."""
    from skvae.nn._blocks import PointwiseConv2d

    torch.manual_seed(0)
    layer = PointwiseConv2d(n_in, n_out).eval()
    images = torch.randn(40, n_in, side, side)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            together = layer(images)
            for n_images in (1, 3, 15, 16, 17):
                assert torch.equal(layer(images[:n_images]), together[:n_images])
            order = torch.randperm(40)
            assert torch.equal(layer(images[order]), together[order])
            reference = torch.nn.functional.conv2d(images, layer.weight, layer.bias)
    finally:
        torch.set_num_threads(previous)
    torch.testing.assert_close(together, reference)


def test_pointwise_conv_trains_like_conv2d():
    from skvae.nn._blocks import PointwiseConv2d

    layer = PointwiseConv2d(3, 2).train()
    x = torch.randn(4, 3, 5, 5)
    expected = torch.nn.functional.conv2d(x, layer.weight, layer.bias)
    assert torch.equal(layer(x), expected)
    assert set(layer.state_dict()) == set(torch.nn.Conv2d(3, 2, 1).state_dict())


FUSABLE = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available()
    or not hasattr(torch.ops.mkldnn, "_convolution_pointwise"),
    reason="this PyTorch has no fused oneDNN convolution",
)


@FUSABLE
@pytest.mark.parametrize(
    ("n_in", "n_out", "side", "kernel_size", "activation"),
    [(1, 8, 28, 3, "leaky_relu"), (3, 16, 32, 5, "relu"), (8, 4, 8, 3, "leaky_relu")],
)
def test_fused_conv_block_keeps_the_float32_bits_of_its_two_layers(
    n_in, n_out, side, kernel_size, activation
):
    """One oneDNN call for convolution and activation: no rounding changes."""
    from skvae.nn._blocks import conv_block, run_conv_block

    torch.manual_seed(0)
    block = conv_block(n_in, n_out, kernel_size, activation=activation).eval()
    block = block.to(memory_format=torch.channels_last)
    x = torch.randn(6, n_in, side, side).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fused, unfused = run_conv_block(block, x), block(x)
        # An image's bits do not depend on the other images of its pass.
        for start, stop in [(0, 1), (0, 4), (2, 6), (3, 5)]:
            got = run_conv_block(block, x[start:stop])
            assert torch.equal(got, fused[start:stop])
        in_bfloat16 = block.to(torch.bfloat16)  # not fused: its kernel's bits move
        x16 = x.to(torch.bfloat16)
        assert torch.equal(run_conv_block(in_bfloat16, x16), in_bfloat16(x16))
    assert torch.equal(fused, unfused)


def test_conv_block_runs_unfused_where_it_needs_gradients_or_normalisation():
    from skvae.nn._blocks import conv_block, run_conv_block

    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    block = conv_block(3, 4, 3).eval()
    out = run_conv_block(block, x)  # the weights want gradients: autograd path
    out.sum().backward()
    assert block[0].weight.grad is not None
    normalised = conv_block(3, 4, 3, batch_norm=True).eval()
    with torch.no_grad():
        assert torch.equal(run_conv_block(normalised, x), normalised(x))


def test_conv_block_runs_unfused_under_a_flop_counter():
    """torch's FLOP counter counts the standard convolution, not the fused one."""
    from torch.utils.flop_counter import FlopCounterMode

    from skvae.nn._blocks import conv_block, run_conv_block

    block = conv_block(3, 4, 3).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = run_conv_block(block, x)
    assert counter.get_total_flops() == 2 * 2 * 4 * 3 * 9 * out.shape[2] * out.shape[3]


INFERENCE_KERNELS = pytest.mark.skipif(
    not __import__("skvae.nn._inference", fromlist=["_"])._kernels_available(),
    reason="this PyTorch lacks the kernels InferenceConvolution chooses from",
)


@INFERENCE_KERNELS
@pytest.mark.parametrize(
    ("transposed", "n_in", "n_out", "side", "kernel"),
    [
        (False, 1, 32, 28, "matmul"),  # a grayscale image's first layer
        (False, 32, 64, 14, "onednn"),
        (False, 3, 8, 9, "onednn"),
        (True, 64, 32, 7, "onednn"),
        (True, 32, 1, 14, "matmul"),  # a grayscale decoder's last layer
        (True, 8, 3, 5, "onednn"),
    ],
)
def test_inference_convolution_keeps_an_images_bits_in_any_pass(
    transposed, n_in, n_out, side, kernel
):
    """A lone image, a few or many: the same bits, close to the layer's own.

    On one torch thread, as every scoring pass runs (on two, oneDNN may
    split a lone image's sums between the threads).
    """
    from skvae.nn._inference import InferenceConvolution

    torch.manual_seed(0)
    make = torch.nn.ConvTranspose2d if transposed else torch.nn.Conv2d
    extra = {"output_padding": 1} if transposed else {}
    layer = make(n_in, n_out, 3, stride=2, padding=1, **extra).eval()
    wrapped = InferenceConvolution(deepcopy(layer))
    assert wrapped.kernel == kernel and wrapped.keeps_bits_at_any_pass_size
    assert not wrapped.training  # it follows the layer's mode
    images = torch.rand(40, n_in, side, side)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            together = wrapped(images)
            for start, stop in [(0, 1), (5, 6), (0, 2), (1, 4), (3, 20), (39, 40)]:
                got = wrapped(images[start:stop].clone())
                assert torch.equal(got, together[start:stop]), (start, stop)
            order = torch.randperm(40)
            assert torch.equal(wrapped(images[order]), together[order])
            reference = layer(images)
    finally:
        torch.set_num_threads(previous)
    torch.testing.assert_close(together, reference, rtol=1e-5, atol=1e-6)


def test_inference_convolution_trains_and_differentiates_as_its_layer():
    from skvae.nn._inference import InferenceConvolution

    torch.manual_seed(0)
    layer = torch.nn.Conv2d(1, 4, 3, padding=1)
    wrapped = InferenceConvolution(layer)
    x = torch.randn(3, 1, 6, 6, requires_grad=True)
    assert torch.equal(wrapped(x), layer(x))  # training mode: the layer's forward
    wrapped.eval()
    out = wrapped(x)  # gradients wanted: the layer's own (differentiable) kernels
    out.sum().backward()
    assert x.grad is not None and layer.weight.grad is not None
    # Under a dispatch mode (FLOP counting) it runs the standard convolution.
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        wrapped(x.detach())
    assert counter.get_total_flops() == 2 * 3 * 4 * 36 * 9
    with pytest.raises(TypeError, match="wraps nn.Conv2d or nn.ConvTranspose2d"):
        InferenceConvolution(torch.nn.Linear(2, 2))


@pytest.mark.parametrize(
    "layer",
    [
        torch.nn.Conv2d(1, 4, 3, groups=1, dilation=2),
        torch.nn.Conv2d(4, 4, 3, groups=2),
        torch.nn.Conv2d(4, 4, 3, padding="same"),
        torch.nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"),
    ],
    ids=["dilated-single-channel", "grouped", "same-padding", "reflect-padding"],
)
def test_inference_convolution_leaves_layers_it_cannot_run_as_they_are(layer):
    from skvae.nn._inference import InferenceConvolution

    wrapped = InferenceConvolution(layer).eval()
    assert wrapped.kernel is None and not wrapped.keeps_bits_at_any_pass_size
    x = torch.randn(2, layer.in_channels, 9, 9)
    with torch.inference_mode():
        assert torch.equal(wrapped(x), layer.eval()(x))


@pytest.mark.parametrize(
    "input_shape, architecture",
    [((1, 8, 8), "auto"), ((10,), "auto"), ((1, 8, 8), "grad2vae")],
    ids=["conv", "mlp", "grad2vae"],
)
def test_encode_mean_is_encodes_mean_without_the_log_variance(
    input_shape, architecture
):
    torch.manual_seed(0)
    module = make_vae(
        input_shape, 3, hidden_dims=(4, 8), architecture=architecture
    ).eval()
    x = torch.rand(5, *input_shape)
    calls = []
    logvar_head = getattr(module.encoder, "logvar", None)
    if logvar_head is not None:
        logvar_head.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        mean = module.encode_mean(x)
        expected = module.encode(x)[0]
    assert torch.equal(mean, expected)
    if architecture != "grad2vae":
        assert calls == [1]  # encode's call only: the mean skipped the head


def test_encode_mean_follows_a_subclass_encode():
    class Shifted(VAE):
        def encode(self, x):
            mu, logvar = super().encode(x)
            return mu + 1, logvar

    torch.manual_seed(0)
    plain = make_vae((6,), 2, hidden_dims=(4,)).eval()
    shifted = Shifted(plain.encoder, plain.decoder, plain.likelihood).eval()
    x = torch.rand(3, 6)
    with torch.no_grad():
        assert torch.equal(shifted.encode_mean(x), plain.encode_mean(x) + 1)
