"""The shared model specs and the initial parameters drawn from them."""

from __future__ import annotations

import numpy as np
import pytest

import crossframe
from crossframe.common.errors import UserError
from crossframe.common.models import MODELS, build_spec


def test_the_five_models_exist():
    assert MODELS == ("softmax", "mlp", "cnn", "lenet", "resnet")


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
    with pytest.raises(UserError, match="choose one of: softmax, mlp, cnn, lenet, resnet"):
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
