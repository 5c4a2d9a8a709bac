"""Latitude weights, masked latitude-weighted MSE and the orthogonality penalty."""

import numpy as np
import pytest
import torch

from faconvlstm.losses import latitude_weights, orthogonality_penalty, weighted_mse


def _weatherbench2_weights(lat_deg: np.ndarray) -> np.ndarray:
    """WeatherBench2 ``get_lat_weights`` for an increasing global grid (edges at ±90°)."""
    lat = np.deg2rad(lat_deg)
    bounds = np.concatenate([[-np.pi / 2], (lat[:-1] + lat[1:]) / 2, [np.pi / 2]])
    w = np.sin(bounds[1:]) - np.sin(bounds[:-1])
    return w / w.mean()


@pytest.mark.parametrize(
    "lat",
    [
        np.linspace(-90, 90, 73),  # 2.5° with poles (ERA5 style)
        -90 + (np.arange(32) + 0.5) * 180 / 32,  # 5.625° equiangular without poles
    ],
)
def test_latitude_weights_match_weatherbench2_on_global_grids(lat):
    w = latitude_weights(lat)
    assert w.shape == (len(lat),) and w.dtype == torch.float32
    np.testing.assert_allclose(w.numpy(), _weatherbench2_weights(lat), rtol=1e-5)
    assert w.mean().item() == pytest.approx(1.0, abs=1e-6)


def test_latitude_weights_order_independent_and_polar_rows_small():
    lat = np.linspace(-90, 90, 19)
    torch.testing.assert_close(latitude_weights(lat[::-1]), latitude_weights(lat).flip(0))
    w = latitude_weights(lat)
    assert w[9] == w.max() and w[0] == w.min()
    # the equator cell (±5°) over a pole cap (85..90°): (2 sin 5°) / (1 − sin 85°)
    ratio = 2 * np.sin(np.deg2rad(5)) / (1 - np.sin(np.deg2rad(85)))
    assert (w[9] / w[0]).item() == pytest.approx(ratio, rel=1e-5)


def test_latitude_weights_regional_grid_keeps_its_own_cell_sizes():
    # 0..20°N every 10°: edges at −5, 5, 15, 25 (not stretched to the poles)
    w = latitude_weights([0.0, 10.0, 20.0])
    s = np.sin(np.deg2rad([-5.0, 5.0, 15.0, 25.0]))
    area = np.diff(s)
    np.testing.assert_allclose(w.numpy(), area / area.mean(), rtol=1e-6)
    assert latitude_weights([45.0]).tolist() == [1.0]


def test_weighted_mse_equals_plain_mse_without_weights_or_mask():
    torch.manual_seed(0)
    pred, target = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(weighted_mse(pred, target), ((pred - target) ** 2).mean())


def test_weighted_mse_weights_rows_by_latitude():
    pred = torch.zeros(1, 3, 4)
    target = torch.zeros(1, 3, 4)
    target[:, 0] = 2.0  # error only in the first row
    w = torch.tensor([0.5, 1.0, 1.5])
    # Σ w·e² / Σ w = (0.5 · 4 · 4) / (3 · 4) = 2/3
    assert weighted_mse(pred, target, lat_weights=w).item() == pytest.approx(2 / 3)


def test_weighted_mse_ignores_nan_and_masked_cells_exactly():
    torch.manual_seed(1)
    pred = torch.randn(2, 3, 6, 8, requires_grad=True)
    target = torch.randn(2, 3, 6, 8)
    w = latitude_weights(np.linspace(-60, 60, 6))
    land = torch.zeros(6, 8, dtype=torch.bool)
    land[2:4, 3:6] = True
    nan_target = target.clone()
    nan_target[..., land] = float("nan")
    nan_target[0, 1, 0, 0] = float("nan")
    valid = ~torch.isnan(nan_target)

    loss = weighted_mse(pred, nan_target, lat_weights=w)
    weight = valid * w[:, None]
    expected = ((pred - target) ** 2 * weight).sum() / weight.sum()
    torch.testing.assert_close(loss, expected)
    # the values under the NaN do not matter; an explicit mask gives the same loss
    garbage = nan_target.clone()
    garbage[~valid] = 1e6
    torch.testing.assert_close(weighted_mse(pred, garbage, w, mask=valid), loss)
    land_nan = target.clone()
    land_nan[..., land] = float("nan")
    torch.testing.assert_close(
        weighted_mse(pred, target, w, mask=~land), weighted_mse(pred, land_nan, w)
    )
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert torch.count_nonzero(pred.grad[~valid]) == 0
    assert torch.count_nonzero(pred.grad[valid]) == valid.sum()


def test_weighted_mse_with_no_valid_cell_is_zero_not_nan():
    loss = weighted_mse(torch.ones(2, 2), torch.full((2, 2), float("nan")))
    assert loss.item() == 0.0


def test_weighted_mse_is_float32_under_autocast():
    pred = torch.randn(2, 4, 4, dtype=torch.bfloat16)
    target = torch.randn(2, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = weighted_mse(pred, target)
    assert loss.dtype == torch.float32


def test_orthogonality_penalty_values():
    assert orthogonality_penalty(torch.eye(3, 5)).item() == pytest.approx(0.0)
    q, _ = torch.linalg.qr(torch.randn(8, 4))
    assert orthogonality_penalty(q.T).item() == pytest.approx(0.0, abs=1e-10)
    # W = 2·I₂: W Wᵀ − I = 3·I₂ → ‖·‖² = 18
    assert orthogonality_penalty(2 * torch.eye(2)).item() == pytest.approx(18.0)
    # two identical unit rows: off-diagonals 1 → 2
    assert orthogonality_penalty(torch.tensor([[1.0, 0.0], [1.0, 0.0]])).item() == 2.0
    w = torch.randn(4, 6, requires_grad=True)
    orthogonality_penalty(w).backward()
    assert w.grad.abs().sum() > 0
