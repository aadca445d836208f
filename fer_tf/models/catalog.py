"""What fer_tf knows about each model without building it (importable without TensorFlow).

One :class:`ModelSpec` per registered model: name, description, default input shape,
normalisation family, default classes, slim scope and input-size limits. The registry
(:mod:`fer_tf.models._registry`) attaches a builder to each spec, the builders read their input
defaults from it (:func:`fer_tf.models._common.make_input`), and configs and CLIs check model
names against it before TensorFlow loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from fer_tf.checks import check_choice, did_you_mean
from fer_tf.preprocessing.normalization import PREPROCESSING_FAMILIES

__all__ = ["ModelSpec", "add_spec", "get_spec", "model_names", "check_model_name"]


@dataclass(frozen=True)
class ModelSpec:
    """The facts about a model that do not need TensorFlow.

    Attributes:
        name: Registry name.
        input_shape: Default ``(height, width, channels)``.
        preprocessing: Normalisation family (see
            :data:`fer_tf.preprocessing.normalization.PREPROCESSING_FAMILIES`).
        classes: Default number of classes of the builder.
        slim_scope: Top-level slim scope of the model's variables.
        min_input_size: Smallest height/width the backbone accepts.
        description: One line.
        min_top_input_size: Smallest height/width with ``include_top=True`` (VGG16's fc6 is a
            7x7 VALID convolution; Inception V4's aux head needs 17x17 Mixed_6 maps).
        has_aux_logits: Whether the builder can add an auxiliary head (``aux_logits=True``).
    """

    name: str
    input_shape: tuple[int, int, int]
    preprocessing: str
    classes: int | None
    slim_scope: str
    min_input_size: int
    description: str
    min_top_input_size: int = 0
    has_aux_logits: bool = False

    def __post_init__(self) -> None:
        check_choice("preprocessing", self.preprocessing, PREPROCESSING_FAMILIES)
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        if self.min_top_input_size < self.min_input_size:
            object.__setattr__(self, "min_top_input_size", self.min_input_size)

    @property
    def input_size(self) -> tuple[int, int]:
        """Default ``(height, width)``."""
        return self.input_shape[0], self.input_shape[1]


_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "inception_v4",
            (299, 299, 3),
            "inception",
            1001,
            "InceptionV4",
            75,
            "Inception V4 (TF-Slim layout, 1001 classes with background 0)",
            min_top_input_size=107,
            has_aux_logits=True,
        ),
        ModelSpec(
            "inception_v2",
            (224, 224, 3),
            "inception",
            1001,
            "InceptionV2",
            32,
            "Inception V2 / BN-Inception (TF-Slim layout, 1001 classes with background 0)",
        ),
        ModelSpec(
            "vgg16",
            (224, 224, 3),
            "vgg",
            1000,
            "vgg_16",
            32,
            "VGG16 (TF-Slim layout: fc6/fc7/fc8 as convolutions, 1000 classes)",
            min_top_input_size=224,
        ),
        ModelSpec(
            "vgg16_reduced_fc",
            (224, 224, 3),
            "vgg",
            6,
            "vgg_16",
            32,
            "Athanasiadis 2022's VGG16 with a narrower second FC layer (fc7), 6 emotions",
            min_top_input_size=224,
        ),
        ModelSpec(
            "inception_resnet_v1",
            (160, 160, 3),
            "facenet",
            None,
            "InceptionResnetV1",
            75,
            "FaceNet's Inception-ResNet-V1 (160 px, 128/512-d bottleneck)",
        ),
        ModelSpec(
            "shallow_cnn",
            (96, 96, 3),
            "unit",
            2,
            "shallow_cnn",
            9,
            "Christensen 2018's shallow CNN (Table 4.2): 4 convs, 2 pools, 2 FC; 2 or 12 classes",
        ),
        ModelSpec(
            "fer2013_cnn",
            (36, 36, 1),
            "unit",
            7,
            "fer2013_cnn",
            16,
            "Amaya & Dave's FER2013 CNNs (variants 1-3, 36x36 greyscale, 7 classes)",
        ),
        ModelSpec(
            "tiny_cnn",
            (64, 64, 3),
            "inception",
            2,
            "tiny_cnn",
            8,
            "Tiny conv-BN network for fast CPU tests (any input >= 8 px)",
        ),
    )
}


def model_names() -> list[str]:
    """Return the known model names, sorted (shipped ones and any added at run time).

    Returns:
        A list of names usable with :func:`fer_tf.models.create_model`.
    """
    return sorted(_SPECS)


def add_spec(spec: ModelSpec) -> ModelSpec:
    """Add the spec of a model registered at run time (:func:`fer_tf.models.register_model`).

    Args:
        spec: The new spec.

    Returns:
        ``spec``.

    Raises:
        ValueError: If a model of that name is already known.
    """
    if spec.name in _SPECS:
        raise ValueError(f"A model named {spec.name!r} is already registered.")
    _SPECS[spec.name] = spec
    return spec


def check_model_name(
    name: object, *, param: str = "name", error: type[Exception] = ValueError
) -> str:
    """Return ``name`` if a model of that name is known, else raise with a did-you-mean hint.

    Args:
        name: The given model name.
        param: The parameter as the user wrote it (``"model.name"``).
        error: The exception class raised.

    Returns:
        ``name`` unchanged.

    Raises:
        error: For an unknown name (the message lists the known names).
    """
    if isinstance(name, str) and name in _SPECS:
        return name
    names = model_names()
    raise error(
        f"The '{param}' parameter must be a registered model name, one of {names}. "
        f"Got {name!r} instead.{did_you_mean(name, names)}"
    )


def get_spec(name: str) -> ModelSpec:
    """Return the spec of a known model.

    Args:
        name: A model name (see :func:`model_names`).

    Returns:
        The :class:`ModelSpec`.

    Raises:
        ValueError: If the name is unknown (with a did-you-mean hint).
    """
    return _SPECS[check_model_name(name)]
