"""The DTI deep-learning signature (``dti_dls``): a 2D ResNet-34 on 16 tumor slices -> risk.

The seed-4 study (Yan et al. 2021, EBioMedicine 72:103583) crops 4 equally spaced axial slices
inside the tumor's bounding box from each of the FA, MD, AD and RD maps and feeds the 16 crops
of a patient "as a single sample" to a ResNet-34 trained from scratch for overall survival; its
output is the deep-learning signature (DLS). Here the 16 crops are the 16 input channels of
MONAI's 2D ResNet-34 (map-major: FA at the 4 depths, then MD, AD, RD; see
:mod:`mmsurv.dti.slices`). Channels rather than a set of 16 images pooled by the network:
the paper treats the 16 crops as one sample, and channels keep what each crop is (which map,
which depth), which a permutation-invariant set would throw away; the first convolution can
then weigh FA against MD at the same place, the contrast the paper's CAM analysis reads.

Input table ``X``: one row per patient, indexed by patient id; column ``dti`` is the path of
the patient's ``results/dti/slices/{patient}.npy``, a (16, H, W) float32 array (FA unitless,
diffusivities in 10^-3 mm^2/s). All patients' arrays share one shape.

Network: MONAI ``resnet34(spatial_dims=2, n_input_channels=16)`` with its 7x7 stem at stride 1
(MONAI's default; the ImageNet stride of 2 would leave a 2x2 final map for the 64 px crops, too
coarse for class-activation maps) and dropout before a linear layer giving the risk (log
relative hazard). Trained from scratch (seeded init, or ``weights``: a local state dict of the
image subnetwork) with the negative Cox partial log-likelihood (torchsurv, Efron ties),
mini-batches of ``batch_size`` patients, SGD with Nesterov momentum under a OneCycle schedule,
joint in-plane flips, rotation and zoom of all 16 channels; the epoch with the lowest Cox loss
on the validation ("tuning") split is kept (the paper tunes on its tuning cohort). The training
loop, the Breslow baseline and Grad-CAM are the MRI networks' (:mod:`.mri_model`); the paper's
own optimiser settings are in its supplement, which is not available here, so the values are
ours and stated below.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.networks.nets import resnet34
from torch import nn

from mmsurv._torch import load_weights
from mmsurv.models.mri_model import _augmenter, _MRISurvivalModel, _own_params

__all__ = ["DTIDLSModel", "DLSNet", "read_slices", "slice_channel_names", "DTI_MAPS"]

#: The DTI maps of the input, in channel order (4 slices each).
DTI_MAPS = ("fa", "md", "ad", "rd")
#: Grad-CAM target inside the image subnetwork: ResNet-34's last residual stage.
DLS_CAM_LAYER = "layer4"


def read_slices(path: str | os.PathLike[str], patient: str = "") -> np.ndarray:
    """One patient's ``slices/{patient}.npy``: (C, H, W) float32, checked finite."""
    who = f"patient {patient}: " if patient else ""
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise ValueError(f"{who}no DTI slices file in column 'dti' ({path!r})")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{who}DTI slices file {path} not found")
    arr = np.load(path, allow_pickle=False)
    if arr.ndim != 3:
        raise ValueError(f"{who}{path}: expected a (16, H, W) array, got shape {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{who}{path} holds non-finite values")
    return arr


class DLSNet(nn.Module):
    """ResNet-34 (2D) on the stacked slices with a dropout + linear risk head.

    Parameters
    ----------
    in_channels
        Slices stacked as channels (16: 4 maps x 4 depths).
    dropout
        Dropout before the risk layer.
    """

    def __init__(self, in_channels: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.image = resnet34(
            spatial_dims=2, n_input_channels=int(in_channels), num_classes=1, conv1_t_size=7
        )
        self.image.fc = nn.Sequential(nn.Dropout(float(dropout)), nn.Linear(512, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Slices (B, C, H, W) -> log relative hazard (B,)."""
        return self.image(image).squeeze(-1)


class DTIDLSModel(_MRISurvivalModel):
    """The DTI deep-learning signature: ResNet-34 on the 16-slice input (``dti_dls``).

    Parameters (``params`` of an experiment)
    ----------------------------------------
    epochs : int, default 30
        Epochs (the validation loss picks the checkpoint among them).
    batch_size : int, default 16
        Patients per mini-batch.
    lr : float, default 1e-3
        Peak learning rate of the OneCycle schedule.
    momentum : float, default 0.9
        Nesterov momentum of SGD.
    weight_decay : float, default 1e-4
        SGD weight decay.
    dropout : float, default 0.2
        Dropout before the risk layer.
    augment : bool, default True
        Training-time flips, rotation and zoom of all 16 slices together.
    weights : str | None, default None
        Local state dict of the image subnetwork (``DLSNet.image``); None: seeded random
        initialisation (the paper trains from scratch).
    patience : int | None, default None
        Stop after this many epochs without a lower validation loss (None: run all).
    """

    main_head = "image"
    cam_layer = DLS_CAM_LAYER
    input_column = "dti"
    input_what = "DTI slices (.npy)"

    def __init__(
        self,
        *,
        epochs: int = 30,
        batch_size: int = 16,
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        dropout: float = 0.2,
        augment: bool = True,
        weights: str | None = None,
        patience: int | None = None,
        seed: int = 0,
        threads: int = 1,
        device: str = "auto",
    ) -> None:
        super().__init__(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            dropout=dropout,
            channels=DTI_MAPS,
            augment=augment,
            weights=weights,
            patience=patience,
            seed=seed,
            threads=threads,
            device=device,
        )
        self.params = _own_params(locals())

    def _build_net(self, in_channels: int, clinical_dim: int) -> nn.Module:
        return DLSNet(self.input_shape_[0], self.dropout)

    def _outputs(
        self, net: nn.Module, image: torch.Tensor, clinical: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        return {"image": net(image)}

    def _make_augmenter(self) -> Any:
        return _augmenter(self.seed, spatial_dims=2)

    def _load_image_weights(self, image: nn.Module) -> str:
        what = (
            "image subnetwork (mmsurv.models.dti_model.DLSNet.image: MONAI 2D ResNet-34, "
            f"{self.input_shape_[0]} input channels, risk output)"
        )
        return load_weights(image, self.weights, what, self.seed)

    def _read_input(self, path: Any, patient: str) -> np.ndarray:
        return read_slices(path, patient)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        if hasattr(self, "input_shape_"):
            out["channels"] = slice_channel_names(self.input_shape_[0] // len(DTI_MAPS))
        return out


def slice_channel_names(n_slices: int, maps: Sequence[str] = DTI_MAPS) -> list[str]:
    """Channel names of the input, map-major: ``fa@1 .. fa@n, md@1 ..``."""
    return [f"{m}@{k + 1}" for m in maps for k in range(n_slices)]
