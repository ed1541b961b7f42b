"""The shared model specs and the initial parameters drawn from them."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import crossframe
from crossframe.common.errors import UserError
from crossframe.common.models import MODELS, build_spec


def test_the_models_exist():
    assert MODELS == ("softmax", "mlp", "cnn", "lenet", "resnet", "mlp-dropout", "lenet-bn", "resnet-bn")


def test_the_first_five_models_start_where_they_always_did():
    """BatchNorm and Dropout changed nothing for the models without them: the same parameters,
    bit for bit (the digest of every name and array for seeds 0 and 3, taken before they came)."""
    digest = hashlib.sha256()
    for model in MODELS[:5]:
        for seed in (0, 3):
            for name, value in crossframe.init_params(model, seed=seed).items():
                digest.update(name.encode())
                digest.update(value.tobytes())
    assert digest.hexdigest() == "ccd5e63ffe9a2d53326b80ef1cffa70dbbb5f903ebb18258980461f058787912"
    assert all(not build_spec(m).buffer_shapes() and not build_spec(m).dropouts() for m in MODELS[:5])


def test_mlp_dropout_follows_d2l():
    spec = build_spec("mlp-dropout")
    weights = [shape for name, shape in spec.param_shapes().items() if name.endswith("weight")]
    assert weights == [(256, 784), (256, 256), (10, 256)]
    assert [(d.p, d.layer) for d in spec.dropouts()] == [(0.5, 1), (0.5, 2)]
    kinds = [type(layer).__name__ for layer in spec.layers]
    assert kinds == ["Flatten", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]


def test_lenet_bn_is_lenet_with_batchnorm_before_each_sigmoid():
    spec, plain = build_spec("lenet-bn"), build_spec("lenet")
    kinds = [type(layer).__name__ for layer in spec.layers]
    assert [k for k in kinds if k != "BatchNorm"] == [type(layer).__name__ for layer in plain.layers]
    assert [kinds[i + 1] for i, k in enumerate(kinds) if k == "BatchNorm"] == ["Sigmoid"] * 4
    assert [(b.num_features, b.dims) for b in spec.batchnorms().values()] == [(6, 2), (16, 2), (120, 1), (84, 1)]
    weights = {n: s for n, s in spec.param_shapes().items() if n.endswith("weight") and not n.startswith("bn")}
    assert weights == {n: s for n, s in plain.param_shapes().items() if n.endswith("weight")}
    assert spec.before_batchnorm() == ("conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight")  # no biases


def test_resnet_bn_normalises_after_every_convolution_but_the_projections():
    spec = build_spec("resnet-bn")
    assert list(spec.batchnorms()) == ["stem_bn", "block1.bn1", "block1.bn2", "block2.bn1", "block2.bn2",
                                       "block3.bn1", "block3.bn2"]
    assert "block2.proj.bias" in spec.param_shapes() and "block2.conv1.bias" not in spec.param_shapes()
    assert len(spec.buffer_shapes()) == 3 * 7


@pytest.mark.parametrize("model", ["lenet-bn", "resnet-bn"])
def test_batchnorm_starts_as_pytorch_starts_it(model):
    params, spec = crossframe.init_params(model, seed=1), build_spec(model)
    for name in spec.batchnorms():
        np.testing.assert_array_equal(params[f"{name}.weight"], 1)
        np.testing.assert_array_equal(params[f"{name}.bias"], 0)
    from crossframe.common.batchnorm import initial_buffers

    buffers = initial_buffers(spec)
    assert all(buffers[f"{n}.running_var"].dtype == np.float32 and (buffers[f"{n}.running_var"] == 1).all() and
               (buffers[f"{n}.running_mean"] == 0).all() and buffers[f"{n}.num_batches_tracked"].dtype == np.int64
               for n in spec.batchnorms())


def test_mlp_is_the_classic_tutorial_network():
    shapes = build_spec("mlp").param_shapes()
    weights = [shape for name, shape in shapes.items() if name.endswith("weight")]
    assert weights == [(512, 784), (256, 512), (128, 256), (64, 128), (10, 64)]


def test_cnn_layout_is_canonical_pytorch_layout():
    shapes = build_spec("cnn").param_shapes()
    assert shapes == {
        "conv1.weight": (10, 1, 5, 5), "conv1.bias": (10,),
        "conv2.weight": (20, 10, 5, 5), "conv2.bias": (20,),
        "fc.weight": (10, 320), "fc.bias": (10,),
    }  # fmt: skip


def test_lenet_follows_d2l():
    shapes = build_spec("lenet").param_shapes()
    assert shapes["conv1.weight"] == (6, 1, 5, 5)
    assert shapes["conv2.weight"] == (16, 6, 5, 5)
    assert shapes["fc1.weight"] == (120, 400)
    assert shapes["fc3.weight"] == (10, 84)


def test_resnet_has_projection_shortcuts_where_the_shape_changes():
    shapes = build_spec("resnet").param_shapes()
    assert "block1.proj.weight" not in shapes
    assert shapes["block2.proj.weight"] == (32, 16, 1, 1)
    assert shapes["block3.conv1.weight"] == (64, 32, 3, 3)
    assert shapes["fc.weight"] == (10, 64)


@pytest.mark.parametrize("model", MODELS)
def test_shapes_follow_input_shape_and_num_classes(model):
    shapes = build_spec(model, input_shape=(3, 32, 32), num_classes=7).param_shapes()
    last_weight = [s for n, s in shapes.items() if n.endswith("weight")][-1]
    assert last_weight[0] == 7
    first_weight = next(iter(shapes.values()))
    assert first_weight[1] in (3, 3 * 32 * 32)


def test_a_too_small_input_is_a_clear_error():
    with pytest.raises(UserError, match=r"model 'cnn' cannot take inputs of shape \(1, 8, 8\)"):
        build_spec("cnn", input_shape=(1, 8, 8))


def test_unknown_model_lists_the_choices():
    with pytest.raises(UserError, match="choose one of: softmax, mlp, cnn, lenet, resnet, mlp-dropout, lenet-bn, resnet-bn"):
        build_spec("vgg")


@pytest.mark.parametrize("model", MODELS)
def test_init_params_are_deterministic_float32_canonical(model):
    a = crossframe.init_params(model, seed=3)
    b = crossframe.init_params(model, seed=3)
    c = crossframe.init_params(model, seed=4)
    assert list(a) == list(build_spec(model).param_shapes())
    for name, value in a.items():
        assert value.dtype == np.float32
        assert value.shape == build_spec(model).param_shapes()[name]
        np.testing.assert_array_equal(value, b[name])
    assert any(not np.array_equal(a[n], c[n]) for n in a)


def test_init_params_follow_pytorch_default_bounds():
    params = crossframe.init_params("cnn", seed=0)
    for name, fan_in in build_spec("cnn").fan_in().items():
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(params[name]).max() <= bound
        # a uniform draw fills its interval: the largest of many draws is near the bound
        if params[name].size > 100:
            assert np.abs(params[name]).max() > 0.95 * bound
    assert build_spec("cnn").fan_in()["conv2.weight"] == 10 * 5 * 5
