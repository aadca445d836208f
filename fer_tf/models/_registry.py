"""Model registry: names to builders; the facts about each model come from the catalog.

The catalog (:mod:`fer_tf.models.catalog`, no TensorFlow) holds each model's
:class:`~fer_tf.models.catalog.ModelSpec`; this module attaches the builders. The architecture
modules register themselves when first needed (:func:`get_model_info`, :func:`create_model`).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from fer_tf.checks import check_choice, did_you_mean
from fer_tf.models import catalog
from fer_tf.models.catalog import ModelSpec
from fer_tf.preprocessing.normalization import PREPROCESSING_FAMILIES

__all__ = ["ModelInfo", "register_model", "create_model", "list_models", "get_model_info"]

# The modules whose import registers the shipped builders.
_ARCHITECTURES = ("inception_resnet_v1", "inception_v2", "inception_v4", "small_cnns", "vgg16")


@dataclass(frozen=True, kw_only=True)
class ModelInfo(ModelSpec):
    """What the registry knows about a model: its :class:`ModelSpec` and its builder.

    Attributes:
        builder: The builder function (``keras.applications``-style keywords, the same for
            every model: ``include_top``, ``weights``, ``input_tensor``, ``input_shape``,
            ``pooling``, ``classes``, ``classifier_activation``, ``dropout``, ``aux_logits``,
            ``weight_decay``, ``name``, plus the model's own).
    """

    builder: Callable[..., Any]


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    input_shape: tuple[int, int, int] | None = None,
    preprocessing: str | None = None,
    classes: int | None = None,
    slim_scope: str | None = None,
    min_input_size: int | None = None,
    description: str = "",
    min_top_input_size: int = 0,
    has_aux_logits: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a model builder under ``name``.

    A shipped model passes only its name: its facts come from the catalog. A model added at
    run time passes them all (they are added to the catalog).

    Args:
        name: Registry name (unique).
        input_shape: Default ``(height, width, channels)``.
        preprocessing: One of :data:`~fer_tf.preprocessing.normalization.PREPROCESSING_FAMILIES`.
        classes: Default number of classes of the builder.
        slim_scope: Top-level slim variable scope.
        min_input_size: Smallest accepted height/width.
        description: One line for :func:`list_models` users (default: the builder's docstring).
        min_top_input_size: Smallest height/width with the classifier top (default: the same).
        has_aux_logits: Whether the builder can add an auxiliary head.

    Returns:
        The decorator, which returns the builder unchanged.

    Raises:
        ValueError: If the name is taken, or the preprocessing family is unknown.
    """
    shipped = input_shape is None
    if name in _REGISTRY or (not shipped and name in catalog.model_names()):
        raise ValueError(f"A model named {name!r} is already registered.")

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        if shipped:
            spec = catalog.get_spec(name)
        else:
            spec = catalog.add_spec(
                ModelSpec(
                    name,
                    input_shape,  # type: ignore[arg-type]
                    preprocessing,  # type: ignore[arg-type]
                    classes,
                    slim_scope or name,
                    min_input_size or 1,
                    description or (builder.__doc__ or "").strip().split("\n")[0],
                    min_top_input_size,
                    has_aux_logits,
                )
            )
        _REGISTRY[name] = ModelInfo(**asdict(spec), builder=builder)
        return builder

    if not shipped:
        # Check the family here, where the caller wrote it, not when the decorator runs.
        check_choice("preprocessing", preprocessing, PREPROCESSING_FAMILIES)
    return decorator


def _load_builders() -> None:
    for module in _ARCHITECTURES:
        importlib.import_module(f"fer_tf.models.{module}")


def list_models() -> list[str]:
    """Return the registered model names, sorted (without importing TensorFlow).

    Returns:
        A list of names usable with :func:`create_model`.
    """
    return catalog.model_names()


def get_model_info(name: str) -> ModelInfo:
    """Return the registry entry of ``name``.

    Args:
        name: A registered model name.

    Returns:
        The :class:`ModelInfo`.

    Raises:
        ValueError: If the name is not registered (with a did-you-mean hint).
    """
    catalog.check_model_name(name)
    if name not in _REGISTRY:
        _load_builders()
    return _REGISTRY[name]


def _accepted_keywords(builder: Callable[..., Any]) -> list[str]:
    params = inspect.signature(builder).parameters.values()
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


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
        TypeError: For a keyword the builder does not accept (the message names the accepted
            ones and the closest match).
    """
    info = get_model_info(name)
    accepted = _accepted_keywords(info.builder)
    for key in kwargs:
        if key not in accepted:
            alias = _ALIASES.get(key)
            hint = f" Did you mean '{alias}'?" if alias else did_you_mean(key, accepted)
            raise TypeError(
                f"create_model({name!r}) got an unknown keyword {key!r}. {name} accepts: "
                f"{', '.join(accepted)}.{hint}"
            )
    return info.builder(**kwargs)


# Keywords users bring from other libraries, and the ones fer_tf's builders use.
_ALIASES = {"num_classes": "classes", "n_classes": "classes", "shape": "input_shape"}
