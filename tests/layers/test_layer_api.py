"""Layer API edges: lazy parameters and optimisers, empty batches, dtypes, stateful carry,
hook-based internals, the gate path and the docstrings the docs site renders."""

import inspect
import re
from pathlib import Path

import pytest
import torch

import faconvlstm.layers as layers_pkg
from faconvlstm import ConvLSTM2D, FAConvLSTM2D
from faconvlstm.layers.fused_gates import lstm_gates, lstm_gates_reference

CELLS = [ConvLSTM2D, FAConvLSTM2D]
B, T, C, H, W, F = 2, 4, 3, 6, 8, 5
#: the parameter that depends on the input channels, per class
INPUT_WEIGHT = {ConvLSTM2D: "kernel", FAConvLSTM2D: "input_kernel"}


@pytest.fixture
def x():
    return torch.randn(B, T, C, H, W, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("cls", CELLS)
def test_optimizer_made_before_the_first_call_trains_every_parameter(cls, x):
    torch.manual_seed(0)
    layer = cls(F, 3, padding="same")
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer(x).square().mean().backward()  # builds, then gradients
    built = {name: p.detach().clone() for name, p in layer.named_parameters()}
    held = {id(p) for group in opt.param_groups for p in group["params"]}
    assert {id(p) for p in layer.parameters()} <= held
    opt.step()
    name = INPUT_WEIGHT[cls]
    assert not torch.equal(getattr(layer, name), built[name])  # the input side trained


@pytest.mark.parametrize("cls", CELLS)
def test_unbuilt_layer_state_dict_round_trip_and_lazy_parameters(cls, x):
    lazy = cls(F, 3, padding="same")
    assert isinstance(getattr(lazy, INPUT_WEIGHT[cls]), torch.nn.UninitializedParameter)
    state = lazy.state_dict()
    assert INPUT_WEIGHT[cls] not in state  # nothing to save yet
    other = cls(F, 3, padding="same")
    other.load_state_dict(state)  # unbuilt into unbuilt: strict, nothing missing
    assert other.in_channels is None
    eager = cls(F, 3, padding="same", in_channels=C)
    assert type(getattr(eager, INPUT_WEIGHT[cls])) is torch.nn.Parameter
    assert eager.get_config()["in_channels"] == C and lazy.get_config()["in_channels"] is None


@pytest.mark.parametrize("cls", CELLS)
def test_lazy_and_eager_layers_initialise_identically(cls, x):
    torch.manual_seed(0)
    eager = cls(F, 3, padding="same", in_channels=C)
    torch.manual_seed(0)
    lazy = cls(F, 3, padding="same")
    lazy(x)
    for (name, a), b in zip(eager.named_parameters(), lazy.parameters()):
        torch.testing.assert_close(a, b, msg=name)


@pytest.mark.parametrize("cls", CELLS)
def test_empty_batch_gives_empty_outputs(cls, x):
    layer = cls(F, 3, padding="same", return_sequences=True, return_state=True, in_channels=C)
    seq, h, c = layer(x[:0])
    assert seq.shape == (0, T, F, H, W) and h.shape == c.shape == (0, F, H, W)


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_input_dtype_other_than_the_layers_is_a_clear_error(cls, x, dtype):
    layer = cls(F, 3, padding="same", in_channels=C)
    method = {torch.float64: "double", torch.bfloat16: "bfloat16"}[dtype]
    with pytest.raises(TypeError, match=rf"x\.float\(\)\) or the layer \(layer\.{method}\(\)\)"):
        layer(x.to(dtype))
    assert layer.double()(x.double()).dtype == torch.float64  # the remedy works


@pytest.mark.parametrize("cls", CELLS)
def test_bfloat16_input_under_autocast_works(cls, x):
    layer = cls(F, 3, padding="same", in_channels=C)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x.bfloat16())
    assert y.shape == (B, F, H, W) and torch.isfinite(y.float()).all()


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("change", ["grid", "dtype"])
def test_stateful_layer_fed_a_new_grid_or_dtype_names_reset_state(cls, x, change):
    layer = cls(F, 3, padding="same", stateful=True, in_channels=C)
    layer(x)
    if change == "grid":
        new = x[..., :-2]
    else:
        layer.double()
        new = x.double()
    with pytest.raises(ValueError, match=r"call reset_state\(\)"):
        layer(new)
    layer.reset_state()
    assert layer(new).shape[-1] == new.shape[-1]


def test_gate_path_is_chosen_at_construction():
    assert FAConvLSTM2D(F, 3)._gates is lstm_gates
    others = ({"fused": False}, {"activation": "relu"}, {"recurrent_activation": "hard_sigmoid"})
    for kwargs in others:
        gates = FAConvLSTM2D(F, 3, **kwargs)._gates
        assert gates.func is lstm_gates_reference


def test_capture_internals_hooks_exist_only_inside_the_block(x):
    layer = FAConvLSTM2D(F, 3, padding="same", attention_every=2, in_channels=C)
    modules = (layer.mixing, layer.se, layer.attention)
    with layer.capture_internals() as rec:
        assert all(len(m._forward_hooks) == 1 for m in modules)
        layer(x)
        layer(x)  # a second call: its steps follow the first one's on the T axis
    assert not any(m._forward_hooks for m in modules)
    assert rec["se_weights"].shape == (B, 2 * T, layer.bottleneck)
    assert rec["branch_energy"].shape == (B, 2 * T, 3)
    assert [a["step"] for a in rec["attention"]] == [1, 3, 5, 7]


def test_capture_internals_records_what_the_step_computed(x):
    """The hooks recompute SE weights and branch energies from the submodules' inputs;
    check them against the submodules run by hand on the first step."""
    torch.manual_seed(0)
    layer = FAConvLSTM2D(F, 3, padding="same", in_channels=C)
    seen = {}

    def keep_first_input(module, inputs, output):  # returns None: the output is unchanged
        seen.setdefault("b", inputs[0].detach())

    handle = layer.mixing.register_forward_hook(keep_first_input)
    with torch.no_grad(), layer.capture_internals() as rec:
        layer(x)
    handle.remove()
    b = seen["b"]  # the first step's bottleneck (B, H, W, r)
    m = layer.mixing(b)
    s = layer.se.excitation(m)
    torch.testing.assert_close(rec["se_weights"][:, 0], s)
    torch.testing.assert_close(rec["branch_energy"][:, 0], layer.mixing.branch_energy(b))
    assert ((s > 0) & (s < 1)).all()


@pytest.mark.parametrize("cls", CELLS)
def test_class_docstrings_carry_display_equations_and_shapes(cls):
    doc = inspect.getdoc(cls)
    blocks = re.findall(r"^\$\$\n(.*?)^\$\$$", doc, flags=re.S | re.M)
    assert blocks and r"c_t &= f_t \odot c_{t-1} + i_t \odot \tanh(z_c) \\" in blocks[0]
    assert "h_t &= o_t \\odot \\tanh(c_t)" in blocks[0]
    assert "Shape:" in doc and "- Input:" in doc and "- Output:" in doc
    assert ".. math::" not in doc and ":math:" not in doc


def test_layer_sources_cite_pages_that_exist_in_the_repository():
    for path in Path(layers_pkg.__file__).parent.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "SPEC.md" not in text and "PERF_NOTES" not in text, path.name
