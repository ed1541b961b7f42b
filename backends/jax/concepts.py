"""Where ``crossframe show`` finds each concept in the JAX backend.

Plain data, importing nothing: common/show/declarations.py says what the entries mean.
"""

CONCEPTS = {
    "model": {
        "*": ["models:__doc__", "models:Network", "models:build_network", "models:build_layer"],
        "GlobalAvgPool": ["models:global_avg_pool"],
        "Residual": ["models:ResidualBlock"],
        "BatchNorm": ["models:BatchNorm", "models:call_layer", "steps:TrainState", "steps:train_forward",
                      "models:to_flax_buffers", "models:from_flax_buffers"],
        "Dropout": ["dropout:__doc__", "dropout:dropout", "dropout:keep_mask", "dropout:UInt32Ops",
                    "steps:_scan_batches"],
    },
    "loss": ["classifier:JaxClassifier.loss", "steps:cross_entropy", "steps:cross_entropy_per_example"],
    "cross_entropy": ["ops:_cross_entropy", "ops:_log_softmax_scratch", "ops:cross_entropy_grad"],
    "training_step": ["steps:__doc__", "classifier:JaxClassifier._train_step", "steps:train_step", "steps:loss_fn",
                      "steps:metrics"],
    "validation_step": ["classifier:JaxClassifier._eval_step", "steps:eval_step", "steps:loss_fn", "steps:metrics"],
    "configure_optimizers": ["optim:__doc__", "classifier:JaxClassifier.configure_optimizers", "optim:optimizer_for",
                             "optim:_l2"],
    "accuracy": ["classifier:JaxClassifier.accuracy"],
    "compiled_epoch": ["classifier:IM2COL_ON_CPU", "classifier:SCANNED_ON_CPU", "classifier:XLA_OPTIONS_ON_CPU",
                       "models:im2col_conv", "models:max_pool_by_reshape", "classifier:JaxClassifier.train_epoch",
                       "classifier:JaxClassifier.scans_epochs", "steps:_train_epoch", "steps:train_epoch",
                       "steps:epoch_programs", "steps:_scan_batches"],
    "layout": ["models:to_flax_params", "models:from_flax_params", "models:_flax_path"],
    "backward": (
        "jax.value_and_grad transforms loss_fn into a function that returns the gradient too; "
        "the backward pass is derived, never written (see training_step)"
    ),
}
