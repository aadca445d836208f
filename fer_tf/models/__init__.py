"""Models: TF-Slim-faithful Inception V4/V2 and VGG16, FaceNet's Inception-ResNet-V1, the seeds'
small CNNs, task heads, TF-Slim checkpoint loading and freezing.

Importing this package imports TensorFlow and Keras (``import fer_tf`` alone does not).

Example:
    >>> from fer_tf.models import create_model, get_preprocessing
    >>> model = create_model("inception_v2", include_top=False, pooling="avg")
    >>> prep = get_preprocessing("inception_v2")  # x / 127.5 - 1
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from fer_tf.models import (  # noqa: F401  (registration side effects)
    inception_resnet_v1,
    inception_v2,
    inception_v4,
    small_cnns,
    vgg16,
)
from fer_tf.models._registry import (
    ModelInfo,
    create_model,
    get_model_info,
    list_models,
    register_model,
)
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
from fer_tf.models.preprocessing import PREPROCESSING_FAMILIES, get_normalizer, normalize
from fer_tf.models.slim_checkpoint import (
    LoadReport,
    load_keras_vgg16_h5,
    load_slim_checkpoint,
    slim_variable_map,
)
from fer_tf.models.weights import WeightsReport, load_weights

__all__ = [
    "ModelInfo",
    "register_model",
    "create_model",
    "list_models",
    "get_model_info",
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


def get_preprocessing(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """Return the input normalisation of a registered model.

    Args:
        name: A registered model name.

    Returns:
        ``fn(images_float_0_255) -> tensor`` (pure TF ops, usable inside ``tf.data``).

    Raises:
        ValueError: If the name is not registered.
    """
    return get_normalizer(get_model_info(name).preprocessing)
