"""Where ``crossframe show`` finds each concept in the PyTorch backend.

Plain data, importing nothing: common/show/declarations.py says what the entries mean.
"""

CONCEPTS = {
    "model": {
        "*": ["models:__doc__", "models:build_network", "models:build_layer"],
        "GlobalAvgPool": ["models:GlobalAvgPool"],
        "Residual": ["models:ResidualBlock"],
        "BatchNorm": ["models:__doc__", "classifier:TorchClassifier._train_mode", "classifier:TorchClassifier.get_buffers"],
        "Dropout": ["dropout:__doc__", "dropout:Dropout", "dropout:keep_mask", "dropout:Int64Ops",
                    "classifier:TorchClassifier._set_mask_key"],
    },
    "loss": ["classifier:TorchClassifier.loss"],
    "cross_entropy": ["ops:_cross_entropy", "ops:_log_softmax_scratch", "ops:_row_max", "ops:cross_entropy_grad"],
    "training_step": ["classifier:TorchClassifier._train_step", "classifier:_metrics"],
    "validation_step": ["classifier:TorchClassifier._eval_step", "classifier:_metrics"],
    "configure_optimizers": ["optim:__doc__", "classifier:TorchClassifier.configure_optimizers", "optim:optimizer_for"],
    "accuracy": ["classifier:TorchClassifier.accuracy"],
    "compiled_epoch": (
        "PyTorch runs eagerly, each operation as Python calls it, so there is no program to put a loop "
        "into; the epoch is the shared loop over the step, on batches indexed on the device "
        "(TorchClassifier.device_batches)"
    ),
    "layout": (
        "PyTorch's layout is the canonical one (the exchange format is defined as PyTorch's), so the "
        "parameters go in and out as they are"
    ),
    "backward": (
        "autograd records the forward pass and loss.backward() walks it in reverse, filling each "
        "parameter's .grad (see training_step)"
    ),
}
