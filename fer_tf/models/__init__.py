"""Models: TF-Slim-faithful Inception V4/V2 and VGG16, FaceNet's Inception-ResNet-V1, the seeds'
small CNNs, task heads, TF-Slim checkpoint loading and freezing.

Importing this package does not import TensorFlow: the catalog of models (names, descriptions,
input defaults, normalisation families; :func:`list_models`, :func:`get_model_info`'s facts) is
plain Python, so configs and CLIs check a model name before TensorFlow loads. Building a model,
or touching a name such as :data:`CUSTOM_OBJECTS`, loads TensorFlow and Keras. To load a saved
``.keras`` model, pass ``custom_objects=fer_tf.models.CUSTOM_OBJECTS`` (or build any model first).

Example:
    >>> from fer_tf.models import create_model, get_preprocessing
    >>> model = create_model("inception_v2", include_top=False, pooling="avg")
    >>> prep = get_preprocessing("inception_v2")  # x / 127.5 - 1
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fer_tf.models._registry import (
    ModelInfo,
    create_model,
    get_model_info,
    list_models,
    register_model,
)
from fer_tf.models.catalog import ModelSpec, get_spec
from fer_tf.preprocessing.normalization import PREPROCESSING_FAMILIES, get_normalizer, normalize

if TYPE_CHECKING:
    import tensorflow as tf

    from fer_tf.models.endpoints import get_endpoints, get_endpoints_model, list_endpoints
    from fer_tf.models.freezing import (
        apply_freezing,
        freeze_up_to,
        set_trainable_scopes,
        train_layer_mode,
        unfreeze_last_n,
    )
    from fer_tf.models.heads import HeadSpec, build_classifier
    from fer_tf.models.layers import CUSTOM_OBJECTS
    from fer_tf.models.slim_checkpoint import (
        LoadReport,
        load_keras_vgg16_h5,
        load_slim_checkpoint,
        slim_variable_map,
    )
    from fer_tf.models.weights import WeightsReport, load_weights

__all__ = [
    "ModelInfo",
    "ModelSpec",
    "register_model",
    "create_model",
    "list_models",
    "get_model_info",
    "get_spec",
    "get_preprocessing",
    "get_endpoints",
    "get_endpoints_model",
    "list_endpoints",
    "PREPROCESSING_FAMILIES",
    "normalize",
    "get_normalizer",
    "HeadSpec",
    "build_classifier",
    "LoadReport",
    "load_slim_checkpoint",
    "load_keras_vgg16_h5",
    "slim_variable_map",
    "load_weights",
    "WeightsReport",
    "apply_freezing",
    "train_layer_mode",
    "freeze_up_to",
    "unfreeze_last_n",
    "set_trainable_scopes",
    "CUSTOM_OBJECTS",
]

# Names that need TensorFlow, and the module each comes from (imported on first use).
_LAZY: dict[str, str] = {
    **dict.fromkeys(("get_endpoints", "get_endpoints_model", "list_endpoints"), "endpoints"),
    **dict.fromkeys(
        (
            "apply_freezing",
            "freeze_up_to",
            "set_trainable_scopes",
            "train_layer_mode",
            "unfreeze_last_n",
        ),
        "freezing",
    ),
    **dict.fromkeys(("HeadSpec", "build_classifier"), "heads"),
    "CUSTOM_OBJECTS": "layers",
    **dict.fromkeys(
        ("LoadReport", "load_keras_vgg16_h5", "load_slim_checkpoint", "slim_variable_map"),
        "slim_checkpoint",
    ),
    **dict.fromkeys(("WeightsReport", "load_weights"), "weights"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fer_tf.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"fer_tf.models.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def get_preprocessing(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """Return the input normalisation of a registered model.

    Args:
        name: A registered model name.

    Returns:
        ``fn(images_float_0_255) -> tensor`` (pure TF ops, usable inside ``tf.data``).

    Raises:
        ValueError: If the name is not registered.
    """
    return get_normalizer(get_spec(name).preprocessing)
