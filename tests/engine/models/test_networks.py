"""Deep models at tiny sizes: shapes, parameter counts, fitting one batch, and which inputs reach the output."""
from __future__ import annotations

import pytest
import torch

from stf_engine import roles
from stf_engine.models import MODELS, ganstfm
from stf_engine.core.options import defaults
from stf_engine.methods.catalog import get_method
from stf_engine.methods.contract import MethodContext, TileBatch

from devkit.checkpoints import save_random

ALL = sorted(MODELS)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _inputs(model, bands=3, size=(45, 51), batch=1, seed=0, given=(roles.PAN, roles.COARSE_REFERENCE)):
    generator = torch.Generator().manual_seed(seed)
    used = model.roles_for(given)
    return {r: torch.randn(batch, 1 if r == roles.PAN else bands, *size, generator=generator) for r in sorted(used)}, used


@pytest.mark.parametrize("name", ALL)
def test_odd_sizes_keep_their_shape(name):
    model = MODELS[name]
    inputs, used = _inputs(model, size=(45, 51))
    network = model.network(3, used, 3, defaults(model.options)).eval()
    with torch.no_grad():
        assert network(inputs).shape == (1, 3, 45, 51)


@pytest.mark.parametrize(
    "name, low, high",
    [("marstfn", 0.5e6, 1.2e6), ("ganstfm", 0.5e6, 0.7e6), ("edcstfn", 0.1e6, 0.4e6)],
)
def test_parameter_counts_at_six_bands(name, low, high):
    model = MODELS[name]
    network = model.network(6, model.roles_for({roles.PAN, roles.COARSE_REFERENCE}), 3, defaults(model.options))
    assert low <= sum(p.numel() for p in network.parameters()) <= high


def test_ganstfm_discriminator_is_conditional_multiscale_and_spectrally_normalised():
    objective = ganstfm.AdversarialObjective(6, defaults(ganstfm.OPTIONS))
    convs = [m for m in objective.discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(c, "parametrizations") and "weight" in c.parametrizations for c in convs)
    assert convs[0].in_channels == 12  # [image, coarse target]
    scores = objective.discriminator(torch.randn(1, 6, 32, 32), torch.randn(1, 6, 32, 32))
    assert [s.shape[-1] for s in scores] == [8, 4]
    assert objective.adversarial_weight == 1e-3


@pytest.mark.parametrize("name", ALL)
def test_overfits_one_tiny_batch(name):
    torch.manual_seed(0)
    model = MODELS[name]
    inputs, used = _inputs(model, size=(12, 12), batch=2, seed=1)
    target = inputs[roles.FINE_REFERENCE] * 0.5 + 0.5 * inputs[roles.COARSE_TARGET] + 0.3
    network = model.network(3, used, 2, defaults(model.options))
    objective = model.objective(3, defaults(model.options))
    optimizer = torch.optim.Adam(network.parameters(), lr=2e-3)
    first = None
    for _ in range(200):
        loss = objective.loss(network(inputs), target, inputs)
        first = first if first is not None else float(loss.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if float(loss.detach()) <= first / 10:
            break
    assert float(loss.detach()) <= first / 10, (first, float(loss.detach()))


def _tile_function(name, given, bands=3, ratio=2, seed=0, tmp_path=None):
    """The registered method's tile function over a freshly initialised checkpoint."""

    def open_gates(network):  # attention gates start at zero; open them so every path counts
        for parameter in network.parameters():
            if parameter.numel() == 1:
                parameter.data.fill_(0.5)

    path = save_random(tmp_path / f"{name}.pt", name, bands, given, ratio, seed, prepare=open_gates)
    context = MethodContext(ratio=ratio, bands=bands, given=frozenset(given), device=torch.device("cpu"),
                            fine_std=(0.05,) * bands, weights=path)
    return get_method(name).build(context)


def _batch(given, size=(33, 35), seed=3):
    generator = torch.Generator().manual_seed(seed)
    tensors = {r: 0.2 + 0.05 * torch.randn(1, 1 if r == roles.PAN else 3, *size, generator=generator) for r in given}
    return TileBatch(valid=torch.ones(1, 1, *size, dtype=torch.bool), **tensors)


@pytest.mark.parametrize("name", ALL)
def test_each_declared_input_reaches_the_output_and_nothing_else_does(name, tmp_path):
    everything = set(roles.ALL_ROLES)
    run = _tile_function(name, everything, tmp_path=tmp_path)
    batch = _batch(everything)
    with torch.no_grad():
        base = run(batch)
        declared = MODELS[name].roles_for(everything)
        for role in roles.ALL_ROLES:
            perturbed = _batch(everything)
            value = getattr(perturbed, role)
            value[..., 10:20, 10:20] += 0.1
            changed = (run(perturbed) - base).abs().max().item()
            if role in declared:
                assert changed > 1e-6, f"{name} ignores its {role}"
            else:
                assert changed == 0.0, f"{name} reacts to the undeclared {role}"


def test_marstfn_without_pan_builds_two_streams(tmp_path):
    model = MODELS["marstfn"]
    with_pan = model.network(3, model.roles_for({roles.PAN}), 4, defaults(model.options))
    without = model.network(3, model.roles_for(set()), 4, defaults(model.options))
    assert set(with_pan.streams) == {roles.COARSE_TARGET, roles.PAN}
    assert set(without.streams) == {roles.COARSE_TARGET}
    assert without.reduce.in_channels == 128 and with_pan.reduce.in_channels == 192
