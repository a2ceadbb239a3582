"""Combo boxes whose longest entry does not set the dock's width.

A run's name ("#1 composable_cspnet_pan_fcos-20261130-155304 (finished) ★ current model")
made its combo box 500 px wide at least, and the dock that holds it with it: opening
Activation maps pushed the right-hand column across half the canvas. Narrowed, the box
takes the width the layout gives it and shows what fits; its tooltip has the whole name.
"""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QSizePolicy

MIN_CHARS = 16  # the narrowest a narrowed box gets, in characters


def narrow(combo: QComboBox, chars: int = MIN_CHARS) -> QComboBox:
    """Size `combo` from `chars` characters rather than its longest entry; it still grows
    with its layout, and the current entry's full text is its tooltip."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    combo.setSizePolicy(QSizePolicy.Policy.Expanding, combo.sizePolicy().verticalPolicy())
    combo.currentTextChanged.connect(combo.setToolTip)
    return combo
