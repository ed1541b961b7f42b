"""Where ``crossframe show`` finds each concept in the TensorFlow backend.

Plain data, importing nothing: common/show/declarations.py says what the entries mean.
"""

CONCEPTS = {
    "model": {
        "*": ["models:__doc__", "models:Network", "models:build_network", "models:build_layer"],
        "Conv2d": ["models:Conv2d"],
        "Linear": ["models:Dense"],
        "Residual": ["models:ResidualBlock"],
        "BatchNorm": ["models:BatchNorm", "models:call_layer"],
        "Dropout": ["dropout:__doc__", "dropout:Dropout", "dropout:keep_mask", "dropout:UInt32Ops",
                    "classifier:_epoch_graph"],
    },
    "loss": ["classifier:TFClassifier.loss", "classifier:_cross_entropy"],
    "cross_entropy": ["ops:_cross_entropy", "ops:_log_softmax_scratch", "ops:_row_max", "ops:cross_entropy_grad"],
    "training_step": ["classifier:__doc__", "classifier:TFClassifier._train_step", "classifier:TFClassifier._train_concrete",
                      "classifier:TFClassifier._train_graph", "classifier:_metrics"],
    "validation_step": ["classifier:TFClassifier._eval_step", "classifier:TFClassifier._eval_concrete",
                        "classifier:TFClassifier._eval_graph", "classifier:_metrics"],
    "configure_optimizers": ["optim:__doc__", "classifier:TFClassifier.configure_optimizers",
                             "optim:_Optimizer.apply_gradients", "optim:SGD._update", "optim:Adam._begin_step",
                             "optim:Adam._update", "optim:AdamW", "optim:optimizer_for"],
    "accuracy": ["classifier:TFClassifier.accuracy", "classifier:_predictions"],
    "compiled_epoch": ["classifier:XLA_MODELS", "classifier:TFClassifier.train_epoch",
                       "classifier:TFClassifier._run_epoch", "classifier:TFClassifier._epoch_function",
                       "classifier:_epoch_graph"],
    "layout": ["models:Dense.parameters", "models:Conv2d.parameters", "models:to_channels_last",
               "classifier:TFClassifier.get_params", "classifier:TFClassifier.set_params",
               "classifier:TFClassifier._canonical", "classifier:TFClassifier._assign"],
    "backward": (
        "tf.GradientTape records the forward pass and tape.gradient differentiates it; the backward pass "
        "is derived, never written (see training_step)"
    ),
}
