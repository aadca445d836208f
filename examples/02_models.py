# %% [markdown]
# # 02 · Models: registry, end points, heads, freezing
#
# `fer_tf.models` rebuilds the seeds' networks in Keras 3, faithful to TF-Slim so the published
# ImageNet checkpoints load one-to-one (`docs/models.md`). This notebook uses **tiny sizes** so it
# runs on a CPU in seconds: Inception V2 at a quarter of its width and 64 px, and `tiny_cnn`.
# The same calls work at full size (`create_model("inception_v4")`, 299 px).

# %%
import numpy as np

from fer_tf.models import (
    HeadSpec,
    apply_freezing,
    build_classifier,
    create_model,
    get_endpoints_model,
    get_model_info,
    get_preprocessing,
    list_endpoints,
    list_models,
)
from fer_tf.models.freezing import trainable_summary

# %% [markdown]
# ## The registry
#
# Every model is registered by name with its default input, preprocessing family and slim scope.

# %%
for name in list_models():
    info = get_model_info(name)
    print(
        f"{name:<22} input {str(info.input_shape):<14} {info.preprocessing:<10} {info.description}"
    )

# %% [markdown]
# ## Create a model
#
# Builders have the `keras.applications` signature. `weights` is `None` or a local file (a slim
# checkpoint prefix, `.weights.h5` or `.keras`); nothing is ever downloaded. Outputs are logits.

# %%
model = create_model("inception_v2", input_shape=(64, 64, 3), depth_multiplier=0.25, classes=10)
print(f"{model.name}: {model.count_params():,} parameters")
prep = get_preprocessing("inception_v2")  # images in 0..255 -> x / 127.5 - 1
images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
logits = model(prep(images), training=False)
print("logits:", tuple(logits.shape))

# %% [markdown]
# ## End points
#
# Every model exposes slim's end points by name, for features, diagnostics and freezing.

# %%
names = list_endpoints(model)
print(len(names), "end points:", ", ".join(names[:6]), "...", ", ".join(names[-4:]))
features = get_endpoints_model(model, ["Mixed_3c", "Mixed_4e", "Mixed_5c"])(prep(images))
for k, v in features.items():
    print(f"  {k:<10} {tuple(v.shape)}")

# %% [markdown]
# ## Task heads
#
# `build_classifier` puts one or more task heads on a backbone: sigmoid AU logits, a bounded
# valence/arousal regression, softmax classes. Heads compute in float32 (also under mixed
# precision); a missing label is masked by the loss, never zero-filled.

# %%
multi = build_classifier(
    "inception_v2",
    heads={
        "au": 8,  # sigmoid, 8 AU logits
        "va": HeadSpec("regression", 2, bound="tanh"),  # valence, arousal in (-1, 1)
        "posed": HeadSpec("softmax", 12, dropout=0.3),  # posed/spontaneous x 6 emotions
    },
    input_shape=(64, 64, 3),
    backbone_kwargs={"depth_multiplier": 0.25},
)
outputs = multi(prep(images), training=False)
print({k: tuple(v.shape) for k, v in outputs.items()})

# %% [markdown]
# ## Freezing
#
# Christensen 2018's *train layer mode* (0 = everything trains; higher modes freeze more from the
# bottom), freezing up to an end point, the last N weighted layers (Korber), or slim-style
# trainable scopes. Frozen conv-BN units run BatchNorm in inference mode.

# %%
for mode in range(6):
    apply_freezing(multi, mode=mode)
    s = trainable_summary(multi)
    print(
        f"train layer mode {mode}: {s['trainable_params']:>8,} trainable parameters, "
        f"{len(s['frozen_layers']):>3} frozen layers"
    )
apply_freezing(multi, up_to="Mixed_4e")
print("up to Mixed_4e:", trainable_summary(multi)["trainable_params"], "trainable")
apply_freezing(multi, last_n=3)
print("last 3 layers:", trainable_summary(multi)["trainable_layers"])
apply_freezing(multi)  # everything trains again

# %% [markdown]
# ## The demo's model
#
# `tiny_cnn` (three stride-2 conv-BN units) is what `make demo` trains at 48 px.

# %%
tiny = build_classifier("tiny_cnn", heads={"au": 8}, input_shape=(48, 48, 3))
for layer in tiny.layers:
    print(f"  {layer.name:<8} {type(layer).__name__:<16} {layer.count_params():>6,} parameters")
print(f"tiny_cnn + AU head: {tiny.count_params():,} parameters")
