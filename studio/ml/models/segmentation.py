"""Semantic segmentation behind the detection models' list API, and a small UNet."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

IGNORE_INDEX = 255
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class SemanticSegmenter(nn.Module):
    """Wraps a network mapping [N,3,S,S] to {"out": [N,C,S,S] logits (, "aux": same)} so it takes
    and returns lists like torchvision's detectors.

    Input: list of float [3,H,W] images in [0,1], any sizes; each is resized to size x size and
    ImageNet-normalised. C = num_classes + 1 (index 0 is background).
    Train: `model(images, targets)`, targets[i]["sem_mask"] an int64 [H,W] with 0 = background,
    1..num_classes, 255 = ignore -> {"loss_ce": scalar (, "loss_aux": scalar already weighted)},
    cross-entropy over labelled pixels at size x size (masks resized nearest-neighbour).
    Eval: `model(images)` -> [{"sem_seg": int64 [H,W] argmax, "sem_logits": float [C,H,W]}] at each
    input's own size.
    """

    def __init__(self, net: nn.Module, num_classes: int, size: int, aux_weight: float = 0.5):
        super().__init__()
        self.net = net
        self.num_classes = num_classes
        self.size = size
        # 0.5 is the weight of torchvision's segmentation reference recipe.
        self.aux_weight = aux_weight
        self.register_buffer(
            "image_mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "image_std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False
        )

    def _batch(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        resized = [
            F.interpolate(
                img[None], size=(self.size, self.size), mode="bilinear", align_corners=False
            )
            for img in images
        ]
        return (torch.cat(resized) - self.image_mean) / self.image_std

    def _loss(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, masks, ignore_index=IGNORE_INDEX, reduction="sum")
        # Mean over labelled pixels; a batch with none gives 0 rather than NaN.
        return loss / (masks != IGNORE_INDEX).sum().clamp(min=1)

    def forward(
        self,
        images: Sequence[torch.Tensor],
        targets: Sequence[dict[str, torch.Tensor]] | None = None,
    ) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        if self.training and targets is None:
            raise ValueError("targets are required in training mode")
        out = self.net(self._batch(images))
        if self.training:
            assert targets is not None
            masks = torch.cat(
                [
                    F.interpolate(
                        t["sem_mask"][None, None].float(),
                        size=(self.size, self.size),
                        mode="nearest",
                    )
                    for t in targets
                ]
            )[:, 0].long()
            losses = {"loss_ce": self._loss(out["out"], masks)}
            if out.get("aux") is not None:
                losses["loss_aux"] = self.aux_weight * self._loss(out["aux"], masks)
            return losses
        results = []
        for img, logits in zip(images, out["out"], strict=True):
            logits = F.interpolate(
                logits[None], size=img.shape[-2:], mode="bilinear", align_corners=False
            )[0]
            results.append({"sem_seg": logits.argmax(0), "sem_logits": logits})
        return results


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        Conv2dNormActivation(c_in, c_out, 3), Conv2dNormActivation(c_out, c_out, 3)
    )


class UNet(nn.Module):
    """A plain UNet with 4 levels at strides 1, 2, 4, 8 (widths base x 1, 2, 4, 8): two
    conv-BN-ReLU per level, max-pool down, bilinear up.

    [N,3,H,W] -> {"out": [N,num_outputs,H,W] logits}; any H, W.
    """

    def __init__(self, num_outputs: int, base_channels: int = 16, levels: int = 4):
        super().__init__()
        widths = [base_channels * 2**i for i in range(levels)]
        self.encoder = nn.ModuleList(
            _double_conv(c_in, c_out) for c_in, c_out in zip([3, *widths[:-1]], widths, strict=True)
        )
        # Decoder block i merges the upsampled deeper level with the skip of width widths[i].
        self.decoder = nn.ModuleList(
            _double_conv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(levels - 1))
        )
        self.head = nn.Conv2d(widths[0], num_outputs, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        skips = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in self.decoder:
            skip = skips.pop()
            up = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat((up, skip), dim=1))
        return {"out": self.head(x)}
