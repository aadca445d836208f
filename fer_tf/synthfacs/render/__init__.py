"""SynthFACS rendering, one module per facial region.

:mod:`~fer_tf.synthfacs.render.face` holds :func:`render_face` and the drawing order;
``background`` (background, light and noise), ``head`` (body, outline, hair), ``eyes`` (cheeks,
lids, irises, glasses), ``brows`` (forehead, glabella, brows), ``nose``, ``mouth`` and ``chin``
draw the regions on a shared :class:`~fer_tf.synthfacs.render.canvas.Canvas`.
"""

from __future__ import annotations

from fer_tf.synthfacs.render.face import render_face

__all__ = ["render_face"]
