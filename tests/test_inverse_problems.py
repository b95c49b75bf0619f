"""The boundary-measurement inverse problems ``eit_inclusions`` and ``inverse_scattering``."""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
from scipy import ndimage

import sciml
import sciml.data
from sciml.fields import Grid
from sciml.numerics.conductivity import helmholtz_dtn, ntd, trig_patterns
from sciml.spaces import space_from_dict

GRID = Grid(33, ndim=2)
N_B = 4 * 32
EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity: a digitised ellipse is one component


def _module(problem):
    """The module a problem file was loaded into (its make_problem, spaces and helpers)."""
    return sys.modules[problem.forward.reference.__module__]


@pytest.fixture(scope="module")
def eit():
    return sciml.load_problem("eit_inclusions")


@pytest.fixture(scope="module")
def scattering():
    return sciml.load_problem("inverse_scattering")


# -- shared contract ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name, measured, unknown", [("eit_inclusions", "ntd", "chi"),
                                                     ("inverse_scattering", "dtn", "kappa")])
def test_samples_have_the_stated_shapes_and_are_deterministic(name, measured, unknown):
    problem = sciml.load_problem(name)
    assert problem.name == name and problem.grid == GRID and problem.solve_stride == 1
    assert problem.input_names == (measured,) and problem.outputs == (unknown,)
    assert problem.params["measurements"] == 16 and problem.params["noise"] == 0.0
    assert problem.params["noise_model"] == "multiplicative"
    inputs, outputs = problem.make_samples(8, GRID, 3)
    assert inputs[measured].shape == (8, 16, N_B) and outputs[unknown].shape == (8, 33, 33)
    assert np.isfinite(inputs[measured]).all()
    again_in, again_out = problem.make_samples(8, GRID, 3)
    np.testing.assert_array_equal(again_in[measured], inputs[measured])
    np.testing.assert_array_equal(again_out[unknown], outputs[unknown])
    other_in, other_out = problem.make_samples(8, GRID, 4)
    assert not np.allclose(other_in[measured], inputs[measured])
    assert not np.array_equal(other_out[unknown], outputs[unknown])
    # prefix stable: the first samples of a larger draw are the samples of a smaller one
    first_in, first_out = problem.make_samples(3, GRID, 3)
    np.testing.assert_array_equal(first_out[unknown], outputs[unknown][:3])
    np.testing.assert_allclose(first_in[measured], inputs[measured][:3], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name, measured, unknown", [("eit_inclusions", "ntd", "chi"),
                                                     ("inverse_scattering", "dtn", "kappa")])
def test_multiplicative_noise_is_about_five_percent_and_spares_the_output(name, measured, unknown):
    module = _module(sciml.load_problem(name))
    clean_in, clean_out = module.make_problem(noise=0.0).make_samples(8, GRID, 5)
    noisy_problem = module.make_problem(noise=0.05)
    assert noisy_problem.params["noise"] == 0.05
    noisy_in, noisy_out = noisy_problem.make_samples(8, GRID, 5)
    np.testing.assert_array_equal(noisy_out[unknown], clean_out[unknown])
    m, noisy = clean_in[measured], noisy_in[measured]
    keep = np.abs(m) > 1e-8 * np.abs(m).max()
    ratio = noisy[keep] / m[keep] - 1.0
    assert ratio.size > 10_000
    assert abs(ratio.std() - 0.05) < 0.002 and abs(ratio.mean()) < 0.002


@pytest.mark.parametrize("name, measured, unknown", [("eit_inclusions", "ntd", "chi"),
                                                     ("inverse_scattering", "dtn", "kappa")])
def test_generate_writes_the_measurement_arrays(name, measured, unknown, tmp_path):
    problem = sciml.load_problem(name)
    path = sciml.data.generate(problem, 12, GRID, seed=0, path=tmp_path / "x.h5", progress=False)
    with h5py.File(path, "r") as f:
        data, target = f[f"inputs/{measured}"][...], f[f"outputs/{unknown}"][...]
    assert data.shape == (12, 16, N_B) and target.shape == (12, 1, 33, 33)
    assert np.isfinite(data).all() and np.isfinite(target).all()
    assert np.abs(data).max() > 0


# -- EIT with elliptical inclusions ------------------------------------------------------------------
def test_inclusion_map_is_binary_with_one_to_four_components_inside_the_box(eit):
    space = eit.forward.input("chi").space
    assert space.kind == "elliptic_inclusions"
    assert space_from_dict(space.to_dict()).params() == space.params()
    chi = space.sample(64, GRID, 0)
    assert set(np.unique(chi)) == {0.0, 1.0}
    counts = [ndimage.label(c, structure=EIGHT)[1] for c in chi]
    assert min(counts) >= 1 and max(counts) <= 4 and len(set(counts)) >= 3  # 1..4, and varying
    x = GRID.axes[0]
    outer = (x < 0.05 - 1e-12) | (x > 0.95 + 1e-12)  # the margin: no inclusion there
    assert not chi[:, outer, :].any() and not chi[:, :, outer].any()
    # every active ellipse has its centre in [0.15, 0.85]^2 and semi-axes in [0.05, 0.2]
    active, shapes = space.ellipses(64, GRID, np.random.default_rng(0))
    assert active.sum(axis=1).min() == 1 and active.sum(axis=1).max() == 4
    assert (shapes[..., :2] >= 0.15).all() and (shapes[..., :2] <= 0.85).all()
    assert (shapes[..., 2:4] >= 0.05).all() and (shapes[..., 2:4] <= 0.2).all()


def test_inclusion_node_values_are_the_exact_ellipse_indicator(eit):
    module = _module(eit)
    space = module.EllipticInclusions(max_inclusions=1, semi_axes=(0.2, 0.2), centres=(0.5, 0.5))
    chi = space.sample(1, GRID, 0)[0]
    x, y = np.meshgrid(*GRID.axes, indexing="ij")
    np.testing.assert_array_equal(chi, ((x - 0.5) ** 2 + (y - 0.5) ** 2 <= 0.2**2).astype(float))
    assert chi[16, 16 + 6] == 1.0 and chi[16, 16 + 7] == 0.0  # 6 h = 0.1875 <= 0.2 < 7 h


def test_problem_output_and_params_give_the_conductivity(eit):
    module = _module(eit)
    assert eit.params["sigma0"] == 1.0 and eit.params["sigma1"] == 10.0
    inputs, outputs = eit.make_samples(2, GRID, 1)
    sigma = module.conductivity(outputs["chi"], eit.params["sigma0"], eit.params["sigma1"])
    assert set(np.unique(sigma)) == {1.0, 10.0}
    expected = ntd(sigma, GRID, trig_patterns(GRID, 16))
    np.testing.assert_allclose(inputs["ntd"], expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(expected.mean(axis=-1), 0.0, atol=1e-12)  # mean-zero voltages (uniform h)
    low = module.make_problem(contrast=2.0)
    assert low.params["sigma1"] == 2.0
    assert not np.allclose(low.make_samples(2, GRID, 1)[0]["ntd"], inputs["ntd"])


def test_background_voltages_are_the_data_of_no_inclusion(eit):
    module = _module(eit)
    background = module.background_voltages(GRID, 16)
    assert background.shape == (16, N_B)
    no_inclusion = eit.forward.solve_batch({"chi": np.zeros((1, 33, 33))}, GRID)["ntd"][0]
    np.testing.assert_allclose(background, no_inclusion, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(module.background_voltages(GRID, 4), background[:4], rtol=1e-12, atol=1e-14)
    # and the inclusions are seen: the data of a sample differ clearly from the background
    data = eit.make_samples(4, GRID, 2)[0]["ntd"]
    change = np.linalg.norm(data - background, axis=(1, 2)) / np.linalg.norm(background)
    assert (change > 1e-3).all()


def test_fewer_measurements_are_the_first_patterns(eit):
    module = _module(eit)
    few = module.make_problem(measurements=4)
    assert few.params["measurements"] == 4 and few.array_shape("ntd", GRID) == (4, N_B)
    data4 = few.make_samples(3, GRID, 0)[0]["ntd"]
    data16 = eit.make_samples(3, GRID, 0)[0]["ntd"]
    np.testing.assert_allclose(data4, data16[:, :4], rtol=1e-12, atol=1e-14)


# -- inverse scattering ------------------------------------------------------------------------------
def test_square_scatterers_sample_the_stated_family(scattering):
    space = scattering.forward.input("kappa").space
    assert space.kind == "square_scatterers"
    assert space_from_dict(space.to_dict()).params() == space.params()
    kappa = space.sample(64, GRID, 0)
    assert kappa.min() == 1.0 and (kappa > 1.0).any(axis=(1, 2)).all()
    active, squares = space.squares(64, GRID, np.random.default_rng(0))
    assert active.sum(axis=1).min() == 1 and active.sum(axis=1).max() == 4
    side, c = squares[..., 2], squares[..., 3]
    assert (side >= 0.1).all() and (side <= 0.25).all() and (c >= 0.5).all() and (c <= 1.5).all()
    assert (squares[..., :2] >= 0.05).all() and (squares[..., :2] + side[..., None] <= 0.95 + 1e-12).all()
    # exact node values: kappa is 1 + the sum of the active squares' contrasts at each node
    x, y = GRID.axes
    expected = np.ones((33, 33))
    for x0, y0, s, cc in squares[7][active[7]]:
        expected += cc * np.outer((x >= x0) & (x <= x0 + s), (y >= y0) & (y <= y0 + s))
    np.testing.assert_array_equal(kappa[7], expected)


def test_no_scatterer_gives_the_helmholtz_data_of_kappa_one(scattering):
    module = _module(scattering)
    assert scattering.params["omega"] == 2.0
    patterns = trig_patterns(GRID, 16)
    expected = helmholtz_dtn(np.ones((33, 33)), GRID, patterns, 2.0)
    got = scattering.forward.solve_batch({"kappa": np.ones((1, 33, 33))}, GRID)["dtn"][0]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(module.background_flux(GRID, 16), expected, rtol=1e-12, atol=1e-12)
    # omega enters: kappa = 1 at omega = 2 is not the Laplace (omega = 0) map
    assert not np.allclose(expected, helmholtz_dtn(1.0, GRID, patterns, 0.0), rtol=1e-3)


def test_measurement_depends_on_kappa(scattering):
    inputs, outputs = scattering.make_samples(4, GRID, 0)
    data, kappa = inputs["dtn"], outputs["kappa"]
    assert not np.array_equal(kappa[0], kappa[1])
    rel = np.linalg.norm(data[0] - data[1]) / np.linalg.norm(data[0])
    assert rel > 1e-4
    np.testing.assert_allclose(data, helmholtz_dtn(kappa, GRID, trig_patterns(GRID, 16), 2.0), rtol=1e-12,
                               atol=1e-12)
    other = _module(scattering).make_problem(omega=1.0)
    assert other.params["omega"] == 1.0
    assert not np.allclose(other.make_samples(4, GRID, 0)[0]["dtn"], data)


def test_default_omega_is_below_the_first_resonance_of_the_worst_kappa(scattering):
    """All four squares stacked at the centre, largest and of the largest contrast, is the worst kappa
    (the docstring's argument); -Delta_h - omega^2 kappa must stay positive definite for it."""
    omega2 = scattering.params["omega"] ** 2
    m, h = 31, 1.0 / 32
    t = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1]) / h**2
    laplace = (sp.kron(t, sp.eye(m)) + sp.kron(sp.eye(m), t)).toarray()  # -Delta_h, interior nodes
    x = GRID.axes[0][1:-1]
    square = (np.abs(x - 0.5) <= 0.125)[:, None] & (np.abs(x - 0.5) <= 0.125)[None, :]
    worst = (1.0 + 4 * 1.5 * square).ravel()
    np.linalg.cholesky(laplace - omega2 * np.diag(worst))  # raises if not positive definite
    # with a margin: omega^2 is at most 0.7 of this kappa's first generalised eigenvalue (about 6.5) ...
    np.linalg.cholesky(laplace - (omega2 / 0.7) * np.diag(worst))
    # ... which lies below 7: this kappa is far worse than the bound 2 pi^2 / max kappa of one square
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(laplace - 7.0 * np.diag(worst))
    # and the forward model accepts the worst kappa at the default omega
    full = np.ones((33, 33))
    full[1:-1, 1:-1] = worst.reshape(m, m)
    assert np.isfinite(scattering.forward.solve_batch({"kappa": full[None]}, GRID)["dtn"]).all()
