import torch
from torch import nn

from edgefit.trace import measure


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        return x + torch.relu(self.bn(self.a(x)))


def test_chain_peak_and_macs():
    m = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    s = measure(m, 8)
    # conv1 holds its input (3*64) and output (4*64); relu runs in place; conv2 needs 4*64 + 2*64
    assert s.peak_act_elems == 7 * 64
    assert s.macs == 64 * (3 * 4 + 4 * 2)
    assert s.params == 3 * 4 + 4 + 4 * 2 + 2
    assert (s.weight_elems, s.out_channels, s.weighted_layers) == (20, 6, 2)


def test_residual_branch_stays_alive():
    s = measure(Residual(), 8)
    # during the add: x (kept for the shortcut), the branch output and the sum, 3*64 each
    assert s.peak_act_elems == 3 * 3 * 64


def test_meta_device_measurement_matches_cpu():
    m_cpu = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU6(), nn.Flatten(),
                          nn.Linear(8 * 7 * 7, 5))
    with torch.device("meta"):
        m_meta = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU6(), nn.Flatten(),
                               nn.Linear(8 * 7 * 7, 5))
    assert measure(m_cpu, 16) == measure(m_meta, 16)
