"""Networks of the MRI survival models: a 3D DenseNet-121 and the multimodal MMNN.

The architecture follows the sarcoma MMNN paper (a multimodal neural network with gradient
blending, Fig. 4): a 2-channel (T1 post-contrast + T2) 3D DenseNet-121 image subnetwork giving
12 features, a clinical subnetwork of linear layers (32-16-8-8-8 outputs, then 12 features, each
followed by batch normalisation, ReLU and dropout), the two feature vectors concatenated (24)
and a fully connected layer giving the risk. During training the MMNN also has one linear head
per modality on that modality's 12 features (the "dashed" connections of the paper's figure),
whose Cox losses gradient blending weighs against the multimodal one.

MONAI's ``DenseNet121`` halves the resolution five times (stem convolution, max pooling and
three transitions), so every spatial axis of the input needs at least 29 voxels (a 64^3 input
leaves a 2^3 final feature map).
"""

from __future__ import annotations

import torch
from monai.networks.nets import DenseNet121
from torch import nn

__all__ = [
    "image_subnet",
    "ClinicalMLP",
    "DenseNetSurv",
    "MMNN",
    "ImageRisk",
    "CAM_LAYER",
    "MIN_INPUT_SIZE",
    "HEADS",
]

#: Name, inside :func:`image_subnet`, of the last convolutional feature map's activation
#: (ReLU after ``features.norm5``): the Grad-CAM target layer.
CAM_LAYER = "class_layers.relu"
#: Smallest number of voxels per spatial axis DenseNet-121 accepts (29 -> 15 -> 8 -> 4 -> 2 -> 1).
MIN_INPUT_SIZE = 29
#: Output heads of :class:`MMNN`, in the order of :meth:`MMNN.forward`'s dict.
HEADS = ("mm", "image", "clinical")
#: Output widths of the clinical subnetwork's hidden linear layers (the published MMNN).
CLINICAL_WIDTHS = (32, 16, 8, 8, 8)


def image_subnet(in_channels: int, out_features: int = 12, dropout: float = 0.2) -> nn.Module:
    """The image subnetwork: MONAI's 3D DenseNet-121 with ``out_features`` outputs.

    Parameters
    ----------
    in_channels
        MRI channels C stacked on the channel axis (the paper: 2, T1 post-contrast and T2).
    out_features
        Width of the final linear layer (the paper: 12 image features).
    dropout
        Dropout probability inside the dense layers (MONAI's ``dropout_prob``).

    Returns
    -------
    torch.nn.Module
        Maps (B, C, D, H, W) float, every spatial size >= 29, to (B, out_features).
    """
    return DenseNet121(
        spatial_dims=3,
        in_channels=int(in_channels),
        out_channels=int(out_features),
        dropout_prob=float(dropout),
    )


class ClinicalMLP(nn.Module):
    """The MMNN's clinical subnetwork.

    Linear layers with 32, 16, 8, 8, 8 and then ``out_features`` outputs; each followed by
    ``BatchNorm1d``, ReLU and dropout.

    Parameters
    ----------
    in_features
        Width F of the preprocessed clinical vector (numeric z-scores and one-hot levels).
    out_features
        Clinical features given to the fusion (the paper: 12).
    dropout
        Dropout probability after every layer.
    """

    def __init__(self, in_features: int, out_features: int = 12, dropout: float = 0.2) -> None:
        super().__init__()
        if in_features < 1:
            raise ValueError(f"the clinical subnetwork needs at least one input, got {in_features}")
        layers: list[nn.Module] = []
        width = int(in_features)
        for out in (*CLINICAL_WIDTHS, int(out_features)):
            layers += [nn.Linear(width, out), nn.BatchNorm1d(out), nn.ReLU(), nn.Dropout(dropout)]
            width = out
        self.layers = nn.Sequential(*layers)
        self.out_features = int(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clinical vectors (B, F) -> features (B, out_features); B >= 2 in training mode."""
        return self.layers(x)


class DenseNetSurv(nn.Module):
    """The unimodal DenseNet: :func:`image_subnet` (12 features) and a linear risk head.

    Equivalent to the MMNN's image subnetwork with its auxiliary image head.

    Parameters
    ----------
    in_channels
        MRI channels C.
    features
        Image features before the risk head.
    dropout
        Dropout inside the DenseNet.
    """

    def __init__(self, in_channels: int, features: int = 12, dropout: float = 0.2) -> None:
        super().__init__()
        self.image = image_subnet(in_channels, features, dropout)
        self.head = nn.Linear(features, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Volumes (B, C, D, H, W) -> log relative hazard (B,)."""
        return self.head(self.image(image)).squeeze(-1)


class MMNN(nn.Module):
    """The multimodal network: image and clinical subnetworks, concatenation, risk head.

    Parameters
    ----------
    in_channels
        MRI channels C.
    clinical_features
        Width F of the preprocessed clinical vector.
    features
        Features per modality (the paper: 12 each, 24 concatenated).
    dropout
        Dropout of both subnetworks.
    """

    def __init__(
        self, in_channels: int, clinical_features: int, features: int = 12, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.image = image_subnet(in_channels, features, dropout)
        self.clinical = ClinicalMLP(clinical_features, features, dropout)
        self.mm_head = nn.Linear(2 * features, 1)
        # auxiliary heads, used only in training (gradient blending)
        self.image_head = nn.Linear(features, 1)
        self.clinical_head = nn.Linear(features, 1)

    def forward(self, image: torch.Tensor, clinical: torch.Tensor) -> dict[str, torch.Tensor]:
        """Risks of the three heads.

        Parameters
        ----------
        image
            Volumes, shape (B, C, D, H, W).
        clinical
            Preprocessed clinical vectors, shape (B, F).

        Returns
        -------
        dict
            ``mm`` (the model's prediction), ``image`` and ``clinical`` (auxiliary heads): log
            relative hazards, each of shape (B,).
        """
        f_img = self.image(image)
        f_cli = self.clinical(clinical)
        return {
            "mm": self.mm_head(torch.cat([f_img, f_cli], dim=1)).squeeze(-1),
            "image": self.image_head(f_img).squeeze(-1),
            "clinical": self.clinical_head(f_cli).squeeze(-1),
        }


class ImageRisk(nn.Module):
    """Risk as a function of the image only, for Grad-CAM (MONAI calls ``net(x)``).

    Parameters
    ----------
    net
        A :class:`DenseNetSurv` or an :class:`MMNN`.
    clinical
        For an MMNN: the preprocessed clinical vectors (B, F) of the patients whose volumes
        will be passed, held fixed; None for a DenseNetSurv.
    """

    #: Grad-CAM target layer name inside this wrapper.
    cam_layer = f"net.image.{CAM_LAYER}"

    def __init__(self, net: nn.Module, clinical: torch.Tensor | None = None) -> None:
        super().__init__()
        if isinstance(net, MMNN) and clinical is None:
            raise ValueError("an MMNN needs the patients' clinical vectors")
        self.net = net
        self.clinical = clinical

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Volumes (B, C, D, H, W) -> risk (B, 1) (the MMNN's multimodal head)."""
        if isinstance(self.net, MMNN):
            assert self.clinical is not None
            return self.net(image, self.clinical)["mm"].unsqueeze(1)
        return self.net(image).unsqueeze(1)
