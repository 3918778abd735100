"""Sellers (merchants, restaurants): the goods supply side.

A seller has a segment (SMB or enterprise), a quality (the chance an order
goes well), a price level, a rating built from buyers' reviews, and may buy
the premium plan (expansion revenue). Its baseline churn hazard is constant
and heterogeneous: the monthly churn probability is Beta(a, b) across sellers,
so a cohort's retention follows the shifted-beta-geometric model and its
retention rate rises with tenure (the fragile leave first). Satisfaction
follows recent sales against the seller's own expectation.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from agents.base import Side
from agents.lifecycle import monthly_churn_to_daily_hazard
from sim.streams import ATTRIBUTE_DAY, Streams

ENTERPRISE = 1
PRODUCTS = ("premium", "promoted")
"""The paid products a seller can take and drop: the premium plan (upsell), promoted listings (cross-sell)."""
FIELDS = {
    "quality": (np.float32, 0.0),         # probability an order goes well
    "price_level": (np.float32, 1.0),     # multiplies the market's order value
    "rating_sum": (np.float32, 0.0),      # sum of ratings received (1-5)
    "rating_count": (np.float32, 0.0),
    "expected_orders": (np.float32, 1.0),  # the seller's sales expectation, orders per day
    "sales_value_rate": (np.float32, 0.0),  # recent gross sales, currency per day (exponentially weighted)
    "outside_option": (np.float32, 1.0),  # net income per day the seller could earn elsewhere, currency
    "premium": (np.bool_, False),         # holds the premium plan
    "premium_day": (np.int32, -1),        # day of the last take-up
    "premium_hazard": (np.float32, 0.0),  # cumulative take-up hazard (not holding) or cancel hazard (holding)
    "premium_threshold": (np.float32, 0.0),  # its Exp(1) threshold
    "promoted": (np.bool_, False),        # holds promoted listings (the same four fields as the plan)
    "promoted_day": (np.int32, -1),
    "promoted_hazard": (np.float32, 0.0),
    "promoted_threshold": (np.float32, 0.0),
    "expansion_day": (np.int32, -1),      # day of the last take-up of any paid product
    "fees_paid": (np.float64, 0.0),       # paid-product fees to date, currency (part of revenue)
    "x": (np.float32, 0.0),               # position on the unit torus (delivery)
    "y": (np.float32, 0.0),
}


def new_side(capacity: int) -> Side:
    """An empty sellers side."""
    return Side("sellers", FIELDS, capacity)


def init_traits(sellers: Side, ids: np.ndarray, conf, referred: np.ndarray | bool, streams: Streams,
                market=None) -> None:
    """Draw segment, quality, price, expectation, outside option, churn hazard and position of new sellers.

    The outside option (currency per day) is what the seller's expected volume
    would earn through another channel that takes ``outside_option.take_rate``:
    expected orders x price level x the market's mean order value x (1 - that rate).
    """
    enterprise = streams.uniform("sellers.segment", ATTRIBUTE_DAY, ids) < conf.enterprise_share
    sellers.segment[ids] = np.where(enterprise, ENTERPRISE, 0)
    sellers.quality[ids] = streams.beta("sellers.quality", ATTRIBUTE_DAY, ids, conf.quality_a, conf.quality_b)
    sellers.price_level[ids] = streams.lognormal_mean_cv("sellers.price_level", ATTRIBUTE_DAY, ids, 1.0,
                                                         conf.price_level_cv)
    expected = streams.lognormal_mean_cv("sellers.expected_orders", ATTRIBUTE_DAY, ids,
                                         conf.expected_orders_per_day, conf.expected_orders_cv)
    sellers.expected_orders[ids] = np.where(enterprise, expected * conf.enterprise_weight, expected)
    hoped = expected_sales(sellers, ids, market)
    sellers.outside_option[ids] = hoped * (1.0 - conf.outside_option.take_rate)
    # Recent sales start at the seller's expectation, so experience reflects deviations from it,
    # not the warm-up of the moving average.
    sellers.sales_value_rate[ids] = hoped
    monthly = streams.beta("sellers.monthly_churn", ATTRIBUTE_DAY, ids, conf.churn.beta_a, conf.churn.beta_b)
    hazard = monthly_churn_to_daily_hazard(monthly)
    sellers.base_hazard[ids] = np.where(referred, hazard * conf.referral_churn_multiplier, hazard)
    for product in PRODUCTS:
        getattr(sellers, f"{product}_threshold")[ids] = streams.exponential(f"sellers.{product}_threshold",
                                                                            ATTRIBUTE_DAY, ids)
    sellers.x[ids] = streams.uniform("sellers.x", ATTRIBUTE_DAY, ids)
    sellers.y[ids] = streams.uniform("sellers.y", ATTRIBUTE_DAY, ids)


def mean_order_value(market) -> float:
    """The market's mean basket value per order, currency: Gamma-Gamma mean p gamma / (q - 1)
    (Fader, Hardie & Lee 2005); the mean spend when q <= 1 leaves it undefined is taken at q = 1.01."""
    spend = market.buyers.spend
    return float(spend.p * spend.gamma / max(spend.q - 1.0, 0.01))


def order_value_spread(market) -> float:
    """E[z^2] / E[z] of the basket value z per order, currency: Gamma-Gamma (p + 1) gamma / (q - 2) (the
    mean over buyers of p (p + 1) / nu^2, over that of p / nu); taken at q = 2.01 when q <= 2 leaves it
    undefined."""
    spend = market.buyers.spend
    return float((spend.p + 1.0) * spend.gamma / max(spend.q - 2.0, 0.01))


def rating(sellers: Side, prior_mean: float, prior_count: float) -> np.ndarray:
    """Shrunk mean rating (1-5): reviews pulled toward a prior, as buyers read them."""
    return (sellers.rating_sum + prior_mean * prior_count) / (sellers.rating_count + prior_count)


def choice_weights(sellers: Side, listed: np.ndarray, conf) -> np.ndarray:
    """Buyers' choice weight of each listed seller: rating, reviews, price, segment, paid products.

    weight = exp(w_rating (rating - prior mean) + w_reviews ln(1 + reviews) - w_price ln(price level))
    times ``enterprise_weight`` for enterprise sellers, ``premium.choice_boost``
    for premium ones and ``promoted.choice_boost`` for promoted ones
    (dimensionless, float32, one per id in ``listed``).

    Gathers and arithmetic run in compiled passes over the listed sellers;
    the logarithms and the exponential stay NumPy's float32 ufuncs, and every
    operation is done in the same dtype and order as the plain NumPy
    expression (:func:`_choice_weights_numpy`), so the weights are
    bit-identical to it. ln(1 + reviews) is looked up in a table of NumPy's
    own log1p of 0, 1, 2, ... when every review count is a whole number below
    max(1024, number listed), as counts are.
    """
    c = conf.choice
    scalars = (c.rating_prior_mean, c.rating_prior_count, c.w_rating, c.w_reviews, c.w_price,
               conf.enterprise_weight, conf.premium.choice_boost, conf.promoted.choice_boost)
    listed = np.asarray(listed)
    if not (_plain_numbers(*scalars) and listed.dtype.kind in "iu" and listed.ndim == 1 and _all_float32(
            sellers.rating_sum, sellers.rating_count, sellers.price_level)):
        return _choice_weights_numpy(sellers, listed, conf)
    f32 = np.float32
    listed = np.ascontiguousarray(listed, dtype=np.int64)
    top = min(max(_LOG1P_TABLE_MIN, listed.size), 1 << 24)   # float32 holds whole numbers exactly to 2**24
    top_count = _largest_whole_count(sellers.rating_count, listed, top)
    if top_count >= 0:   # NumPy's own log1p of 0, 1, ..., top_count: the same bits as log1p of the counts
        log1p_reviews = np.log1p(np.arange(top_count + 1, dtype=np.float32))
        by_count = True
    else:
        log1p_reviews = np.log1p(sellers.rating_count[listed])
        by_count = False
    weight, price = _rating_and_reviews_terms(
        sellers.rating_sum, sellers.rating_count, sellers.price_level, listed, log1p_reviews, by_count,
        f32(c.rating_prior_mean * c.rating_prior_count), f32(c.rating_prior_count), f32(c.rating_prior_mean),
        f32(c.w_rating), f32(c.w_reviews))
    log_price = np.log(price, out=price)
    _subtract_price_term(weight, log_price, f32(c.w_price))
    np.exp(weight, out=weight)
    _apply_factors(weight, sellers.segment, sellers.premium, sellers.promoted, listed, ENTERPRISE,
                   float(conf.enterprise_weight), float(conf.premium.choice_boost), float(conf.promoted.choice_boost))
    return weight


def _choice_weights_numpy(sellers: Side, listed: np.ndarray, conf) -> np.ndarray:
    """choice_weights as plain NumPy expressions (the reference; used for unusual dtypes)."""
    c = conf.choice
    r = rating(sellers, c.rating_prior_mean, c.rating_prior_count)[listed]
    log_w = (c.w_rating * (r - c.rating_prior_mean) + c.w_reviews * np.log1p(sellers.rating_count[listed])
             - c.w_price * np.log(sellers.price_level[listed]))
    weight = np.exp(log_w)
    weight *= np.where(sellers.segment[listed] == ENTERPRISE, conf.enterprise_weight, 1.0)
    weight *= np.where(sellers.premium[listed], conf.premium.choice_boost, 1.0)
    weight *= np.where(sellers.promoted[listed], conf.promoted.choice_boost, 1.0)
    return weight


def _plain_numbers(*values, float32_too: bool = False) -> bool:
    """Whether every value is a Python int or float (NumPy casts those to an array's float32),
    or with ``float32_too`` a NumPy float32 (the same in float32 arithmetic)."""
    types = (int, float, np.float32) if float32_too else (int, float)
    return all(type(v) in types for v in values)


def _all_float32(*arrays) -> bool:
    return all(np.asarray(a).dtype == np.float32 for a in arrays)


_LOG1P_TABLE_MIN = 1024
"""Review counts are looked up in a table of log1p values when all are whole numbers below
max(this, number of listed sellers)."""


@njit(cache=True)
def _largest_whole_count(rating_count, listed, top):
    """The largest rating_count[listed] if every one is a whole number in [0, top), else -1."""
    largest = 0
    ok = True
    for k in range(listed.size):
        rc = rating_count[listed[k]]
        w = np.int64(rc) if (rc >= 0 and rc < top) else np.int64(-1)   # NaN: -1
        ok &= (w >= 0) & (w == rc)
        largest = max(largest, w)
    return largest if ok else -1


@njit(cache=True)
def _rating_and_reviews_terms(rating_sum, rating_count, price_level, listed, log1p_reviews, by_count, prior_sum,
                              prior_count, prior_mean, w_rating, w_reviews):
    """Per listed seller (float32): w_rating (shrunk rating - prior mean) + w_reviews ln(1 + reviews),
    and the price level.

    The shrunk rating is (rating_sum + prior_sum) / (rating_count + prior_count),
    float32 throughout as in :func:`rating`. ln(1 + reviews) is
    ``log1p_reviews[count]`` (a table) when ``by_count``, else ``log1p_reviews[k]``.
    """
    n = listed.size
    term = np.empty(n, np.float32)
    price = np.empty(n, np.float32)
    for k in range(n):
        i = listed[k]
        rc = rating_count[i]
        r = (rating_sum[i] + prior_sum) / (rc + prior_count)
        l1 = log1p_reviews[np.int64(rc)] if by_count else log1p_reviews[k]
        term[k] = w_rating * (r - prior_mean) + w_reviews * l1
        price[k] = price_level[i]
    return term, price


@njit(cache=True)
def _subtract_price_term(log_w, log_price, w_price):
    """log_w -= w_price * log_price, in place (float32)."""
    for k in range(log_w.size):
        log_w[k] = log_w[k] - w_price * log_price[k]


@njit(cache=True)
def _apply_factors(weight, segment, premium, promoted, listed, enterprise, enterprise_weight, premium_boost,
                   promoted_boost):
    """Multiply weights by the segment, premium and promoted factors, in float64, rounding back to float32.

    Same as NumPy's ``weight *= np.where(cond, factor, 1.0)`` on a float32 array
    (a float64 product cast back); a factor of 1 leaves the weight unchanged.
    """
    for k in range(weight.size):
        i = listed[k]
        w = np.float32(np.float64(weight[k]) * (enterprise_weight if segment[i] == enterprise else 1.0))
        w = np.float32(np.float64(w) * (premium_boost if premium[i] else 1.0))   # x 1.0: exact
        weight[k] = np.float32(np.float64(w) * (promoted_boost if promoted[i] else 1.0))


def update_sales_experience(sellers: Side, sales_value_today: np.ndarray, conf, neutral: float) -> None:
    """Update recent sales (currency per day) and move satisfaction toward what selling here earns.

    ``sales_value_today`` holds each seller's gross sales today (basket value of
    completed orders, currency). Recent sales (``sales_value_rate``) move
    1/``sales_window_days`` of the way toward it, for every seller. An active
    seller keeps ``(1 - commission)`` of its sales and pays the fees of the paid
    products it holds (:func:`product_fees`); the experience level compares that net income per day with the
    seller's ``outside_option`` (what the same effort earns through another
    channel, currency per day):

        ratio = max(0, recent sales x (1 - commission) - product fees) / outside option
        level = ratio^k o / (1 + ratio^k o),  o = neutral / (1 - neutral)

    i.e. logistic(k ln ratio + logit(neutral)): exactly neutral when the platform
    pays as well as the outside option, 0 with no sales at all, and lower at a
    higher commission for the same sales. Satisfaction of active sellers
    moves ``experience_learning_rate`` of the way toward the level (per day).
    """
    odds = neutral / (1.0 - neutral)
    _sales_experience_pass(sellers.sales_value_rate, np.ascontiguousarray(sales_value_today, dtype=np.float64),
                           float(conf.sales_window_days), sellers.alive, sellers.activation_day,
                           sellers.outside_option, product_fees(sellers, conf), 1.0 - float(conf.commission),
                           float(conf.sales_sensitivity), odds,
                           float(conf.experience_learning_rate), sellers.satisfaction)


def product_fees(sellers: Side, conf) -> np.ndarray:
    """Each seller's fees for the paid products it holds, currency per day (float64)."""
    fees = np.zeros(sellers.n)
    for product in PRODUCTS:
        fees += np.where(getattr(sellers, product), float(getattr(conf, product).fee_per_day), 0.0)
    return fees


@njit(cache=True)
def _sales_experience_pass(sales_value_rate, sales_today, window, alive, activation_day, outside_option, fees,
                           keep_share, sensitivity, odds, learning_rate, satisfaction):
    """One pass over the sellers: recent sales for all; for active ones, the net-income level and the
    satisfaction move (see update_sales_experience; float64 arithmetic, float32 storage)."""
    for i in range(sales_value_rate.size):
        rate = sales_value_rate[i] + (sales_today[i] - sales_value_rate[i]) / window
        sales_value_rate[i] = rate
        if alive[i] and activation_day[i] >= 0:
            net = rate * keep_share - fees[i]
            ratio = net / outside_option[i] if net > 0.0 else 0.0
            boosted = ratio ** sensitivity * odds
            level = boosted / (1.0 + boosted)
            s = satisfaction[i]
            satisfaction[i] = s + learning_rate * (level - s)


def review_stars(success: np.ndarray, u: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Stars (1-5) a buyer gives a seller: a successful order 4, or 5 with chance ``quality``; a failed
    one 1 or 2 (``u``: one uniform per order)."""
    return np.where(success, 4.0 + (u < quality), 1.0 + (u < 0.5))


def expected_stars(quality: np.ndarray) -> np.ndarray:
    """Mean stars per review of a seller whose orders succeed with chance ``quality`` (:func:`review_stars`):
    q (4 + q) + (1 - q) 1.5."""
    quality = np.asarray(quality, dtype=np.float64)
    return quality * (4.0 + quality) + (1.0 - quality) * 1.5


def expected_choice_weight(rating_sum: np.ndarray, rating_count: np.ndarray, price_level: np.ndarray,
                           segment: np.ndarray, holds: dict[str, np.ndarray], conf) -> np.ndarray:
    """Buyers' choice weight (:func:`choice_weights`) of sellers with the given reviews (counts may be
    fractional: expected counts), float64; ``holds`` gives each paid product's chance of being held, and
    a product multiplies the weight by 1 + chance x (choice_boost - 1) (exactly the boost when held)."""
    c = conf.choice
    r = (rating_sum + c.rating_prior_mean * c.rating_prior_count) / (rating_count + c.rating_prior_count)
    weight = np.exp(c.w_rating * (r - c.rating_prior_mean) + c.w_reviews * np.log1p(rating_count)
                    - c.w_price * np.log(price_level))
    weight = weight * np.where(segment == ENTERPRISE, conf.enterprise_weight, 1.0)
    for product in PRODUCTS:
        weight = weight * (1.0 + holds[product] * (getattr(conf, product).choice_boost - 1.0))
    return weight


_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(9)
"""Gauss-Hermite nodes and weights of a standard normal (9 points), for
:func:`expected_sales_experience_level`."""


def expected_sales_experience_level(sales_rate: np.ndarray, sales_today: np.ndarray, price_level: np.ndarray,
                                    fees: np.ndarray, outside_option: np.ndarray, conf, neutral: float,
                                    market) -> np.ndarray:
    """Mean over the noise of a seller's recent sales of the level satisfaction moves toward (0-1):
    logistic(k ln(net income / outside option) + logit(neutral)), 0 with no net income, the rule of
    :func:`update_sales_experience`.

    Recent sales are an exponential mean over ``sales_window_days`` W of daily sales
    whose mean is ``sales_today`` (currency per day): orders come one by one, each
    of value price level x a Gamma-Gamma basket, so recent sales vary around their
    mean ``sales_rate`` with variance sales_today x price level x
    :func:`order_value_spread` / (2W - 1) (a compound Poisson stream through the mean).
    Taken as log-normal with that mean and variance, by Gauss-Hermite quadrature:
    a seller with a handful of orders per window often sits at no sales at all,
    and feels that, which its mean sales alone would hide.
    """
    variance = (np.maximum(sales_today, 0.0) * price_level * order_value_spread(market)
                / (2.0 * conf.sales_window_days - 1.0))
    mean = np.maximum(sales_rate, 1e-12)
    sigma2 = np.log1p(variance / mean ** 2)
    shape = np.broadcast_shapes(np.shape(mean), np.shape(sigma2), np.shape(fees), np.shape(outside_option))
    mean, sigma2, fees, outside_option = (np.ascontiguousarray(np.broadcast_to(a, shape), dtype=np.float64).ravel()
                                          for a in (mean, sigma2, fees, outside_option))
    # compiled: the LTV forecast calls this every week of a 3-year horizon for every seller, and
    # numpy's (nodes x sellers) temporaries made it most of a large run's summary time
    level = _mean_level_kernel(mean, sigma2, 1.0 - conf.commission, fees, outside_option,
                               float(conf.sales_sensitivity), neutral / (1.0 - neutral), _NODES,
                               _WEIGHTS / _WEIGHTS.sum())
    return level.reshape(shape)


@njit(cache=True)
def _mean_level_kernel(mean, sigma2, keep, fees, outside_option, sensitivity, odds, nodes, weights):
    """The level of :func:`update_sales_experience` averaged over log-normal recent sales (mean, log-variance sigma2) at
    the Gauss-Hermite ``nodes``; ``keep`` = 1 - commission, ``odds`` = neutral / (1 - neutral)."""
    out = np.empty(mean.size)
    for i in range(mean.size):
        spread = np.sqrt(sigma2[i])
        total = 0.0
        for j in range(nodes.size):
            net = mean[i] * np.exp(spread * nodes[j] - sigma2[i] / 2.0) * keep - fees[i]
            boosted = (max(net, 0.0) / outside_option[i]) ** sensitivity * odds
            total += weights[j] * (boosted / (1.0 + boosted))
        out[i] = total
    return out


def sales_success(sellers: Side, ids: np.ndarray, market) -> np.ndarray:
    """A seller's success: recent sales / the sales it expected (its expected orders x price level x the
    market's mean order value); 1 = selling as hoped (dimensionless, >= 0)."""
    return sellers.sales_value_rate[ids] / np.maximum(expected_sales(sellers, ids, market), 1e-12)


def expected_sales(sellers: Side, ids: np.ndarray, market) -> np.ndarray:
    """The sales each seller hoped for, currency per day: expected orders x price level x the market's
    mean order value (float64)."""
    return (sellers.expected_orders[ids].astype(np.float64) * sellers.price_level[ids]
            * mean_order_value(market))


def product_value_at(sales_rate: np.ndarray, conf, product: str) -> np.ndarray:
    """What a paid product earns a seller with recent sales ``sales_rate`` (currency per day) against its
    fee (dimensionless, float64; 1 = pays for itself).

    A product multiplies the seller's choice weight by b (``choice_boost``); with
    the seller's share of buyers small, its sales would be 1/b of today's
    without it, so it brings recent sales x (1 - 1/b) x (1 - commission) of net
    income per day, divided by the fee (a free product is worth 1e9 fees).
    """
    return _elementwise(_value_kernel, sales_rate, then=(_value_params(getattr(conf, product), conf),))


def take_up_rate(product_conf, satisfaction: np.ndarray, success: np.ndarray, neutral: float) -> np.ndarray:
    """Hazard per day that a seller not holding the product takes it up (float64):
    upgrade_rate x exp(satisfaction_sensitivity (s - neutral)) x success^success_sensitivity, success
    as in :func:`sales_success`."""
    return _elementwise(_hazard_kernel, satisfaction, success, then=(_take_up_params(product_conf, neutral), False))


def cancel_rate(product_conf, satisfaction: np.ndarray, value: np.ndarray, neutral: float) -> np.ndarray:
    """Hazard per day that a holder cancels the product while staying on the marketplace (float64):
    cancel_rate x exp(-satisfaction_sensitivity (s - neutral)) x exp(value_sensitivity (1 - value)),
    value = :func:`product_value_at` (capped at 50 fees: beyond, the product is simply kept)."""
    return _elementwise(_hazard_kernel, satisfaction, value, then=(_cancel_params(product_conf, neutral), True))


# The product rules, one seller at a time: the daily pass (update_products) and the LTV forecast (through
# the array functions above) compute them here and nowhere else. exp(sensitivity (s - neutral)) is
# lifecycle.experience_multiplier.
def _take_up_params(p, neutral: float) -> tuple[float, float, float, float]:
    return float(p.upgrade_rate), float(p.satisfaction_sensitivity), float(p.success_sensitivity), float(neutral)


def _cancel_params(p, neutral: float) -> tuple[float, float, float, float]:
    return float(p.cancel_rate), float(p.satisfaction_sensitivity), float(p.value_sensitivity), float(neutral)


def _value_params(p, conf) -> tuple[float, float, float]:
    return float(p.choice_boost), 1.0 - float(conf.commission), float(p.fee_per_day)


@njit(cache=True)
def _take_up_one(satisfaction, success, params):
    upgrade_rate, satisfaction_sensitivity, success_sensitivity, neutral = params
    return (upgrade_rate * np.exp(satisfaction_sensitivity * (satisfaction - neutral))
            * success ** success_sensitivity)


@njit(cache=True)
def _cancel_one(satisfaction, value, params):
    cancel, satisfaction_sensitivity, value_sensitivity, neutral = params
    return (cancel * np.exp(-satisfaction_sensitivity * (satisfaction - neutral))
            * np.exp(value_sensitivity * (1.0 - min(value, 50.0))))


@njit(cache=True)
def _product_value_one(sales_rate, params):
    boost, keep, fee = params
    return sales_rate * (1.0 - 1.0 / boost) * keep / fee if fee > 0.0 else 1e9


def _elementwise(kernel, *arrays: np.ndarray, then: tuple) -> np.ndarray:
    """``kernel(*arrays, *then)`` with ``arrays`` broadcast together as flat float64 arrays; the result in
    their shape."""
    arrays = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in arrays))
    flat = (np.ascontiguousarray(a).ravel() for a in arrays)
    return kernel(*flat, *then).reshape(arrays[0].shape)


# Loops over the rules by name, not a loop taking the rule as an argument: numba does not keep such a
# kernel in its cache, so every process would compile it again.
@njit(cache=True)
def _hazard_kernel(satisfaction, other, params, cancel):
    """Take-up (``other``: sales success) or, with ``cancel``, cancel hazards (``other``: product value)."""
    out = np.empty(satisfaction.size)
    for i in range(out.size):
        out[i] = (_cancel_one(satisfaction[i], other[i], params) if cancel
                  else _take_up_one(satisfaction[i], other[i], params))
    return out


@njit(cache=True)
def _value_kernel(sales_rate, params):
    out = np.empty(sales_rate.size)
    for i in range(out.size):
        out[i] = _product_value_one(sales_rate[i], params)
    return out


@njit(cache=True)
def _product_pass(held, hazard, threshold, alive, activation_day, satisfaction, sales_value_rate, expected_orders,
                  price_level, order_value, take_up, cancel, value):
    """One product, one pass over the sellers: holders add today's cancel hazard, activated non-holders
    today's take-up hazard (float64, stored float32 as the cumulative hazard is); those who reach their
    threshold are returned (ids taking it up, ids cancelling it)."""
    taken = np.empty(held.size, np.int64)
    cancelled = np.empty(held.size, np.int64)
    n_taken = n_cancelled = 0
    for i in range(held.size):
        if not alive[i]:
            continue
        if held[i]:
            hazard[i] += _cancel_one(np.float64(satisfaction[i]),
                                     _product_value_one(np.float64(sales_value_rate[i]), value), cancel)
            if hazard[i] >= threshold[i]:
                cancelled[n_cancelled] = i
                n_cancelled += 1
        elif activation_day[i] >= 0:
            hoped = np.float64(expected_orders[i]) * np.float64(price_level[i]) * order_value
            hazard[i] += _take_up_one(np.float64(satisfaction[i]), sales_value_rate[i] / max(hoped, 1e-12), take_up)
            if hazard[i] >= threshold[i]:
                taken[n_taken] = i
                n_taken += 1
    return taken[:n_taken], cancelled[:n_cancelled]


def take_product(sellers: Side, ids: np.ndarray, product: str, day: int, streams: Streams) -> None:
    """Sellers ``ids`` take ``product`` today (on their own or accepting a CS offer): its cumulative hazard
    restarts toward a fresh Exp(1) cancel threshold, drawn per (day, id)."""
    getattr(sellers, product)[ids] = True
    getattr(sellers, f"{product}_day")[ids] = day
    sellers.expansion_day[ids] = day
    getattr(sellers, f"{product}_hazard")[ids] = 0.0
    getattr(sellers, f"{product}_threshold")[ids] = streams.exponential(f"sellers.{product}_cancel_threshold",
                                                                        day, ids)


def drop_product(sellers: Side, ids: np.ndarray, product: str, day: int, streams: Streams) -> None:
    """Sellers ``ids`` stop paying for ``product`` today: its hazard restarts toward a fresh take-up threshold."""
    getattr(sellers, product)[ids] = False
    getattr(sellers, f"{product}_hazard")[ids] = 0.0
    getattr(sellers, f"{product}_threshold")[ids] = streams.exponential(f"sellers.{product}_threshold", day, ids)


def update_products(sellers: Side, day: int, conf, satisfaction: np.ndarray, neutral: float, market,
                    streams: Streams) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Today's take-ups and cancellations of every paid product (cumulative-hazard rule).

    Holders who stay on the marketplace add today's :func:`cancel_rate` to
    the product's cumulative hazard and cancel when it reaches their Exp(1)
    threshold; activated non-holders (not those who cancelled today) add
    :func:`take_up_rate` and take the product when theirs reaches it.
    Returns {product: (ids taking it up, ids cancelling it)}.
    """
    out = {}
    # writeable: with experience effects off this is the model's read-only neutral array, whose type would
    # compile the pass a second time (a 30-second stall in a run after `twosided warmup`)
    satisfaction = np.require(satisfaction, requirements=["C", "W"])
    for product in PRODUCTS:
        p = getattr(conf, product)
        taken, cancelled = _product_pass(
            getattr(sellers, product), getattr(sellers, f"{product}_hazard"),
            getattr(sellers, f"{product}_threshold"), sellers.alive, sellers.activation_day, satisfaction,
            sellers.sales_value_rate, sellers.expected_orders, sellers.price_level, float(mean_order_value(market)),
            _take_up_params(p, neutral), _cancel_params(p, neutral),
            _value_params(p, conf))
        drop_product(sellers, cancelled, product, day, streams)
        take_product(sellers, taken, product, day, streams)
        out[product] = (taken, cancelled)
    return out


def drop_products_of_departed(sellers: Side, day: int, streams: Streams) -> dict[str, int]:
    """Products of sellers who left the marketplace end with them (cancelled with the account), so a seller
    won back starts without them. Returns how many ended, per product."""
    out = {}
    for product in PRODUCTS:
        gone = np.flatnonzero(getattr(sellers, product) & ~sellers.alive)
        drop_product(sellers, gone, product, day, streams)
        out[product] = gone.size
    return out
