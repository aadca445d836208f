"""Model registry: names to builders, default input sizes and preprocessing families."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fer_tf.models.preprocessing import PREPROCESSING_FAMILIES

__all__ = ["ModelInfo", "register_model", "create_model", "list_models", "get_model_info"]


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model.

    Attributes:
        name: Registry name.
        builder: The builder function (``keras.applications``-style signature).
        input_shape: Default ``(height, width, channels)``.
        preprocessing: Preprocessing family (see :data:`PREPROCESSING_FAMILIES`).
        classes: Default number of classes of the builder.
        slim_scope: Top-level slim scope of the model's variables.
        min_input_size: Smallest height/width the backbone accepts.
        description: One line.
        min_top_input_size: Smallest height/width with ``include_top=True`` (VGG16's fc6 is a
            7x7 VALID convolution; Inception V4's aux head needs 17x17 Mixed_6 maps).
    """

    name: str
    builder: Callable[..., Any]
    input_shape: tuple[int, int, int]
    preprocessing: str
    classes: int | None
    slim_scope: str
    min_input_size: int
    description: str
    min_top_input_size: int = 0

    def __post_init__(self) -> None:
        if self.min_top_input_size < self.min_input_size:
            object.__setattr__(self, "min_top_input_size", self.min_input_size)

    @property
    def input_size(self) -> tuple[int, int]:
        """Default ``(height, width)``."""
        return self.input_shape[0], self.input_shape[1]


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    input_shape: tuple[int, int, int],
    preprocessing: str,
    classes: int | None,
    slim_scope: str,
    min_input_size: int,
    description: str = "",
    min_top_input_size: int = 0,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a model builder under ``name``.

    Args:
        name: Registry name (unique).
        input_shape: Default ``(height, width, channels)``.
        preprocessing: One of :data:`PREPROCESSING_FAMILIES`.
        classes: Default number of classes of the builder.
        slim_scope: Top-level slim variable scope.
        min_input_size: Smallest accepted height/width.
        description: One line for :func:`list_models` users.
        min_top_input_size: Smallest height/width with the classifier top (default: the same).

    Returns:
        The decorator, which returns the builder unchanged.

    Raises:
        ValueError: If the name is taken or the preprocessing family is unknown.
    """
    if preprocessing not in PREPROCESSING_FAMILIES:
        raise ValueError(
            f"The 'preprocessing' parameter must be one of {PREPROCESSING_FAMILIES}. "
            f"Got {preprocessing!r} instead."
        )

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"A model named {name!r} is already registered.")
        _REGISTRY[name] = ModelInfo(
            name=name,
            builder=builder,
            input_shape=tuple(input_shape),  # type: ignore[arg-type]
            preprocessing=preprocessing,
            classes=classes,
            slim_scope=slim_scope,
            min_input_size=min_input_size,
            min_top_input_size=min_top_input_size,
            description=description or (builder.__doc__ or "").strip().splitlines()[0],
        )
        return builder

    return decorator


def list_models() -> list[str]:
    """Return the registered model names, sorted.

    Returns:
        A list of names usable with :func:`create_model`.
    """
    return sorted(_REGISTRY)


def get_model_info(name: str) -> ModelInfo:
    """Return the registry entry of ``name``.

    Args:
        name: A registered model name.

    Returns:
        The :class:`ModelInfo`.

    Raises:
        ValueError: If the name is not registered.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"The model name must be one of {tuple(list_models())}. Got {name!r} instead."
        ) from None


def create_model(name: str, **kwargs: Any) -> Any:
    """Build a registered model.

    Args:
        name: A registered model name (see :func:`list_models`).
        **kwargs: Passed to the builder (``include_top``, ``input_shape``, ``pooling``,
            ``classes``, ``weights`` ...).

    Returns:
        A ``keras.Model``.

    Raises:
        ValueError: If the name is not registered or an argument is invalid.
    """
    return get_model_info(name).builder(**kwargs)
