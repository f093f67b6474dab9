"""Routing served requests to review: the rule (threshold, control share, budget) and the feeder that
appends off the request path, against a real SQLite store that goes away and comes back."""

import dataclasses
import json
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pandas as pd
import pytest

from mlflow_hitl.errors import InputError
from mlflow_hitl.review import (
    Budget,
    FeederSettings,
    QueueFeeder,
    ReviewStore,
    Router,
    RoutingRule,
    uncertainty_scores,
)

CLASSES = ["No", "Yes"]


def _two_class(p_yes):
    p_yes = np.asarray(p_yes, dtype=float)
    return np.column_stack([1 - p_yes, p_yes])


# -- the rule --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        # confidence = max p: 0.55 and 0.59 are below 0.6
        ("least-confidence", [1, 2]),
        # confidence = p1 - p2: 0.1, 0.18 and 0.5 are below 0.6; 0.8 is not
        ("margin", [1, 2, 3]),
        # confidence = 1 - normalised entropy: 0.53 for p = 0.9, 0.92 for p = 0.99
        ("entropy", [0, 1, 2, 3]),
    ],
)
def test_a_row_is_uncertain_when_its_confidence_under_the_strategy_is_below_the_threshold(strategy, expected):
    prob = _two_class([0.9, 0.55, 0.41, 0.75, 0.99])
    routed = Router(RoutingRule(strategy=strategy, threshold=0.6, control_share=0.0)).route(prob)
    assert routed["row"].tolist() == expected
    assert set(routed["reason"]) == {strategy}
    confidence = 1 - uncertainty_scores(prob, strategy=strategy)
    assert (confidence[expected] < 0.6).all() and (np.delete(confidence, expected) >= 0.6).all()
    assert routed["score"].to_numpy() == pytest.approx(1 - confidence[expected])


def test_the_control_share_is_a_seeded_uniform_draw_with_its_inclusion_probability():
    prob = _two_class(np.full(100_000, 0.99))  # nothing uncertain: only control rows are routed
    first = Router(RoutingRule(control_share=0.02, seed=7)).route(prob)
    again = Router(RoutingRule(control_share=0.02, seed=7)).route(prob)
    other = Router(RoutingRule(control_share=0.02, seed=8)).route(prob)
    assert first["row"].tolist() == again["row"].tolist() != other["row"].tolist()
    assert abs(len(first) - 2_000) < 4 * np.sqrt(100_000 * 0.02 * 0.98)
    assert set(first["reason"]) == {"random-control"}
    assert (first["inclusion_probability"] == 0.02).all()


def test_control_rows_are_drawn_from_all_rows_and_uncertain_ones_keep_their_reason():
    prob = _two_class(np.r_[np.full(500, 0.5), np.full(500, 0.99)])
    routed = Router(RoutingRule(control_share=0.1, seed=1)).route(prob)
    control = routed[routed["reason"] == "random-control"]
    assert (control["row"] < 500).any() and (control["row"] >= 500).any()
    uncertain = routed[routed["reason"] == "least-confidence"]
    assert set(uncertain["row"]) | set(control["row"][control["row"] < 500]) == set(range(500))
    assert uncertain["inclusion_probability"].isna().all()
    assert routed["row"].is_monotonic_increasing


def test_the_budget_caps_each_window_control_rows_first_and_counts_the_rest():
    now = [3_600.0 * 5]
    router = Router(RoutingRule(budget="3/hour", control_share=0.0), clock=lambda: now[0])
    prob = _two_class([0.5] * 5)
    assert router.route(prob)["row"].tolist() == [0, 1, 2]
    assert router.route(prob).empty and router.over_budget == 7
    now[0] += 3_599.0  # the same hour until its last second
    assert router.route(prob[:1]).empty
    now[0] += 1.0  # the next hour: a new budget
    assert router.route(prob)["row"].tolist() == [0, 1, 2]
    assert router.over_budget == 10
    # with a control share, control rows are taken before uncertain ones
    control = Router(RoutingRule(budget="2/day", control_share=1.0), clock=lambda: 0.0).route(prob)
    assert control["reason"].tolist() == ["random-control"] * 2


@pytest.mark.parametrize(
    ("rule", "match"),
    [
        ({"strategy": "random"}, "cannot route single requests"),
        ({"threshold": 1.5}, r"threshold must be a number in \[0, 1\]"),
        ({"control_share": -0.1}, r"control_share must be a number in \[0, 1\]"),
        ({"control_share": True}, "control_share must be a number"),
        ({"budget": "500 per day"}, "budget must look like 500/day"),
        ({"budget": "0/day"}, "budget must look like 500/day"),
        ({"budget": "5/fortnight"}, "budget must look like 500/day"),
        ({"seed": 1.5}, "seed must be an integer"),
    ],
)
def test_a_bad_rule_is_refused_with_one_line(rule, match):
    with pytest.raises(InputError, match=match):
        RoutingRule(**rule)


def test_a_budget_reads_and_prints_as_people_write_it():
    assert Budget.parse("500/day") == Budget(500, "day") and str(Budget.parse(" 20/minute ")) == "20/minute"
    assert Budget.parse("500/day").seconds == 86_400 and Budget.parse(None) is None
    assert RoutingRule(budget="10/hour").to_dict()["budget"] == "10/hour"


# -- the feeder ------------------------------------------------------------------------------------


def _frame(p_yes):
    return pd.DataFrame({"x": np.asarray(p_yes, dtype=float), "colour": ["Black"] * len(p_yes)})


def _score(frame):
    return _two_class(frame["x"].to_numpy())


def _feeder(tmp_path, url, **options):
    tuning = {"flush_seconds": 0.05, "retry_seconds": 0.2}
    for name in [k for k in options if k in {f.name for f in dataclasses.fields(FeederSettings)}]:
        tuning[name] = options.pop(name)
    settings = {
        "queue": "prod",
        "classes": CLASSES,
        "score": _score,
        "open_store": lambda: ReviewStore(url),
        "rule": RoutingRule(control_share=0.0),
        "actor": "serving",
        "spool_dir": tmp_path / "spool",
        "settings": FeederSettings(**tuning),
        **options,
    }
    return QueueFeeder(**settings)


def test_the_feeder_queues_exactly_the_uncertain_rows_once_per_request_id(tmp_path):
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    feeder = _feeder(tmp_path, url, batch_rows=4)
    feeder.submit(_frame([0.5, 0.9, 0.45]), ["Yes", "Yes", "No"], ["a", "b", "c"])
    feeder.submit(_frame([0.99, 0.58]), np.array([["Yes"], ["Yes"]]))  # a column of labels
    feeder.submit(_frame([0.5]), ["Yes"], ["a"])  # a retried request
    assert feeder.flush()
    items = ReviewStore(url).items("prod")
    assert [i.row_key for i in items][:2] == ["a", "c"] and len(items) == 3
    assert items[2].row_key.endswith("-1") and items[2].payload == {"x": 0.58, "colour": "Black"}
    assert [i.prediction for i in items] == ["Yes", "No", "Yes"]
    assert items[1].confidence == pytest.approx(0.55)
    stats = feeder.stats()
    assert (stats["rows"], stats["routed"], stats["appended"], stats["duplicates"]) == (6, 4, 3, 1)
    assert stats["dropped"] == 0 and stats["store"] == "up"
    queue = ReviewStore(url).queue("prod")
    assert queue.classes == ("No", "Yes") and queue.strategy == "least-confidence"
    feeder.close()


def test_a_store_that_goes_away_and_comes_back_loses_nothing(tmp_path):
    home = tmp_path / "store"
    home.mkdir()
    url = f"sqlite:///{home / 'hitl.db'}"
    feeder = _feeder(tmp_path, url)
    feeder.submit(_frame([0.5]), ["Yes"], ["before"])
    assert feeder.flush()
    home.rename(tmp_path / "away")  # the store's volume is gone
    for i in range(20):
        feeder.submit(_frame([0.5, 0.95]), ["Yes", "Yes"], [f"down-{i}", f"sure-{i}"])
    assert feeder.flush()
    stats = feeder.stats()
    assert stats["spooled"] == 20 and stats["store"] != "up" and stats["spool_bytes"] > 0
    (tmp_path / "away").rename(home)  # back
    deadline = time.monotonic() + 30
    while feeder.stats()["spool_bytes"] and time.monotonic() < deadline:
        feeder.submit(_frame([0.5]), ["Yes"], [f"after-{time.monotonic_ns()}"])
        feeder.flush()
        time.sleep(0.1)
    stats = feeder.stats()
    assert stats["spool_bytes"] == 0 and stats["store"] == "up" and stats["dropped"] == 0
    keys = [i.row_key for i in ReviewStore(url).items("prod")]
    assert keys[:21] == ["before"] + [f"down-{i}" for i in range(20)]
    assert len(keys) == len(set(keys)) == stats["appended"]
    feeder.close()


def test_memory_and_disk_are_bounded_and_what_does_not_fit_is_counted(tmp_path):
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    busy, release = threading.Event(), threading.Event()

    def slow_score(frame):
        busy.set()
        release.wait(30)
        return _score(frame)

    feeder = _feeder(tmp_path, url, score=slow_score, max_pending_rows=10, batch_rows=1)
    feeder.submit(_frame([0.5]), ["Yes"])  # the thread takes it and waits in the model
    assert busy.wait(30)
    started = time.perf_counter()
    for _ in range(15):
        feeder.submit(_frame([0.5]), ["Yes"])
    assert time.perf_counter() - started < 0.1  # a full buffer never holds the caller up
    release.set()
    assert feeder.flush()
    assert feeder.stats()["dropped_by_cause"]["buffer_full"] == 5
    assert len(ReviewStore(url).items("prod")) == 11

    nowhere = f"sqlite:///{tmp_path / 'missing' / 'hitl.db'}"
    small = _feeder(tmp_path, nowhere, spool_dir=tmp_path / "small", max_spool_bytes=2_000)
    for i in range(30):
        small.submit(_frame([0.5]), ["Yes"], [f"r{i}"])
        small.flush()
    stats = small.stats()
    assert stats["spool_bytes"] <= 2_000 and stats["spooled"] > 0
    assert stats["spooled"] + stats["dropped_by_cause"]["spool_full"] == 30
    small.close()
    feeder.close()


def test_a_model_that_fails_to_score_costs_the_rows_not_the_feeder(tmp_path):
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    calls = []

    def flaky(frame):
        calls.append(len(frame))
        if len(calls) == 1:
            raise ValueError("bad batch\nwith a traceback")
        return _score(frame)

    feeder = _feeder(tmp_path, url, score=flaky)
    feeder.submit(_frame([0.5, 0.5]), ["Yes", "Yes"])
    assert feeder.flush()
    feeder.submit(_frame([0.5]), ["Yes"])
    assert feeder.flush()
    assert feeder.stats()["dropped_by_cause"]["scoring_failed"] == 2
    assert len(ReviewStore(url).items("prod")) == 1
    feeder.close()


def test_rows_spooled_by_a_process_that_died_are_sent_by_the_next(tmp_path):
    url = f"sqlite:///{tmp_path / 'store' / 'hitl.db'}"
    dead = _feeder(tmp_path, url)  # its store's folder does not exist yet
    dead.submit(_frame([0.5, 0.5]), ["Yes", "No"], ["x", "y"])
    assert dead.flush()
    dead.close()
    assert dead.stats()["spooled"] == 2
    (tmp_path / "store").mkdir()
    heir = _feeder(tmp_path, url)
    deadline = time.monotonic() + 30
    while heir.stats()["replayed"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [i.row_key for i in ReviewStore(url).items("prod")] == ["x", "y"]
    assert not list((tmp_path / "spool").glob("*.jsonl"))
    heir.close()


def test_rows_still_in_memory_are_flushed_when_the_process_exits(tmp_path):
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    script = textwrap.dedent(
        f"""
        import numpy as np, pandas as pd
        from mlflow_hitl.review import FeederSettings, QueueFeeder, ReviewStore, RoutingRule
        feeder = QueueFeeder(
            queue="prod", classes=["No", "Yes"], actor="serving", spool_dir={str(tmp_path / "spool")!r},
            score=lambda f: np.column_stack([1 - f["x"], f["x"]]),
            open_store=lambda: ReviewStore({url!r}), rule=RoutingRule(control_share=0.0),
            settings=FeederSettings(flush_seconds=60),
        )
        for i in range(5):
            feeder.submit(pd.DataFrame({{"x": [0.5]}}), ["Yes"], [f"r{{i}}"])
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert [i.row_key for i in ReviewStore(url).items("prod")] == [f"r{i}" for i in range(5)]
    event = ReviewStore(url).audit_events(action="queue.create")
    assert json.loads(event["payload"].iloc[0])["items"] == 5


def test_a_frame_larger_than_the_buffer_is_routed_on_the_callers_thread_not_dropped(tmp_path):
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    feeder = _feeder(tmp_path, url, max_pending_rows=10)
    frame = _frame(np.r_[np.full(30, 0.5), np.full(70, 0.99)])
    feeder.submit(frame, ["Yes"] * 100)
    assert len(ReviewStore(url).items("prod")) == 30  # already there when submit returns
    assert feeder.stats()["dropped"] == 0
    feeder.close()


def test_a_queue_the_store_refuses_to_make_is_counted_as_rejected_not_retried_forever(tmp_path):
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    feeder = _feeder(tmp_path, url, classes=["only-one"])  # a queue needs two classes
    feeder.submit(_frame([0.5]), ["Yes"])
    assert feeder.flush()
    stats = feeder.stats()
    assert stats["dropped_by_cause"]["rejected"] == 1 and stats["spooled"] == 0 and stats["store"] == "up"
    feeder.close()


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"flush_seconds": 0}, "flush_seconds must be a number of seconds > 0"),
        ({"retry_seconds": "soon"}, "retry_seconds must be a number of seconds > 0"),
        ({"batch_rows": 0}, "batch_rows must be a whole number ≥ 1"),
        ({"max_pending_rows": 2.5}, "max_pending_rows must be a whole number ≥ 1"),
    ],
)
def test_impossible_feeder_settings_are_refused_with_one_line(settings, match):
    with pytest.raises(InputError, match=match):
        FeederSettings(**settings)
