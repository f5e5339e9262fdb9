"""MRI networks: output shapes of the DenseNet, the clinical MLP, the MMNN and the CAM wrapper."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmsurv.models.mri_nets import (
    CAM_LAYER,
    MIN_INPUT_SIZE,
    MMNN,
    ClinicalMLP,
    DenseNetSurv,
    ImageRisk,
    image_subnet,
)

S = 32  # DenseNet-121 needs >= 29 voxels per axis


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_image_subnet_features_and_cam_layer():
    torch.manual_seed(0)
    net = image_subnet(2, 12, dropout=0.2).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 2, S, S, S)).shape == (2, 12)
    assert CAM_LAYER in dict(net.named_modules())


def test_image_subnet_smallest_input():
    net = image_subnet(1, 12).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 1, *(MIN_INPUT_SIZE,) * 3)).shape == (1, 12)
        with pytest.raises(RuntimeError):
            net(torch.randn(1, 1, *(MIN_INPUT_SIZE - 1,) * 3))


def test_clinical_mlp_widths_and_output():
    mlp = ClinicalMLP(7, 12, dropout=0.2)
    widths = [m.out_features for m in mlp.modules() if isinstance(m, nn.Linear)]
    assert widths == [32, 16, 8, 8, 8, 12]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in mlp.modules()) == 6
    assert mlp(torch.randn(4, 7)).shape == (4, 12)
    with pytest.raises(ValueError, match="at least one input"):
        ClinicalMLP(0)


def test_densenet_surv_forward():
    torch.manual_seed(0)
    net = DenseNetSurv(2).train()
    risk = net(torch.randn(2, 2, S, S, S))
    assert risk.shape == (2,)
    risk.sum().backward()
    assert net.head.weight.grad is not None


def test_mmnn_forward_heads():
    torch.manual_seed(0)
    net = MMNN(2, clinical_features=5).train()
    out = net(torch.randn(2, 2, S, S, S), torch.randn(2, 5))
    assert set(out) == {"mm", "image", "clinical"}
    assert all(v.shape == (2,) for v in out.values())
    assert net.mm_head.in_features == 24
    # each auxiliary head sees only its own modality's features
    out["clinical"].sum().backward()
    assert net.clinical_head.weight.grad is not None
    assert all(p.grad is None for p in net.image.parameters())


def test_image_risk_wrapper():
    torch.manual_seed(0)
    mmnn = MMNN(2, clinical_features=3).eval()
    image, clinical = torch.randn(2, 2, S, S, S), torch.randn(2, 3)
    with torch.no_grad():
        wrapped = ImageRisk(mmnn, clinical)(image)
        assert wrapped.shape == (2, 1)
        assert torch.allclose(wrapped[:, 0], mmnn(image, clinical)["mm"])
        assert ImageRisk(DenseNetSurv(2).eval())(image).shape == (2, 1)
    assert ImageRisk.cam_layer in dict(ImageRisk(mmnn, clinical).named_modules())
    with pytest.raises(ValueError, match="clinical"):
        ImageRisk(mmnn)
