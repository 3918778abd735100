"""`twosided calibrate`: fit the model to a company's own transaction log, and show that it forecasts.

    twosided calibrate data=orders.csv [holdout_days=90] [columns.customer=user_id]
        [survival=sellers_cohorts.csv survival_side=sellers] [market=goods name=calibrated] [out=DIR]
    twosided calibrate pilot=pilot_agents.parquet policy=NAME design=... [fit=[...]]   (experiments/pilot_fit.py)

Reads a transaction log (one row per order: customer, date, amount), counts
orders by the same customer on the same day as one transaction, fits BG/NBD
(purchase rate and drop-out, in days) and Gamma-Gamma (spend per transaction)
by maximum likelihood (experiments/fitting.py), and writes into the output
folder ``fit.json``, ``market/<name>.yaml`` (a market config carrying the
fitted parameters, usable as ``market=PATH`` by every command) and, with
``holdout_days=N``, the holdout forecast check: ``holdout.parquet`` and
``report.md`` / ``report.html``.

Time convention (days): day 0 is the log's first date; a customer's first
transaction (its trial, in BG/NBD terms) is at the middle of its first day,
d0 + 0.5, and a later transaction on day d is at d + 0.5. So t_x = d_last - d0
and T = (end of the calibration period) - (d0 + 0.5). In simulations a
customer joins at d0 + 0.5 and its purchases are logged on floor(time), with
the same one-transaction-per-day rule as the real log.

Bad input ends as one :class:`CalibrationError` paragraph naming the file, the
line and the problem; the command prints it and exits with code 2.
"""
from __future__ import annotations

import base64
import io
import json
import math
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from agents import buyers as buyers_rules
from experiments import fitting
from experiments.checks import OutputError, check_output_dir, output_fault
from experiments.config import CONF_DIR, USER_CONFIG_ENV, group_file, group_options
from sim.streams import ATTRIBUTE_DAY, Streams, declare_streams

PERIOD_DAYS = 30  # the engine's churn probabilities are per 30-day month
declare_streams(__name__, ("calibrate.alive", "calibrate.posterior_rate", "calibrate.posterior_dropout",
                           "calibrate.trial_basket"))


class CalibrationError(ValueError):
    """A problem with the user's input; the message is one paragraph."""


# --------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------

def load_options(args: list[str]):
    """conf/calibrate.yaml with ``key=value`` overrides; unknown keys are an error."""
    base = OmegaConf.load(CONF_DIR / "calibrate.yaml")
    OmegaConf.set_struct(base, True)
    bad = [a for a in args if "=" not in a or a.startswith("=")]
    if bad:
        raise CalibrationError(f"twosided calibrate: argument {bad[0]!r} is not key=value. "
                               f"Example: twosided calibrate data=orders.csv holdout_days=90.")
    try:
        opts = OmegaConf.merge(base, OmegaConf.from_dotlist(list(args)))
    except OmegaConfBaseException as error:
        known = ", ".join(_keys(base))
        key = getattr(error, "full_key", None) or str(error).splitlines()[0]
        raise CalibrationError(f"twosided calibrate: unknown or invalid option {key!r}. "
                               f"Known options: {known}.") from None
    if opts.data is None and opts.survival is None:
        raise CalibrationError("twosided calibrate: nothing to fit. Give data=PATH (a transaction log) "
                               "and/or survival=PATH (a cohort survival table), or pilot=PATH (a pilot's "
                               "per-agent export, to fit a policy's effect sizes).")
    for key in ("holdout_days", "replicates", "seed"):
        value = opts[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < (1 if key == "replicates" else 0):
            raise CalibrationError(f"twosided calibrate: {key}={value!r} must be a whole number "
                                   f"{'>= 1' if key == 'replicates' else '>= 0'}.")
    if opts.survival_side not in ("sellers", "drivers"):
        raise CalibrationError(f"twosided calibrate: survival_side={opts.survival_side!r} must be sellers or drivers.")
    for key in ("start", "end"):
        value = opts.period[key]
        if value is not None:
            try:
                opts.period[key] = str(pd.Timestamp(str(value)).date())
            except ValueError:
                raise CalibrationError(f"twosided calibrate: period.{key}={value!r} is not a date; "
                                       f"write YYYY-MM-DD.") from None
    if not isinstance(opts.outlying_gap_days, int) or opts.outlying_gap_days < 1:
        raise CalibrationError(f"twosided calibrate: outlying_gap_days={opts.outlying_gap_days!r} must be a whole "
                               f"number of days >= 1.")
    markets = group_options("market")
    if opts.market not in markets:
        raise CalibrationError(f"twosided calibrate: market={opts.market!r} is not in conf/market/ "
                               f"(one of {', '.join(markets)}).")
    return opts


def _keys(node, prefix="") -> list[str]:
    out = []
    for k, v in node.items():
        if OmegaConf.is_dict(v):
            out += _keys(v, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}")
    return out


# --------------------------------------------------------------------------
# reading inputs
# --------------------------------------------------------------------------

def _read_table(path: Path, what: str) -> tuple[pd.DataFrame, bool]:
    """A CSV (every column as text) or Parquet file; returns (frame, is_csv)."""
    if not path.exists():
        raise CalibrationError(f"{path}: {what} not found.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path), False
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True), True
    except pd.errors.EmptyDataError:
        raise CalibrationError(f"{path}: the {what} is empty (no header, no rows).") from None
    except Exception as error:  # unreadable file: name it, say why
        raise CalibrationError(f"{path}: cannot read the {what} as "
                               f"{'Parquet' if suffix in ('.parquet', '.pq') else 'CSV'}: {error}") from None


def _where(is_csv: bool, rows: np.ndarray) -> str:
    """'line 7' (CSV, counting the header as line 1) or 'row 6' (Parquet, from 1)."""
    rows = np.asarray(rows)
    first = int(rows[0])
    label = f"line {first + 2}" if is_csv else f"row {first + 1}"
    if rows.size > 1:
        more = ", ".join(str(int(r) + (2 if is_csv else 1)) for r in rows[1:4])
        label += f" (and {rows.size - 1} more {'line' if is_csv else 'row'}{'s' if rows.size > 2 else ''}: {more}"
        label += ", ..." if rows.size > 4 else ""
        label += ")"
    return label


def _missing(series: pd.Series) -> np.ndarray:
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        text = series.astype("string")
        return (series.isna() | (text.str.strip() == "")).to_numpy(dtype=bool)
    return series.isna().to_numpy()


# A UTC offset or Z after a time of day: the day of an order is its local date as written,
# so an offset is dropped rather than converted (mixed offsets then parse alike).
_TZ_SUFFIX = r"^(.*\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?|\d{4}-\d{2}-\d{2})\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$"
# YYYYMMDD is a date; any other bare number (a day count, a Unix time) is ambiguous.
_BARE_NUMBER = r"^[+-]?\d+(?:\.\d*)?$"
_COMPACT_DATE = r"^\d{8}$"


def _parse_dates(series: pd.Series) -> pd.Series:
    """Dates (normalised to midnight, no timezone) of a date column; NaT where unreadable.

    Timezone-aware values keep their local date; text keeps the date as written
    (a trailing offset is dropped), so a log mixing offsets parses cleanly.
    Bare numbers other than YYYYMMDD are NaT: :func:`read_log` refuses them.
    """
    if pd.api.types.is_datetime64_any_dtype(series):
        parsed = series.dt.tz_localize(None) if getattr(series.dt, "tz", None) is not None else series
        return parsed.astype("datetime64[ns]").dt.normalize()
    text = series.astype("string").str.strip()
    text = text.str.replace(_TZ_SUFFIX, r"\1", regex=True).str.strip()
    numeric = text.str.fullmatch(_BARE_NUMBER).fillna(False) & ~text.str.fullmatch(_COMPACT_DATE).fillna(False)
    parsed = pd.to_datetime(text.where(~numeric), errors="coerce", format="ISO8601")
    retry = parsed.isna() & text.notna() & (text != "") & ~numeric
    if retry.any():
        again = pd.to_datetime(text[retry], errors="coerce", format="mixed")
        parsed = parsed.astype("datetime64[ns]")
        parsed[retry] = again.astype("datetime64[ns]")
    return parsed.astype("datetime64[ns]").dt.normalize()


def _is_bare_number(value) -> bool:
    import re

    text = str(value).strip()
    return bool(re.fullmatch(_BARE_NUMBER, text)) and not re.fullmatch(_COMPACT_DATE, text)


def check_dates(path: Path, is_csv: bool, days: pd.Series, raw: pd.Series, column: str,
                period_start=None, period_end=None, min_gap_days: int = 30) -> None:
    """Refuse dates outside the log's stated period, or (no period stated) far outside its bulk.

    The bulk is the span of the central 90% of orders (5th to 95th percentile);
    a date farther than that span (and at least ``min_gap_days``) before or
    after it is taken for a typo: one such date would stretch the window the
    fit sees. The error names the lines.
    """
    stated = [pd.Timestamp(v) if v is not None else None for v in (period_start, period_end)]
    if stated[0] is not None or stated[1] is not None:
        outside = np.zeros(len(days), dtype=bool)
        if stated[0] is not None:
            outside |= (days < stated[0]).to_numpy()
        if stated[1] is not None:
            outside |= (days > stated[1]).to_numpy()
        bad = np.flatnonzero(outside)
        if bad.size:
            when = " to ".join(str(v.date()) if v is not None else "..." for v in stated)
            raise CalibrationError(f"{path}, {_where(is_csv, bad)}: the date {str(raw.iloc[bad[0]])!r} (column "
                                   f"{column!r}) lies outside the log's stated period {when} (period.start, "
                                   f"period.end). Fix or remove those rows, or widen the period.")
        return
    day = (days - days.min()).dt.days.to_numpy()
    low, high = np.percentile(day, [5, 95], method="lower"), np.percentile(day, [5, 95], method="higher")
    low, high = int(low[0]), int(high[1])
    gap = max(int(min_gap_days), high - low + 1)
    bad = np.flatnonzero((day < low - gap) | (day > high + gap))
    if bad.size:
        first = days.min() + pd.Timedelta(days=low)
        last = days.min() + pd.Timedelta(days=high)
        raise CalibrationError(
            f"{path}, {_where(is_csv, bad)}: the date {str(raw.iloc[bad[0]])!r} (column {column!r}) lies far "
            f"outside the bulk of the log (90% of orders fall between {first.date()} and {last.date()}; more "
            f"than {gap} days beyond that is taken for a typo, and would stretch the window the fit sees). Fix "
            f"or remove those rows, or state the log's period with period.start=YYYY-MM-DD "
            f"period.end=YYYY-MM-DD.")


def read_log(path, customer: str = "customer_id", date: str = "date", amount: str = "amount",
             period_start=None, period_end=None, min_gap_days: int = 30) -> pd.DataFrame:
    """The orders of a transaction log: columns customer (text), date (day), amount (float).

    Every row is checked; the first problem found raises a CalibrationError
    naming the file, the line and the problem. No row is dropped. Dates outside
    the stated period (``period_start``/``period_end``, dates), or with none
    stated, far outside the bulk of the log (:func:`check_dates`), are refused.
    """
    path = Path(path)
    frame, is_csv = _read_table(path, "transaction log")
    missing = [c for c in (customer, date, amount) if c not in frame.columns]
    if missing:
        names = {customer: "columns.customer", date: "columns.date", amount: "columns.amount"}
        raise CalibrationError(
            f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
            f"(found: {', '.join(repr(str(c)) for c in frame.columns)}). Name the right one with "
            f"{names[missing[0]]}=COLUMN.")
    if len(frame) == 0:
        raise CalibrationError(f"{path}: the transaction log is empty (a header but no orders).")
    ids = frame[customer]
    bad = np.flatnonzero(_missing(ids))
    if bad.size:
        raise CalibrationError(f"{path}, {_where(is_csv, bad)}: the customer id (column {customer!r}) is empty.")
    raw_date = frame[date]
    bad = np.flatnonzero(_missing(raw_date))
    if bad.size:
        raise CalibrationError(f"{path}, {_where(is_csv, bad)}: the date (column {date!r}) is empty.")
    days = _parse_dates(raw_date)
    bad = np.flatnonzero(days.isna().to_numpy())
    if bad.size:
        value = raw_date.iloc[bad[0]]
        why = (" is a bare number (a day count or a Unix time is ambiguous)" if _is_bare_number(value)
               else "")
        raise CalibrationError(f"{path}, {_where(is_csv, bad)}: cannot read the date {str(value)!r} "
                               f"(column {date!r}){why}; write dates as YYYY-MM-DD (a time of day may follow).")
    check_dates(path, is_csv, days, raw_date, date, period_start, period_end, min_gap_days)
    raw_amount = frame[amount]
    bad = np.flatnonzero(_missing(raw_amount))
    if bad.size:
        raise CalibrationError(f"{path}, {_where(is_csv, bad)}: the amount (column {amount!r}) is empty.")
    if pd.api.types.is_bool_dtype(raw_amount):
        raise CalibrationError(f"{path}, {_where(is_csv, np.arange(len(frame)))}: the amount (column {amount!r}) "
                               f"is true/false, not a number.")
    values = pd.to_numeric(raw_amount.astype("string").str.strip() if is_csv or raw_amount.dtype == object
                           else raw_amount, errors="coerce").astype(float)
    bad = np.flatnonzero(values.isna().to_numpy() | ~np.isfinite(values.to_numpy()))
    if bad.size:
        raise CalibrationError(f"{path}, {_where(is_csv, bad)}: the amount {str(raw_amount.iloc[bad[0]])!r} "
                               f"(column {amount!r}) is not a number.")
    bad = np.flatnonzero(values.to_numpy() < 0)
    if bad.size:
        raise CalibrationError(f"{path}, {_where(is_csv, bad)}: the amount {str(raw_amount.iloc[bad[0]])!r} "
                               f"(column {amount!r}) is negative; amounts must be >= 0 (leave refunds out of the "
                               f"log, or net them into their order).")
    return pd.DataFrame({"customer": ids.astype(str).str.strip().to_numpy(), "date": days.to_numpy(),
                         "amount": values.to_numpy()})


@dataclass
class Transactions:
    """A log with same-day orders merged: one row per (customer, day)."""

    customers: np.ndarray      # customer id (text), index = customer number
    customer: np.ndarray       # per transaction: customer number
    day: np.ndarray            # per transaction: days since the log's first date
    amount: np.ndarray         # per transaction: summed amount of the day's orders
    first_day: np.ndarray      # per customer: day of its first transaction
    start: pd.Timestamp        # the log's first date
    n_days: int                # days from the first to the last date, inclusive
    orders: int                # rows of the log


def to_transactions(orders: pd.DataFrame) -> Transactions:
    start = orders["date"].min()
    day = ((orders["date"] - start).dt.days).to_numpy(dtype=np.int64)
    codes, customers = pd.factorize(orders["customer"], sort=True)
    grouped = (pd.DataFrame({"c": codes, "d": day, "a": orders["amount"].to_numpy()})
               .groupby(["c", "d"], sort=True)["a"].sum().reset_index())
    c = grouped["c"].to_numpy(np.int64)
    d = grouped["d"].to_numpy(np.int64)
    first = np.full(customers.size, np.iinfo(np.int64).max)
    np.minimum.at(first, c, d)
    return Transactions(np.asarray(customers, dtype=object), c, d, grouped["a"].to_numpy(float), first,
                        pd.Timestamp(start), int(day.max()) + 1, len(orders))


@dataclass
class Calibration:
    """Each calibration-period customer's BG/NBD summary and repeat spend, and what it did next."""

    index: np.ndarray          # customer numbers (into Transactions.customers)
    x: np.ndarray              # repeat transactions in the calibration period
    t_x: np.ndarray            # time of the last one since the first transaction, days
    T: np.ndarray              # time from the first transaction to the end of the calibration period, days
    mean_spend: np.ndarray     # mean amount of the repeat transactions (nan when x = 0)
    holdout: np.ndarray        # repeat transactions in the holdout
    days: int                  # length of the calibration period, days


def summarise(tx: Transactions, calibration_days: int) -> Calibration:
    """x, t_x, T, repeat spend for customers whose first transaction is in the calibration period."""
    n = tx.customers.size
    repeat = tx.day > tx.first_day[tx.customer]
    in_cal = tx.day < calibration_days
    cal_repeat = repeat & in_cal
    x = np.bincount(tx.customer[cal_repeat], minlength=n)
    last = tx.first_day.astype(float).copy()
    np.maximum.at(last, tx.customer[cal_repeat], tx.day[cal_repeat].astype(float))
    spend = np.bincount(tx.customer[cal_repeat], weights=tx.amount[cal_repeat], minlength=n)
    hold = np.bincount(tx.customer[repeat & ~in_cal], minlength=n)
    keep = np.flatnonzero(tx.first_day < calibration_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(x > 0, spend / np.maximum(x, 1), np.nan)
    return Calibration(keep, x[keep].astype(float), (last - tx.first_day)[keep],
                       calibration_days - (tx.first_day[keep] + 0.5), mean[keep], hold[keep].astype(float),
                       calibration_days)


def read_survival(path, cohort: str = "cohort", period: str = "period", active: str = "active") -> list[np.ndarray]:
    """A cohort survival table -> one array of active counts n_0, n_1, ... per cohort.

    Periods are 30-day months since joining, from 0 (the cohort's size) without
    gaps; counts are whole numbers that never rise within a cohort.
    """
    path = Path(path)
    frame, is_csv = _read_table(path, "cohort survival table")
    missing = [c for c in (period, active) if c not in frame.columns]
    if missing:
        raise CalibrationError(
            f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
            f"(found: {', '.join(repr(str(c)) for c in frame.columns)}). Name the right one with "
            f"survival_columns.{'period' if missing[0] == period else 'active'}=COLUMN.")
    if len(frame) == 0:
        raise CalibrationError(f"{path}: the cohort survival table is empty (a header but no rows).")
    numbers = {}
    for name in (period, active):
        raw = frame[name]
        values = pd.to_numeric(raw.astype("string").str.strip() if is_csv else raw, errors="coerce").astype(float)
        bad = np.flatnonzero(values.isna().to_numpy() | (values.to_numpy() < 0)
                             | (values.to_numpy() != np.round(values.to_numpy())))
        if bad.size:
            raise CalibrationError(f"{path}, {_where(is_csv, bad)}: {name} {str(raw.iloc[bad[0]])!r} is not a whole "
                                   f"number >= 0.")
        numbers[name] = values.to_numpy().astype(np.int64)
    groups = frame[cohort].astype(str).to_numpy() if cohort in frame.columns else np.zeros(len(frame), dtype=object)
    cohorts = []
    for key in pd.unique(groups):
        rows = np.flatnonzero(groups == key)
        order = rows[np.argsort(numbers[period][rows], kind="stable")]
        periods = numbers[period][order]
        counts = numbers[active][order]
        label = f" (cohort {key})" if cohort in frame.columns else ""
        if periods[0] != 0 or np.any(np.diff(periods) != 1):
            gap = order[0] if periods[0] != 0 else order[1:][np.diff(periods) != 1][0]
            raise CalibrationError(f"{path}, {_where(is_csv, np.array([gap]))}{label}: periods must run 0, 1, 2, ... "
                                   f"without gaps or repeats (period 0 = the cohort's size at joining).")
        rises = np.flatnonzero(np.diff(counts) > 0)
        if rises.size:
            raise CalibrationError(f"{path}, {_where(is_csv, order[rises + 1])}{label}: the active count rises from "
                                   f"{counts[rises[0]]} to {counts[rises[0] + 1]}; a cohort can only shrink.")
        if counts[0] == 0:
            raise CalibrationError(f"{path}, {_where(is_csv, order[:1])}{label}: "
                                   "the cohort has no members at period 0.")
        if counts.size < 2:
            raise CalibrationError(f"{path}{label}: a cohort needs at least periods 0 and 1.")
        cohorts.append(counts)
    return cohorts


# --------------------------------------------------------------------------
# simulation with the engine's buyers
# --------------------------------------------------------------------------

def buyers_conf(bgnbd: dict, spend: dict | None = None):
    """The parts of market.buyers that agents/buyers.py reads, from fitted values."""
    spend = spend or {"p": 1.0, "q": 2.0, "gamma": 1.0}
    return SimpleNamespace(purchase=SimpleNamespace(**{k: float(bgnbd[k]) for k in ("r", "alpha", "a", "b")}),
                           spend=SimpleNamespace(**{k: float(v) for k, v in spend.items()}),
                           referral_value_multiplier=1.0, referral_churn_multiplier=1.0)


def _run_days(side, first: int, last: int, streams: Streams, on_day) -> None:
    """Run the buyers' purchase process (experience effects off) over days [first, last)."""
    neutral = np.full(side.n, 0.5, dtype=np.float32)
    for day in range(first, last):
        intentions = buyers_rules.purchase_intentions(side, day, streams, neutral, 0.5, 0.0, 0.0)
        if intentions.buyer.size:
            on_day(day, np.unique(intentions.buyer))


def simulate_tracking(params: dict, join_day: np.ndarray, n_days: int, replicates: int, seed: int) -> np.ndarray:
    """Daily repeat transactions (replicates x days) of a simulated cohort with the given join days.

    Each replicate is a fresh cohort drawn from the fitted BG/NBD with the
    engine's buyer rules: customer i joins at join_day[i] + 0.5 (its trial);
    purchases on its join day merge with the trial, and several on one day
    count once, as in the real log.
    """
    n = join_day.size
    streams = Streams(seed)
    side = buyers_rules.new_side(n * replicates)
    ids = side.add(n * replicates)
    buyers_rules.init_traits(side, ids, buyers_conf(params), False, streams)
    joins = np.tile(join_day, replicates)
    buyers_rules.start_purchasing(side, ids, joins + 0.5, streams)
    daily = np.zeros((replicates, n_days))

    def on_day(day, buyers):
        buyers = buyers[joins[buyers] != day]
        daily[:, day] = np.bincount(buyers // n, minlength=replicates)

    _run_days(side, 0, n_days, streams, on_day)
    return daily


def simulate_conditional(params: dict, cal: Calibration, holdout_days: int, replicates: int,
                         seed: int) -> np.ndarray:
    """Holdout repeat transactions (replicates x customers), each customer continuing its own history.

    At the end of the calibration period a customer is still active with the
    BG/NBD probability P(alive | x, t_x, T); if active, its rate is drawn from
    the posterior Gamma(r + x, alpha + T) and its drop-out probability from
    Beta(a, b + x), and the engine's buyer rules run it over the holdout.
    """
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    n = cal.x.size
    streams = Streams(seed)
    side = buyers_rules.new_side(n * replicates)
    ids = side.add(n * replicates)
    x = np.tile(cal.x, replicates)
    T = np.tile(cal.T, replicates)
    alive = streams.uniform("calibrate.alive", ATTRIBUTE_DAY, ids) < np.tile(
        fitting.bgnbd_p_alive((r, alpha, a, b), cal.x, cal.t_x, cal.T), replicates)
    side.purchase_rate[ids] = streams.gamma("calibrate.posterior_rate", ATTRIBUTE_DAY, ids, r + x, alpha + T)
    side.dropout_p[ids] = streams.beta("calibrate.posterior_dropout", ATTRIBUTE_DAY, ids, a, b + x)
    side.alive[:] = alive
    living = ids[alive]
    buyers_rules.start_purchasing(side, living, float(cal.days), streams)
    counts = np.zeros(n * replicates)

    def on_day(day, buyers):
        counts[buyers] += 1

    _run_days(side, cal.days, cal.days + holdout_days, streams, on_day)
    return counts.reshape(replicates, n)


def closed_form_tracking(params: dict, join_day: np.ndarray, n_days: int) -> np.ndarray:
    """Cumulative expected repeat transactions by the end of each day d: sum over customers joined by d of
    E[X(d + 1 - (join + 0.5))] - E[X(0.5)] (what falls on the join day merges with the trial)."""
    theta = tuple(params[k] for k in ("r", "alpha", "a", "b"))
    joins = np.bincount(join_day, minlength=n_days)[:n_days].astype(float)
    # purchases in the rest of the join day merge with the trial, so count from the next day on
    expected = fitting.bgnbd_expected(np.arange(n_days) + 0.5, theta) - fitting.bgnbd_expected(0.5, theta)
    return np.convolve(joins, expected)[:n_days]


# --------------------------------------------------------------------------
# generating a log with the engine (tests, demos)
# --------------------------------------------------------------------------

def engine_transaction_log(overrides: list[str], start: str = "2024-01-01") -> pd.DataFrame:
    """Run the Marketplace and return its buyers' orders as a transaction log.

    Columns customer_id, date, amount. Every order intention is a row, with
    its basket value (the engine's own draw, times the chosen seller's price
    level). A buyer's activation counts as its first order (the BG/NBD trial):
    a row at its activation day, valued with a Gamma(p, rate nu) draw of its own.
    Use experience_effects=false for an exact BG/NBD / Gamma-Gamma log.
    """
    from experiments.config import load_config
    from sim import Marketplace
    from sim.matching import NO_MATCH, choose_sellers

    cfg = load_config(list(overrides))

    class Recording(Marketplace):
        """Records each intention's buyer, day and amount before the engine settles it."""

        def _match_and_settle(self, day, intentions):
            ids, k = intentions.buyer, intentions.index
            if ids.size:
                buyers = self.sides["buyers"]
                amount = buyers_rules.basket_values(buyers, ids, k, day, self.market.buyers, self.streams)
                if self.has("sellers"):
                    sellers = self.sides["sellers"]
                    seller = choose_sellers(sellers, self.market.sellers, ids, k, day, self.streams)
                    amount = amount * np.where(seller != NO_MATCH, sellers.price_level[np.maximum(seller, 0)], 1.0)
                self.recorded.append((ids.copy(), np.full(ids.size, day), amount))
            super()._match_and_settle(day, intentions)

    model = Recording(cfg)
    model.recorded = []
    while model.day < cfg.days:
        model.step()
    buyers = model.sides["buyers"]
    active = np.flatnonzero(buyers.activation_day >= 0)
    trial = model.streams.gamma("calibrate.trial_basket", ATTRIBUTE_DAY, active, cfg.market.buyers.spend.p,
                                buyers.spend_rate[active])
    parts = [(active, buyers.activation_day[active].astype(np.int64), trial)] + model.recorded
    ids = np.concatenate([p[0] for p in parts])
    day = np.concatenate([p[1] for p in parts])
    amount = np.concatenate([p[2] for p in parts])
    order = np.lexsort((day, ids))
    dates = pd.Timestamp(start) + pd.to_timedelta(day[order], unit="D")
    return pd.DataFrame({"customer_id": [f"c{i:06d}" for i in ids[order]], "date": dates.strftime("%Y-%m-%d"),
                         "amount": np.round(amount[order], 2)})


# --------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------

FITTED_MARKET_KEYS = {
    "bgnbd": {"r": "buyers.purchase.r", "alpha": "buyers.purchase.alpha", "a": "buyers.purchase.a",
              "b": "buyers.purchase.b"},
    "gamma_gamma": {"p": "buyers.spend.p", "q": "buyers.spend.q", "v": "buyers.spend.gamma"},
    "sbg": {"beta_a": "{side}.churn.beta_a", "beta_b": "{side}.churn.beta_b"},
}
"""fit.json section -> {estimate: the market config key (below ``market.``) it sets}: the one mapping from a
calibration to a market, used by the market config written here and by uncertainty settings' ``from_fit``."""


def market_config(base_market: str, bgnbd: dict | None, spend: dict | None, churn: dict | None,
                  side: str, source: str) -> tuple[str, dict]:
    """The YAML text of a market config (conf/market/<name>.yaml) and the overrides it amounts to."""
    base = OmegaConf.load(group_file("market", base_market))
    defaults = OmegaConf.to_container(base.get("defaults")) if "defaults" in base else None
    body = OmegaConf.to_container(base)
    body.pop("defaults", None)
    overrides = {}
    # bgnbd is keyed as fit.json; spend and churn as the engine names them (gamma for v, a and b for beta_a, beta_b)
    if bgnbd:
        overrides.update({key: float(bgnbd[k]) for k, key in FITTED_MARKET_KEYS["bgnbd"].items()})
    if spend:
        overrides.update({key: float(spend[key.rsplit(".", 1)[1]])
                          for key in FITTED_MARKET_KEYS["gamma_gamma"].values()})
    if churn:
        if side not in body.get("sides", []):
            raise CalibrationError(f"twosided calibrate: survival_side={side} but market={base_market} has sides "
                                   f"{body.get('sides')}; pick a market with {side} (e.g. market=delivery).")
        overrides.update({key.format(side=side): float(churn[k.removeprefix("beta_")])
                          for k, key in FITTED_MARKET_KEYS["sbg"].items()})
    dotlist = [f"{k}={v!r}" for k, v in overrides.items()]
    merged = OmegaConf.merge(OmegaConf.create(body), OmegaConf.from_dotlist(dotlist))
    text = [f"# Calibrated by `twosided calibrate` from {source} on {datetime.now():%Y-%m-%d %H:%M}.",
            f"# Starts from conf/market/{base_market}.yaml; fitted values: buyers.purchase (BG/NBD, days),",
            "# buyers.spend (Gamma-Gamma, currency), and a supply side's churn (shifted-beta-geometric, per month).",
            "# Use it as `twosided run market=PATH_OF_THIS_FILE` (or compare, sensitivity, optimize)."]
    if defaults is not None:
        text.append(OmegaConf.to_yaml(OmegaConf.create({"defaults": defaults})).rstrip())
    text.append(OmegaConf.to_yaml(merged).rstrip())
    return "\n".join(text) + "\n", {f"market.{k}": v for k, v in overrides.items()}


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _table_md(frame: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        cells = [floatfmt.format(v) if isinstance(v, (float, np.floating)) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _table_html(frame: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    head = "".join(f"<th>{c}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(
        f"<td>{floatfmt.format(v) if isinstance(v, (float, np.floating)) else v}</td>" for v in row) + "</tr>"
        for _, row in frame.iterrows())
    return f"<table><tr>{head}</tr>{rows}</table>"


def write_report(out: Path, fit: dict, tracking: pd.DataFrame | None, hist: pd.DataFrame | None,
                 by_freq: pd.DataFrame | None, survival_table: pd.DataFrame | None) -> None:
    """report.md and report.html (figures as PNG files, embedded in the HTML)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, bytes] = {}
    if tracking is not None:
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.plot(tracking["day"], tracking["actual_cum"], color="black", label="actual")
        ax.plot(tracking["day"], tracking["simulated_cum"], color="tab:blue", ls="--", label="simulated (engine)")
        ax.plot(tracking["day"], tracking["closed_form_cum"], color="tab:orange", ls=":", label="closed form (BG/NBD)")
        ax.axvline(fit["holdout"]["start_day"] - 0.5, color="grey", lw=0.8)
        ax.set_xlabel("day since the log's first date")
        ax.set_ylabel("cumulative repeat transactions")
        ax.legend()
        figures["tracking.png"] = _png(fig)
        plt.close(fig)
    if hist is not None:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        pos = np.arange(len(hist))
        ax.bar(pos - 0.2, hist["actual"], 0.4, color="black", label="actual")
        ax.bar(pos + 0.2, hist["simulated"], 0.4, color="tab:blue", label="simulated (mean of replicates)")
        ax.set_xticks(pos, hist["holdout_transactions"])
        ax.set_xlabel("repeat transactions in the holdout")
        ax.set_ylabel("customers")
        ax.legend()
        figures["holdout_histogram.png"] = _png(fig)
        plt.close(fig)
    if by_freq is not None:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(by_freq["calibration_x"], by_freq["actual"], "ko-", label="actual")
        ax.plot(by_freq["calibration_x"], by_freq["simulated"], "s--", color="tab:blue", label="simulated (engine)")
        ax.plot(by_freq["calibration_x"], by_freq["closed_form"], "^:", color="tab:orange", label="closed form")
        ax.set_xlabel("repeat transactions in the calibration period")
        ax.set_ylabel("mean repeat transactions in holdout")
        ax.legend()
        figures["conditional_by_frequency.png"] = _png(fig)
        plt.close(fig)
    for name, data in figures.items():
        (out / name).write_bytes(data)

    md = [f"# Calibration report\n\nLog: `{fit.get('data')}`"]
    html = ["<html><head><meta charset='utf-8'><title>Calibration report</title><style>"
            "body{font-family:sans-serif;max-width:60em;margin:auto} td,th{padding:2px 8px;text-align:right}"
            "</style></head><body><h1>Calibration report</h1><p>Log: <code>" + str(fit.get("data")) + "</code></p>"]

    def section(title, text, table=None, figure=None):
        md.append(f"\n## {title}\n\n{text}\n")
        html.append(f"<h2>{title}</h2><p>{text}</p>")
        if table is not None:
            md.append(_table_md(table) + "\n")
            html.append(_table_html(table))
        if figure is not None and figure in figures:
            md.append(f"![{title}]({figure})\n")
            encoded = base64.b64encode(figures[figure]).decode()
            html.append(f"<p><img src='data:image/png;base64,{encoded}' alt='{title}'></p>")

    if "bgnbd" in fit:
        b, g = fit["bgnbd"], fit.get("gamma_gamma")
        rows = [(f"BG/NBD {k}", b[k]["value"], b[k]["se"]) for k in ("r", "alpha", "a", "b")]
        if g:
            rows += [(f"Gamma-Gamma {k}", g[k]["value"], g[k]["se"]) for k in ("p", "q", "v")]
        table = pd.DataFrame(rows, columns=["parameter", "estimate", "standard error"])
        section("Fitted parameters",
                f"{b['n']:,} customers in the calibration period ({fit['calibration']['days']} days, "
                f"{fit['calibration']['start']} to {fit['calibration']['end']}); BG/NBD rates per day. "
                f"Log-likelihood {b['log_likelihood']:.2f}.", table)
    if "holdout" in fit:
        h = fit["holdout"]
        c = h["conditional"]
        text = (f"The last {h['days']} days were held out. Tracking (a simulated cohort with the same join days): "
                f"actual {h['actual']:,.0f} repeat transactions in the holdout, simulated {h['simulated']:,.1f} "
                f"({h['simulated_error_pct']:+.1f}%), closed form {h['closed_form']:,.1f} "
                f"({h['closed_form_error_pct']:+.1f}%). Conditional forecast (each calibration customer continues "
                f"its own history): actual {c['actual']:,.0f}, simulated {c['simulated']:,.1f} "
                f"({c['simulated_error_pct']:+.1f}%), closed form {c['closed_form']:,.1f} "
                f"({c['closed_form_error_pct']:+.1f}%).")
        section("Tracking: cumulative repeat transactions", text, figure="tracking.png")
        section("Holdout purchases per customer", "Customers of the calibration period by their repeat "
                "transactions in the holdout: actual against simulated.", hist, "holdout_histogram.png")
        section("Conditional expectations by calibration frequency",
                "Mean repeat transactions in the holdout, grouped by repeat transactions in the calibration "
                "period.", by_freq, "conditional_by_frequency.png")
    if "sbg" in fit:
        s = fit["sbg"]
        section(f"Supply side: {s['side']} churn (shifted-beta-geometric)",
                f"Monthly churn probability ~ Beta(beta_a={s['beta_a']['value']:.3f} +/- {s['beta_a']['se']:.3f}, "
                f"beta_b={s['beta_b']['value']:.3f} +/- {s['beta_b']['se']:.3f}) across {s['n']:,} "
                f"{s['side']} in {s['cohorts']} cohort(s).", survival_table)
    md.append(f"\n## Using it\n\n{fit.get('usage', '')}\n")
    html.append(f"<h2>Using it</h2><pre>{fit.get('usage', '')}</pre></body></html>")
    (out / "report.md").write_text("\n".join(md))
    (out / "report.html").write_text("\n".join(html))


def _est(fit_: fitting.Fit, rename: dict | None = None) -> dict:
    return fit_.as_dict(rename)


def _pct(sim: float, actual: float) -> float:
    return float(100.0 * (sim - actual) / actual) if actual else float("nan")


def calibrate(opts) -> tuple[Path, dict]:
    """Do the whole command; return the output folder and fit.json's content."""
    out = Path(opts.out) if opts.out else Path("calibrations") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
    check_output_dir(out, "out", create=False)  # a file path is refused now; the folder is made at the end
    result: dict = {}
    bgnbd = spend = churn = None
    tracking = hist = by_freq = survival_table = None
    notes: list[str] = []
    if opts.data is not None:
        orders = read_log(opts.data, opts.columns.customer, opts.columns.date, opts.columns.amount,
                          opts.period.start, opts.period.end, opts.outlying_gap_days)
        tx = to_transactions(orders)
        holdout = int(opts.holdout_days)
        cal_days = tx.n_days - holdout
        if cal_days < 2:
            raise CalibrationError(f"{opts.data}: holdout_days={holdout} leaves {max(cal_days, 0)} day(s) to fit on; "
                                   f"the log spans {tx.n_days} days.")
        cal = summarise(tx, cal_days)
        if not np.any(cal.x > 0):
            raise CalibrationError(f"{opts.data}: no customer has a repeat transaction (a second day with orders) in "
                                   f"the calibration period, so purchase rates and drop-out cannot be fitted.")
        bg = fitting.bgnbd_fit(cal.x, cal.t_x, cal.T)
        bgnbd = bg.params()
        result.update({
            "data": str(opts.data), "orders": tx.orders, "transactions": int(tx.day.size),
            "customers": int(tx.customers.size),
            "calibration": {"start": str(tx.start.date()),
                            "end": str((tx.start + pd.Timedelta(days=cal_days - 1)).date()),
                            "days": cal_days, "customers": int(cal.x.size),
                            "repeat_transactions": int(cal.x.sum())},
            "bgnbd": _est(bg) | {"customers": int(cal.x.size), "units": "days"},
        })
        if not bg.converged:
            notes.append(f"BG/NBD: {bg.message}")
        repeaters = (cal.x > 0) & (cal.mean_spend > 0)
        zero = int(np.count_nonzero((cal.x > 0) & (cal.mean_spend <= 0)))
        if zero:
            notes.append(f"Gamma-Gamma: {zero} customer(s) whose repeat transactions are all worth 0 are left out "
                         f"of the spend fit (Gamma-Gamma needs positive values); they still count in BG/NBD.")
        if np.count_nonzero(repeaters) >= 3:
            gg = fitting.gamma_gamma_fit(cal.x[repeaters], cal.mean_spend[repeaters])
            result["gamma_gamma"] = _est(gg) | {"customers": int(np.count_nonzero(repeaters)),
                                                "excluded_zero_spend": zero}
            if gg["q"] > 1:
                spend = {"p": gg["p"], "q": gg["q"], "gamma": gg["v"]}
                result["gamma_gamma"]["mean_spend"] = gg["p"] * gg["v"] / (gg["q"] - 1)
            else:
                notes.append(f"Gamma-Gamma: q = {gg['q']:.3f} <= 1 means an infinite mean spend; the engine needs "
                             f"q > 1, so the market config keeps the base market's spend.")
        else:
            notes.append("Gamma-Gamma: fewer than 3 customers with repeat transactions; spend not fitted.")
        if holdout > 0:
            tracking, hist, by_freq, result["holdout"] = holdout_check(tx, cal, bgnbd, holdout, opts)
    if opts.survival is not None:
        cols = opts.survival_columns
        cohorts = read_survival(opts.survival, cols.cohort, cols.period, cols.active)
        sb = fitting.sbg_fit(cohorts)
        churn = sb.params()
        result["sbg"] = _est(sb, {"a": "beta_a", "b": "beta_b"}) | {
            "side": opts.survival_side, "period_days": PERIOD_DAYS, "cohorts": len(cohorts),
            "data": str(opts.survival)}
        if not sb.converged:
            notes.append(f"sBG: {sb.message}")
        longest = max(cohorts, key=len)
        periods = np.arange(longest.size)
        members = np.array([sum(c[0] for c in cohorts if c.size > t) for t in periods], dtype=float)
        active = np.array([sum(c[t] for c in cohorts if c.size > t) for t in periods], dtype=float)
        survival_table = pd.DataFrame({"month": periods, "actual_retained": active / members,
                                       "fitted_retained": fitting.sbg_survival(periods, (churn["a"], churn["b"]))})
    source = ", ".join(str(p) for p in (opts.data, opts.survival) if p is not None)
    text, overrides = market_config(opts.market, bgnbd, spend, churn, opts.survival_side, source)
    final, out = check_output_dir(out, "out"), out / ".partial"  # files are written here, then moved, fit.json last
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    market_file = Path("market") / f"{opts.name}.yaml"  # a market/ folder, so market=PATH composes it
    (out / "market").mkdir()
    (out / market_file).write_text(text)
    usage = (f"twosided run market={final / market_file} experience_effects=false   # the calibrated baseline\n"
             f"twosided compare market={final / market_file}\n"
             f"(or copy it into ${USER_CONFIG_ENV}/market/ and use market={opts.name}; or, without the file: "
             f"twosided run market={opts.market} " + " ".join(f"{k}={v:.6g}" for k, v in overrides.items()) + ")")
    result.update({"market_config": str(market_file), "base_market": opts.market, "overrides": overrides,
                   "notes": notes, "usage": usage})
    if tracking is not None:
        tracking.to_parquet(out / "holdout.parquet", index=False)
    write_report(out, result, tracking, hist, by_freq, survival_table)
    (out / "fit.json").write_text(json.dumps(json_safe(result), indent=2, allow_nan=False))
    for path in sorted(out.iterdir(), key=lambda p: p.name == "fit.json"):
        os.replace(path, final / path.name)
    out.rmdir()
    return final, result


def json_safe(value):
    """``value`` with every NaN or infinity as None (JSON null) and numpy numbers as Python ones."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def holdout_check(tx: Transactions, cal: Calibration, params: dict, holdout: int, opts):
    """The two holdout forecasts, against the actual log and the closed forms."""
    n_days, cal_days, reps, seed = tx.n_days, cal.days, int(opts.replicates), int(opts.seed)
    theta = tuple(params[k] for k in ("r", "alpha", "a", "b"))
    # (1) tracking: every customer of the log, with its join day, over the whole log
    repeat = tx.day > tx.first_day[tx.customer]
    actual_daily = np.bincount(tx.day[repeat], minlength=n_days).astype(float)
    sim_daily = simulate_tracking(params, tx.first_day, n_days, reps, seed)
    closed = closed_form_tracking(params, tx.first_day, n_days)
    actual_cum = np.cumsum(actual_daily)
    sim_cum = np.cumsum(sim_daily, axis=1)
    tracking = pd.DataFrame({"day": np.arange(n_days), "date": tx.start + pd.to_timedelta(np.arange(n_days), unit="D"),
                             "holdout": np.arange(n_days) >= cal_days, "actual_cum": actual_cum,
                             "simulated_cum": sim_cum.mean(axis=0), "simulated_cum_p05": np.percentile(sim_cum, 5, 0),
                             "simulated_cum_p95": np.percentile(sim_cum, 95, 0), "closed_form_cum": closed})
    before = cal_days - 1
    actual_h = float(actual_cum[-1] - actual_cum[before])
    sim_h = sim_cum[:, -1] - sim_cum[:, before]
    closed_h = float(closed[-1] - closed[before])
    # (2) conditional: calibration customers continue their own histories
    sims = simulate_conditional(params, cal, holdout, reps, seed + 1)
    sim_each = sims.mean(axis=0)
    closed_each = fitting.bgnbd_conditional_expected(holdout, theta, cal.x, cal.t_x, cal.T)
    actual_each = cal.holdout
    conditional = {
        "customers": int(cal.x.size), "actual": float(actual_each.sum()), "simulated": float(sim_each.sum()),
        "simulated_p05": float(np.percentile(sims.sum(axis=1), 5)),
        "simulated_p95": float(np.percentile(sims.sum(axis=1), 95)),
        "closed_form": float(closed_each.sum()),
        "simulated_error_pct": _pct(sim_each.sum(), actual_each.sum()),
        "closed_form_error_pct": _pct(closed_each.sum(), actual_each.sum()),
        "simulated_mae_per_customer": float(np.mean(np.abs(sim_each - actual_each))),
        "closed_form_mae_per_customer": float(np.mean(np.abs(closed_each - actual_each))),
        "simulated_rmse_per_customer": float(np.sqrt(np.mean((sim_each - actual_each) ** 2))),
        "closed_form_rmse_per_customer": float(np.sqrt(np.mean((closed_each - actual_each) ** 2))),
    }
    summary = {"days": holdout, "start_day": cal_days,
               "start": str((tx.start + pd.Timedelta(days=cal_days)).date()),
               "end": str((tx.start + pd.Timedelta(days=n_days - 1)).date()),
               "replicates": reps,
               "actual": actual_h, "simulated": float(sim_h.mean()), "closed_form": closed_h,
               "simulated_p05": float(np.percentile(sim_h, 5)), "simulated_p95": float(np.percentile(sim_h, 95)),
               "simulated_error_pct": _pct(sim_h.mean(), actual_h), "closed_form_error_pct": _pct(closed_h, actual_h),
               "tracking": {"what": "all customers of the log, simulated from their join days; repeat transactions "
                                    "inside the holdout (the top-level actual/simulated/closed_form)"},
               "conditional": conditional}
    top = 7
    cap = np.minimum(actual_each, top).astype(int)
    sim_hist = np.stack([np.bincount(np.minimum(s, top).astype(int), minlength=top + 1) for s in sims]).mean(axis=0)
    hist = pd.DataFrame({"holdout_transactions": [str(i) for i in range(top)] + [f"{top}+"],
                         "actual": np.bincount(cap, minlength=top + 1).astype(int), "simulated": sim_hist})
    group = np.minimum(cal.x, top).astype(int)
    by_freq = pd.DataFrame({
        "calibration_x": [str(i) for i in range(top)] + [f"{top}+"],
        "customers": np.bincount(group, minlength=top + 1),
        "actual": _group_mean(group, actual_each, top), "simulated": _group_mean(group, sim_each, top),
        "closed_form": _group_mean(group, closed_each, top)})
    return tracking, hist, by_freq, summary


def _group_mean(group: np.ndarray, values: np.ndarray, top: int) -> np.ndarray:
    count = np.bincount(group, minlength=top + 1)
    total = np.bincount(group, weights=values, minlength=top + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _print_summary(out: Path, fit: dict) -> None:
    if "bgnbd" in fit:
        b = fit["bgnbd"]
        print(f"BG/NBD ({b['customers']:,} customers, rates per day; log-likelihood {b['log_likelihood']:.2f}):")
        for k in ("r", "alpha", "a", "b"):
            print(f"  {k:6} {b[k]['value']:10.4f}  (se {b[k]['se']:.4f})")
    if "gamma_gamma" in fit:
        g = fit["gamma_gamma"]
        print(f"Gamma-Gamma ({g['customers']:,} repeat customers):")
        for k in ("p", "q", "v"):
            print(f"  {k:6} {g[k]['value']:10.4f}  (se {g[k]['se']:.4f})")
    if "holdout" in fit:
        h = fit["holdout"]
        c = h["conditional"]
        print(f"Holdout ({h['days']} days), repeat transactions: actual {h['actual']:,.0f}; tracking simulated "
              f"{h['simulated']:,.1f} ({h['simulated_error_pct']:+.1f}%), closed form {h['closed_form']:,.1f} "
              f"({h['closed_form_error_pct']:+.1f}%); conditional: actual {c['actual']:,.0f}, simulated "
              f"{c['simulated']:,.1f} ({c['simulated_error_pct']:+.1f}%), closed form {c['closed_form']:,.1f} "
              f"({c['closed_form_error_pct']:+.1f}%).")
    if "sbg" in fit:
        s = fit["sbg"]
        print(f"sBG ({s['side']}, {s['n']:,} in {s['cohorts']} cohort(s), per 30-day month): beta_a "
              f"{s['beta_a']['value']:.4f} (se {s['beta_a']['se']:.4f}), beta_b {s['beta_b']['value']:.4f} "
              f"(se {s['beta_b']['se']:.4f})")
    for note in fit.get("notes", []):
        print(f"note: {note}")
    print(f"\nOutput folder: {out}\nTo use the calibrated market:\n  " + fit["usage"].replace("\n", "\n  "))


def main(args: list[str]) -> int:
    """Entry of `twosided calibrate ARGS`; exit code 2 with one paragraph on bad input."""
    try:
        opts = load_options(args)
        out, fit = calibrate(opts)
    except CalibrationError as error:
        print(error, file=sys.stderr)
        return 2
    except OutputError:
        raise
    except OSError as error:  # the disk refused half-way: fit.json (the mark of a complete folder) is not there
        raise output_fault(error, opts.out or "the calibration folder") from None
    _print_summary(out, fit)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
