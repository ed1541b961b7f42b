"""Where ``crossframe show`` finds each concept in the NumPy backend.

Plain data, importing nothing: common/show/declarations.py says what the entries mean.
"""

CONCEPTS = {
    "model": {
        "*": ["models:__doc__", "models:build_network", "models:build_layer", "models:Sequential", "layers:Layer"],
        "Conv2d": ["layers:Conv2d"],
        "Linear": ["layers:Linear"],
        "MaxPool2d": ["layers:MaxPool2d", "layers:_windows", "layers:_unwindow"],
        "AvgPool2d": ["layers:AvgPool2d", "layers:_windows", "layers:_unwindow"],
        "ReLU": ["layers:ReLU"],
        "Sigmoid": ["layers:Sigmoid"],
        "Flatten": ["layers:Flatten"],
        "GlobalAvgPool": ["models:GlobalAvgPool"],
        "Residual": ["models:ResidualBlock"],
        "BatchNorm": ["layers:Mode", "layers:BatchNorm", "classifier:NumpyClassifier._arrays"],
        "Dropout": ["layers:Mode", "layers:Dropout"],
    },
    "loss": ["classifier:NumpyClassifier.loss", "layers:softmax_cross_entropy", "layers:_shifted_exp"],
    "cross_entropy": ["ops:__doc__", "ops:cross_entropy", "ops:cross_entropy_grad", "ops:_nll_scratch",
                      "ops:_log_softmax_scratch", "ops:_softmax_scratch"],
    "training_step": ["classifier:__doc__", "classifier:NumpyClassifier._train_step",
                      "classifier:NumpyClassifier._loss_and_gradients", "classifier:_metrics"],
    "validation_step": ["classifier:NumpyClassifier._eval_step", "classifier:_metrics"],
    "configure_optimizers": ["optim:__doc__", "classifier:NumpyClassifier.configure_optimizers",
                             "optim:Optimizer.step"],
    "accuracy": ["classifier:NumpyClassifier.accuracy"],
    "compiled_epoch": (
        "NumPy has no compiler: each operation runs as it is called, vectorised over the batch, so the "
        "epoch is the shared loop over the step"
    ),
    "layout": (
        "the NumPy backend computes in PyTorch's layout, the canonical one (NCHW images, (out, in) "
        "weights, flatten in C, H, W order): its parameters are the exchange format's arrays"
    ),
    "backward": {
        "*": ["layers:__doc__", "classifier:NumpyClassifier._loss_and_gradients", "models:Sequential.backward"],
        "Conv2d": ["layers:Conv2d.backward"],
        "Linear": ["layers:Linear.backward"],
        "MaxPool2d": ["layers:MaxPool2d.backward", "layers:_unwindow"],
        "AvgPool2d": ["layers:AvgPool2d.backward", "layers:_unwindow"],
        "ReLU": ["layers:ReLU.backward"],
        "Sigmoid": ["layers:Sigmoid.backward"],
        "Flatten": ["layers:Flatten.backward"],
        "GlobalAvgPool": ["models:GlobalAvgPool.backward"],
        "Residual": ["models:ResidualBlock.backward"],
        "BatchNorm": ["layers:BatchNorm.backward"],
        "Dropout": ["layers:Dropout.backward"],
    },
}
