"""Counter-based streams: pure functions of (seed, stream, day, id, sub)."""
import numpy as np
import pytest
from scipy import stats

from sim.streams import Streams


def test_same_key_same_draw_regardless_of_batch():
    s = Streams(7, any_name=True)
    alone = s.uniform("x", 3, np.array([5]))
    in_batch = s.uniform("x", 3, np.arange(10))[5]
    assert alone[0] == in_batch


def test_streams_days_seeds_and_subs_differ():
    s, other_seed = Streams(7, any_name=True), Streams(8, any_name=True)
    ids = np.arange(1000)
    base = s.uniform("x", 3, ids)
    for different in (s.uniform("y", 3, ids), s.uniform("x", 4, ids), other_seed.uniform("x", 3, ids),
                      s.uniform("x", 3, ids, sub=1)):
        assert not np.any(base == different)


def test_uniforms_are_uniform_and_uncorrelated_across_ids():
    # 10^5 draws: the KS test at the 0.1% level fails a correct generator once in a thousand seeds.
    u = Streams(1, any_name=True).uniform("check", 0, np.arange(100_000))
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # Lag-1 correlation of consecutive ids: sd is 1/sqrt(n) ~ 0.0032; 4 sd.
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 4 / np.sqrt(u.size)


def test_distribution_transforms_have_their_means():
    s = Streams(2, any_name=True)
    ids = np.arange(200_000)
    g = s.gamma("g", 0, ids, 2.0, 4.0)   # mean 0.5, sd 0.354
    assert abs(g.mean() - 0.5) < 4 * 0.354 / np.sqrt(ids.size)
    b = s.beta("b", 0, ids, 2.0, 6.0)    # mean 0.25, var = ab/((a+b)^2(a+b+1)) = 12/576
    assert abs(b.mean() - 0.25) < 4 * np.sqrt(12 / 576) / np.sqrt(ids.size)
    assert s.poisson("p", 0, 0.0) == 0
    counts = [s.poisson("p", d, 3.0) for d in range(4000)]   # mean 3, sd of mean sqrt(3/4000)
    assert abs(np.mean(counts) - 3.0) < 4 * np.sqrt(3 / 4000)


def test_compiled_uniforms_equal_the_numpy_mixing_bit_for_bit():
    """Streams.uniform (compiled) and uniform_at (inside kernels) give exactly the bits() numbers.

    Covers the daily fast path (1-D int64 ids, sub array), scalar and zero
    subs, broadcasting, non-contiguous and int32 inputs, and a scalar id.
    """
    from sim.streams import _S11, _TO_UNIT, uniform_at

    streams = Streams(11, any_name=True)
    ids = np.arange(5000, dtype=np.int64)
    subs = (ids * 7919) % 97
    cases = [(ids, 0), (ids, 3), (ids, subs), (ids[::3], subs[::3]), (ids.astype(np.int32), subs),
             (ids.reshape(50, 100), 1), (np.int64(42), 2), (7, 0)]
    for ids_in, sub in cases:
        fast = streams.uniform("test.compiled", 5, ids_in, sub=sub)
        reference = ((streams.bits("test.compiled", 5, ids_in, sub) >> _S11).astype(np.float64) + 0.5) * _TO_UNIT
        assert np.shape(fast) == np.shape(reference)
        assert np.array_equal(fast, reference)
    key = streams.day_key("test.compiled", 5)
    inside = np.array([uniform_at(key, i, s) for i, s in zip(ids[:200], subs[:200])])
    assert np.array_equal(inside, streams.uniform("test.compiled", 5, ids[:200], sub=subs[:200]))


def test_combined_keys_do_not_collide_where_packed_keys_did():
    """``id * 64 + k`` gave rider 0's trip 64 the key of rider 1's trip 0; combined keys keep every
    (rider, trip) pair apart, and differ from the plain one-part sub-counter."""
    from sim.streams import combine_keys

    riders, trips = np.meshgrid(np.arange(300), np.arange(300), indexing="ij")
    keys = combine_keys(riders, trips)
    assert keys.dtype == np.int64 and keys.shape == riders.shape
    assert np.unique(keys).size == keys.size                       # 90,000 pairs, 90,000 keys
    assert combine_keys(0, 64) != combine_keys(1, 0)
    assert combine_keys(5, 7) != combine_keys(7, 5)                # each part has its own lane
    assert combine_keys(3, 4096 + 1) != combine_keys(4, 1)         # past day 4096 too
    assert np.array_equal(combine_keys(np.arange(4), 2), [combine_keys(i, 2) for i in range(4)])
    assert combine_keys(np.empty(0, np.int64), 3).shape == (0,)
    from sim.streams import combine_at  # the compiled form, step by step, gives the same key
    key = np.uint64(0)
    for lane, part in enumerate((5, 2, 1)):
        key = np.uint64(combine_at(key, part, lane))
    assert key == combine_keys(5, 2, 1).view(np.uint64)
    negative = np.uint64(combine_at(np.uint64(combine_at(np.uint64(0), -7, 0)), 9, 1))
    assert negative == combine_keys(-7, 9).view(np.uint64)
    s = Streams(3)
    u = s.uniform("drivers.trip_quality", 0, np.zeros(2, np.int64), sub=combine_keys([0, 1], [64, 0]))
    assert u[0] != u[1]


def test_stream_names_are_declared_once():
    """A typo in a stream name raises instead of starting a new stream; a name declared twice raises."""
    from sim.streams import ENGINE_STREAMS, declare_streams

    assert len(set(ENGINE_STREAMS)) == len(ENGINE_STREAMS)
    with pytest.raises(ValueError, match="buyers.purchse_gap"):
        Streams(0).uniform("buyers.purchse_gap", 0, np.arange(3))
    with pytest.raises(ValueError, match="declared twice: buyers.dropout"):
        declare_streams("a_study_of_mine", ["buyers.dropout"])
    with pytest.raises(ValueError, match="declared twice: mine.x"):
        declare_streams("a_study_of_mine", ["mine.x", "mine.x"])
    assert declare_streams(__name__, ["tests.test_streams.mine"]) == ("tests.test_streams.mine",)
    assert declare_streams(__name__, ["tests.test_streams.mine"])   # the same owner again (a reload): allowed


def test_every_literal_stream_name_of_the_model_is_declared():
    """Read the source: every stream name the engine, sides and policies pass as a literal is declared,
    so a typo fails here, not only when its code path first runs."""
    import ast
    from pathlib import Path

    from sim.streams import ENGINE_STREAMS

    root = Path(__file__).resolve().parent.parent
    draws = {"uniform", "exponential", "normal", "gamma", "beta", "lognormal_mean_cv", "poisson", "round_stochastic",
             "bits", "day_key"}
    used = {}
    for path in [p for folder in ("agents", "sim", "policies") for p in (root / folder).rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in draws
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                used[node.args[0].value] = f"{path.name}:{node.lineno}"
    assert len(used) > 40
    assert {name: where for name, where in used.items() if name not in ENGINE_STREAMS} == {}
