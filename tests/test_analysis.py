"""The seed's metrics against hand-computed cases (docs/metrics.md has the formulas)."""

import math

import numpy as np
import pytest

from memhost import analysis as A


# ---------------------------------------------------------------- targets, LSB, error

def test_linear_targets_span_the_range_inclusive():
    assert A.linear_targets(1.0, 2.0, 5).tolist() == [1.0, 1.25, 1.5, 1.75, 2.0]


def test_lsb_is_range_over_n_minus_one():
    assert A.lsb(100e-6, 119e-6, 20) == pytest.approx(1e-6)


def test_linear_targets_refuse_fewer_than_two_levels():
    with pytest.raises(ValueError):
        A.linear_targets(1.0, 2.0, 1)


def test_error_lsb_divides_error_by_step():
    assert A.error_lsb([1.3, 0.8], [1.0, 1.0], 0.2).tolist() == pytest.approx([1.5, -1.0])


def test_within_half_lsb_counts_the_boundary_as_inside():
    assert A.within_half_lsb([0.0, 0.5, -0.5, 0.51, -2.0]) == pytest.approx(3 / 5)


# ---------------------------------------------------------------- nonlinearity index

def test_nonlinearity_index_is_zero_on_a_straight_line():
    assert A.nonlinearity_index([1.0, 2.0, 3.0, 4.0]).index == 0.0


def test_nonlinearity_index_endpoints_hand_case():
    # line through (0, 0) and (3, 3); level 1 is 0.1 off; range 3 -> 0.1/3
    nl = A.nonlinearity_index([0.0, 1.1, 2.0, 3.0], line="endpoints")
    assert nl.index == pytest.approx(0.1 / 3)
    assert nl.worst_level == 1
    assert nl.line == "endpoints"


def test_nonlinearity_index_least_squares_hand_case():
    # lsq fit of (0,0),(1,1.1),(2,2),(3,3): slope 0.99, intercept 0.04;
    # residuals -0.04, 0.07, -0.02, -0.01 -> max 0.07 / range 3
    nl = A.nonlinearity_index([0.0, 1.1, 2.0, 3.0], line="lsq")
    assert nl.slope == pytest.approx(0.99)
    assert nl.intercept == pytest.approx(0.04)
    assert nl.index == pytest.approx(0.07 / 3)


def test_nonlinearity_index_is_the_same_for_a_falling_level_set():
    assert A.nonlinearity_index([3.0, 2.0, 0.9, 0.0]).index == pytest.approx(0.1 / 3)


def test_nonlinearity_index_rejects_an_unknown_line():
    with pytest.raises(ValueError, match="unknown ideal line"):
        A.nonlinearity_index([0.0, 1.0, 2.0], line="spline")


# ---------------------------------------------------------------- per-level statistics, CPD

def test_level_stats_groups_by_level_with_sample_sigma():
    st = A.level_stats([0, 1, 0, 1], [1.0, 5.0, 3.0, 5.0], 2)
    assert st.mean.tolist() == [2.0, 5.0]
    assert st.sigma.tolist() == pytest.approx([math.sqrt(2.0), 0.0])
    assert st.count.tolist() == [2, 2]


def test_level_stats_sigma_is_nan_with_one_cycle():
    st = A.level_stats([0, 1], [1.0, 2.0], 2)
    assert np.isnan(st.sigma).all()


def test_cpd_uses_midpoint_plotting_positions():
    x, p = A.cpd([3.0, 1.0, 2.0, 4.0])
    assert x.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert p.tolist() == [0.125, 0.375, 0.625, 0.875]


# ---------------------------------------------------------------- reproducible levels

def test_bands_separate_when_three_sigma_bands_do_not_touch():
    # 0 +- 0.3 and 1 +- 0.3: 0.3 < 0.7
    assert A.bands_separate([0.0, 1.0], [0.1, 0.1])


def test_bands_overlap_when_three_sigma_bands_touch():
    # 0 +- 0.6 and 1 +- 0.6 overlap
    assert not A.bands_separate([0.0, 1.0], [0.2, 0.2])


def test_reproducible_levels_takes_every_kth_level():
    # 5 levels 1 apart, sigma 0.2: neighbours overlap (0.6+0.6 > 1), every 2nd level separates
    # (0.6+0.6 < 2) -> levels 0, 2, 4 = 3 levels, 1 bit
    rep = A.reproducible_levels([0, 1, 2, 3, 4], [0.2] * 5)
    assert (rep.levels, rep.bits, rep.step) == (3, 1, 2)


def test_reproducible_levels_keeps_all_levels_when_they_separate():
    rep = A.reproducible_levels(np.arange(32.0), np.full(32, 0.1))
    assert (rep.levels, rep.bits, rep.step) == (32, 5, 1)


def test_reproducible_levels_with_no_separable_pair_is_one_level():
    rep = A.reproducible_levels([0.0, 1.0], [1.0, 1.0])
    assert (rep.levels, rep.bits) == (1, 0)


# ---------------------------------------------------------------- NeuroSim label

@pytest.mark.parametrize("label, a_norm", [(0.01, 126.268958), (1.0, 1.251653), (9.0, 0.022810)])
def test_neurosim_label_matches_neurosims_parameter_table(label, a_norm):
    # NeuroSim's getParamA() table: label -> A / P_max
    assert 1.0 / A.u_from_label(label) == pytest.approx(a_norm, rel=1e-4)


def test_neurosim_label_round_trips():
    assert A.label_from_u(A.u_from_label(3.3)) == pytest.approx(3.3)


def test_fit_neurosim_recovers_the_label_of_a_potentiation_train():
    g = A.neurosim_curve(np.arange(101), 100, 1e-3, 2e-3, 2.5)
    fit = A.fit_neurosim(g)
    assert fit.label == pytest.approx(2.5, abs=1e-3)
    assert fit.g_start == pytest.approx(1e-3) and fit.g_end == pytest.approx(2e-3)


def test_fit_neurosim_gives_a_saturating_depression_a_negative_label():
    g = 3e-3 - A.neurosim_curve(np.arange(101), 100, 1e-3, 2e-3, 2.5)
    assert A.fit_neurosim(g).label == pytest.approx(-2.5, abs=1e-3)


def test_fit_neurosim_labels_a_straight_train_zero():
    assert abs(A.fit_neurosim(np.linspace(1e-3, 2e-3, 50)).label) < 1e-3


def test_fit_neurosim_tolerates_read_noise():
    rng = np.random.default_rng(1)
    g = A.neurosim_curve(np.arange(201), 200, 1e-3, 2e-3, 4.0) + rng.normal(0, 5e-6, 201)
    assert A.fit_neurosim(g).label == pytest.approx(4.0, abs=0.1)


# ---------------------------------------------------------------- summary

def _run(n=4, cycles=3, noise=None):
    targets = A.linear_targets(1.0, 4.0, n)
    cyc = np.repeat(np.arange(cycles), n)
    lv = np.tile(np.arange(n), cycles)
    tgt = targets[lv]
    ach = tgt + (noise if noise is not None else 0.0)
    return {"cycle": cyc, "level": lv, "target": tgt, "achieved": ach,
            "pulses": np.full(lv.size, 7), "status": ["converged"] * lv.size}


def test_summary_of_perfect_levels():
    s = A.summarize_levels(_run(noise=np.zeros(12)), 4, 1.0, 4.0)
    assert s["nonlinearity_index"] == 0.0
    assert s["within_half_lsb"] == 1.0
    assert s["pulses_mean"] == 7.0
    assert s["cycles"] == 3


def test_summary_sigma_lsb_is_the_error_spread_in_lsb():
    noise = np.tile([0.1, -0.1, 0.0], 4)  # LSB = 1 S
    s = A.summarize_levels(_run(noise=noise), 4, 1.0, 4.0)
    assert s["sigma_lsb"] == pytest.approx(np.std(noise, ddof=1))


def test_summary_reports_no_reproducible_levels_from_one_cycle():
    s = A.summarize_levels(_run(cycles=1, noise=np.zeros(4)), 4, 1.0, 4.0)
    assert s["reproducible_levels"] is None
