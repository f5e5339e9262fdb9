"""Multi-task U-Net: output shapes per input format, the CNN baseline, size checks."""

from __future__ import annotations

import pytest
import torch

from mmsurv.models.mtl_nets import DEFAULT_WIDTHS, MTLNet, check_spatial_size

SMALL = (4, 8, 16)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# input format of the paper -> (channels, spatial size, widths, segmentation classes)
FORMATS = {
    "all_whole_brain": (4, (32, 32, 24), (4, 8, 16, 32), 4),
    "all_cropped": (4, (16, 16, 16), SMALL, 4),
    "single_sequence": (1, (16, 16, 8), SMALL, 2),
    "t1ce_t1": (1, (16, 16, 8), SMALL, 2),
}


@pytest.mark.parametrize("scna_dim", [0, 5])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_forward_shapes(fmt, scna_dim):
    channels, size, widths, k = FORMATS[fmt]
    torch.manual_seed(0)
    net = MTLNet(channels, k, widths, scna_dim=scna_dim, scna_hidden=6)
    image = torch.randn(2, channels, *size)
    scna = torch.randn(2, scna_dim) if scna_dim else None
    out = net(image, scna)
    assert out["logit"].shape == (2,)
    assert out["seg"].shape == (2, k, *size)
    assert out["embedding"].shape == (2, widths[-1] + (6 if scna_dim else 0))
    assert net.embedding_dim == out["embedding"].shape[1]
    assert all(torch.isfinite(v).all() for v in out.values())
    # the classifier is linear on the embedding
    torch.testing.assert_close(out["logit"], net.classifier(out["embedding"]).squeeze(-1))
    net.eval()
    assert "seg" not in net(image, scna, decode=False)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_cnn_baseline_is_the_encoder_and_a_linear_layer(fmt):
    channels, size, widths, _ = FORMATS[fmt]
    net = MTLNet(channels, widths=widths, segmentation=False)
    out = net(torch.randn(2, channels, *size))
    assert set(out) == {"logit", "embedding"}
    assert out["embedding"].shape == (2, widths[-1])
    assert net.decoder is None and net.scna_net is None
    assert isinstance(net.classifier, torch.nn.Linear)
    assert {n.split(".")[0] for n, _ in net.named_parameters()} == {"encoder", "classifier"}
    with pytest.raises(ValueError, match="no SCNA input"):
        MTLNet(channels, widths=widths, scna_dim=3, segmentation=False)


def test_default_widths_and_embedding_dim():
    assert DEFAULT_WIDTHS == (8, 16, 32, 64)
    assert MTLNet(4).embedding_dim == 64
    assert MTLNet(4, scna_dim=50).embedding_dim == 64 + 16
    net = MTLNet(1, 2)
    out = net(torch.randn(1, 1, 16, 16, 16))
    assert out["embedding"].shape == (1, 64) and out["seg"].shape == (1, 2, 16, 16, 16)
    assert isinstance(net.last_conv.conv, torch.nn.Conv3d)
    assert net.last_conv.conv.out_channels == 64


def test_segmentation_and_classification_gradients_reach_the_encoder():
    torch.manual_seed(0)
    net = MTLNet(2, 4, SMALL)
    out = net(torch.randn(2, 2, 16, 16, 8))
    out["logit"].sum().backward()
    assert net.encoder.blocks[0].conv1.conv.weight.grad.abs().sum() > 0
    assert net.decoder.out.conv.conv.weight.grad is None  # the logit does not use the decoder
    net.zero_grad()
    net(torch.randn(2, 2, 16, 16, 8))["seg"].sum().backward()
    assert net.decoder.out.conv.conv.weight.grad.abs().sum() > 0
    assert net.classifier.weight.grad is None


def test_size_and_argument_errors():
    net = MTLNet(1, 2, (4, 8, 16, 32))
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.randn(1, 1, 16, 16, 12))
    with pytest.raises(ValueError, match="single voxel"):
        check_spatial_size((8, 8, 8), 4)
    check_spatial_size((16, 16, 8), 4)
    with pytest.raises(ValueError, match="SCNA input of width 3"):
        MTLNet(1, 2, SMALL, scna_dim=3)(torch.randn(1, 1, 8, 8, 8))
    with pytest.raises(ValueError, match="takes no SCNA"):
        MTLNet(1, 2, SMALL)(torch.randn(1, 1, 8, 8, 8), torch.randn(1, 3))
    with pytest.raises(ValueError, match="2 or 4"):
        MTLNet(1, 3)
    with pytest.raises(ValueError, match="norm"):
        MTLNet(1, 2, norm="group")


def test_batch_norm_variant():
    net = MTLNet(1, 2, SMALL, norm="batch")
    assert any(isinstance(m, torch.nn.BatchNorm3d) for m in net.modules())
    assert net(torch.randn(2, 1, 8, 8, 8))["seg"].shape == (2, 2, 8, 8, 8)
