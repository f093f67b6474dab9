"""Gate decisions: complete evidence passes, and every missing piece leaves exactly its requirement unmet."""

import dataclasses
import hashlib
import json
import math

import pytest

from mlflow_hitl.errors import InputError
from mlflow_hitl.gate._decision import Evidence, Requirement, decide, decision_hash, is_protected
from mlflow_hitl.gate._policy import CheckRule, default_policy, parse_policy

RUN = "a1b2c3"
REGISTERED = "d" * 64  # the digest of the run's evidence registration
MODEL = "c" * 64  # the evaluated model's content digest
CHECKS = ("drift", "calibration", "adversarial", "fairness", "generator")


def signoff(
    user,
    decision="approve",
    *,
    seq,
    check="fairness",
    role="fairness-reviewer",
    run_id=RUN,
    note=None,
    approves=REGISTERED,
):
    """A row shaped like ReviewStore.signoffs(run_id)."""
    return {
        "run_id": run_id,
        "check_name": check,
        "user": user,
        "role": role,
        "decision": decision,
        "note": note,
        "audit_seq": seq,
        "audit_hash": hashlib.sha256(f"{user}{seq}".encode()).hexdigest(),
        "created_at": f"2025-01-01T00:00:{seq:02d}.000000Z",
        "approves": approves,
    }


METRICS = {
    "calibration.ece": 0.03,
    "calibration.overconfidence_error": 0.02,
    "calibration.mce": 0.4,  # not bounded by the policy
    "drift.drifted_share": 0.05,
    "drift.age__x.drifted_share": 0.05,
    "adversarial.worst_overconfidence_error": 0.04,
    "fairness.sex.demographic_parity_difference_ci_low": 0.02,
    "fairness.sex.equalized_odds_difference_ci_low": 0.01,
    "fairness.sex.bias_amplification": 0.01,
    "fairness.colour.demographic_parity_difference_ci_low": 0.06,
    "fairness.colour.equalized_odds_difference_ci_low": 0.03,
    "fairness.colour.bias_amplification": 0.02,
    "fairness.sex_colour.bias_amplification": 0.03,
    "generator.c2st_auc": 0.61,
    "generator.exact_copy_share": 0.0,
    "generator.near_copy_share": 0.01,
    "generator.exact_copy_p_value": 0.4,
    "generator.near_copy_p_value": 0.7,
    "generator.fidelity": 0.93,
}


@pytest.fixture
def evidence():
    """Complete evidence that the default policy accepts for alias:champion."""
    return Evidence(
        model_name="arrests",
        version="3",
        target="alias:champion",
        run_id=RUN,
        run_author="alice",
        version_run_id=RUN,
        summary={
            "status": "needs_review",
            "checks": {**{c: "passed" for c in CHECKS}, "fairness": "needs_review"},
            "skipped": {},
            "details": {},
            "manifest": {"calibration/result.json": "0" * 64, "report.html": "1" * 64},
        },
        summary_sha256="f" * 64,
        artifact_problems=(),
        registration={"seq": 5, "digest": REGISTERED, "summary_sha256": "f" * 64, "model_sha256": MODEL},
        evidence_changes=(),
        model_sha256=MODEL,
        metrics=METRICS,
        signoffs=(signoff("fran", seq=7),),
        snapshots=({"id": "snap-1", "queue": "q", "n_items": 40, "krippendorff_alpha": 0.8},),
        audit={"ok": True, "head_seq": 9, "head_hash": "e" * 64, "problem": None},
        actor="rob",
    )


def unmet_names(decision):
    return {r.name for r in decision.unmet()}


def test_complete_evidence_passes_with_every_requirement_listed(evidence):
    decision = decide(default_policy(), evidence)
    assert decision.passed and decision.unmet() == []
    names = [r.name for r in decision.requirements]
    assert names[:5] == [
        "evidence.logged",
        "evidence.same_version_run",
        "evidence.artifacts_intact",
        "evidence.registered",
        "evidence.model",
    ]
    assert names[-4:] == ["signoff.fairness", "review.verified_items", "audit.intact", "duties.promoter"]
    for check in CHECKS:
        assert f"check.{check}" in names
    # one requirement per bound, named by pattern and limit
    assert "check.calibration.ece <= 0.05" in names and "check.generator.fidelity >= 0.8" in names
    assert "check.fairness.*.bias_amplification <= 0.05" in names
    bounds = sum(len(r.max) + len(r.min) for r in default_policy().checks.values())
    assert len(names) == 5 + len(CHECKS) + bounds + 4
    assert "allowed" in decision.summary() and "\n" not in decision.summary()


def test_a_bound_names_its_worst_matching_metric(evidence):
    detail = {r.name: r.detail for r in decide(default_policy(), evidence).requirements}
    assert detail["check.fairness.*.demographic_parity_difference_ci_low <= 0.1"].startswith(
        "worst of 2 matching: colour.demographic_parity_difference_ci_low = 0.060 <= 0.1"
    )
    assert (
        "worst of 3 matching: sex_colour.bias_amplification = 0.030 <= 0.05"
        in detail["check.fairness.*.bias_amplification <= 0.05"]
    )


def without(mapping, *keys):
    return {k: v for k, v in mapping.items() if k not in keys}


def with_summary(**changes):
    def change(ev):
        return {"summary": {**ev.summary, **changes}}

    return change


KNOCKOUTS = [
    (
        "no summary logged",
        lambda ev: {"summary": None},
        {"evidence.logged", "evidence.artifacts_intact", *(f"check.{c}" for c in CHECKS)},
        "no hitl/summary.json in run a1b2c3",
    ),
    (
        "evidence of another run",
        lambda ev: {"version_run_id": "other"},
        {"evidence.same_version_run"},
        "was created from run other",
    ),
    (
        "version without a run",
        lambda ev: {"version_run_id": None},
        {"evidence.same_version_run"},
        "has no source run",
    ),
    (
        "a tampered artifact",
        lambda ev: {"artifact_problems": ("report.html: sha256 0ab… != 111…",)},
        {"evidence.artifacts_intact"},
        "1 problem(s): report.html",
    ),
    (
        "artifacts never re-verified",
        lambda ev: {"artifact_problems": None},
        {"evidence.artifacts_intact"},
        "not re-verified",
    ),
    (
        "a summary without manifest",
        lambda ev: {"summary": without(ev.summary, "manifest")},
        {"evidence.artifacts_intact"},
        "no manifest",
    ),
    (
        "evidence never registered",
        lambda ev: {"registration": None},
        {"evidence.registered", "evidence.model", "signoff.fairness"},
        "no registration of the evidence of run a1b2c3",
    ),
    (
        "evidence changed after registration",
        lambda ev: {"evidence_changes": ("hitl/calibration/result.json was added",)},
        {"evidence.registered"},
        "evidence changed after registration (event 5): hitl/calibration/result.json was added",
    ),
    (
        "a summary other than the registered one",
        lambda ev: {"summary_sha256": "0" * 64},
        {"evidence.registered"},
        "evidence changed after registration (event 5): hitl/summary.json differs",
    ),
    (
        "evidence never compared with its registration",
        lambda ev: {"evidence_changes": None},
        {"evidence.registered"},
        "not compared with its registration",
    ),
    (
        "a version serving other model files",
        lambda ev: {"model_sha256": "9" * 64},
        {"evidence.model"},
        "model files differ from the evaluated model",
    ),
    (
        "a version whose model cannot be read",
        lambda ev: {"model_sha256": None, "model_problem": "model source 's3://x' cannot be read: gone"},
        {"evidence.model"},
        "model source 's3://x' cannot be read",
    ),
    (
        "no evaluated model on record",
        lambda ev: {"registration": {**ev.registration, "model_sha256": None, "model_problem": "two models"}},
        {"evidence.model"},
        "the evaluated model is unknown: two models",
    ),
    (
        "a sign-off of other evidence",
        lambda ev: {"signoffs": (signoff("fran", seq=7, approves="1" * 64),)},
        {"signoff.fairness"},
        "1 sign-off(s) approved other evidence than the registered one",
    ),
    (
        "a sign-off given before any registration",
        lambda ev: {"signoffs": (signoff("fran", seq=7, approves=None),)},
        {"signoff.fairness"},
        "approved other evidence",
    ),
    (
        "a sign-off by the version's creator",
        lambda ev: {"authors": ("alice", "fran")},
        {"signoff.fairness"},
        "fran is the model's author and cannot sign off",
    ),
    (
        "no recorded author",
        lambda ev: {"authors": (), "author_problem": "the server recorded no authenticated creator"},
        {"signoff.fairness", "duties.promoter"},
        "the server recorded no authenticated creator, so sign-offs cannot be kept apart",
    ),
    (
        "a promoter among the authors",
        lambda ev: {"authors": ("alice", "rob")},
        {"duties.promoter"},
        "rob is the model's author",
    ),
    (
        "a metric above its bound",
        lambda ev: {"metrics": {**METRICS, "calibration.ece": 0.08}},
        {"check.calibration.ece <= 0.05"},
        "ece = 0.080, limit <= 0.05",
    ),
    (
        "a metric just above its bound, where rounding would hide it",
        lambda ev: {"metrics": {**METRICS, "calibration.ece": 0.0504}},
        {"check.calibration.ece <= 0.05"},
        "ece = 0.0504, limit <= 0.05",
    ),
    (
        "a metric below its minimum",
        lambda ev: {"metrics": {**METRICS, "generator.fidelity": 0.7}},
        {"check.generator.fidelity >= 0.8"},
        "fidelity = 0.700, limit >= 0.8",
    ),
    (
        "one group's bias amplification",
        lambda ev: {
            "metrics": {
                **METRICS,
                "fairness.colour.bias_amplification": 0.09,
                "fairness.sex.bias_amplification": 0.07,
            }
        },
        {"check.fairness.*.bias_amplification <= 0.05"},
        "colour.bias_amplification = 0.090, limit <= 0.05 (2 of 3 matching metrics fail)",
    ),
    (
        "a metric that is NaN",
        lambda ev: {"metrics": {**METRICS, "drift.drifted_share": math.nan}},
        {"check.drift.drifted_share <= 0.1"},
        "drifted_share = n/a, limit <= 0.1",
    ),
    (
        "a pattern that matches nothing",
        lambda ev: {"metrics": {k: v for k, v in METRICS.items() if not k.endswith("bias_amplification")}},
        {"check.fairness.*.bias_amplification <= 0.05"},
        "no logged metric matches '*.bias_amplification' in fairness",
    ),
    (
        "a bound's metric logged under another check",
        lambda ev: {
            "metrics": {
                **without(METRICS, "drift.drifted_share", "drift.age__x.drifted_share"),
                "generator.drifted_share": 0.0,
            }
        },
        {"check.drift.drifted_share <= 0.1"},
        "no logged metric matches 'drifted_share' in drift",
    ),
    (
        "a failed check",
        with_summary(checks={**{c: "passed" for c in CHECKS}, "drift": "failed"}),
        {"check.drift"},
        "status failed; the policy accepts passed",
    ),
    (
        "insufficient evidence",
        with_summary(checks={**{c: "passed" for c in CHECKS}, "fairness": "insufficient_evidence"}),
        {"check.fairness"},
        "status insufficient_evidence",
    ),
    (
        "a skipped check",
        with_summary(
            checks={c: "passed" for c in CHECKS if c != "adversarial"},
            skipped={"adversarial": "no numeric features"},
        ),
        {"check.adversarial"},
        "adversarial was skipped: no numeric features",
    ),
    (
        "a check never run",
        with_summary(checks={c: "passed" for c in CHECKS if c != "drift"}),
        {"check.drift"},
        "drift was not run",
    ),
    (
        "no sign-off",
        lambda ev: {"signoffs": ()},
        {"signoff.fairness"},
        "0 of 1 distinct fairness-reviewer approval(s)",
    ),
    (
        "sign-off only by the author",
        lambda ev: {"signoffs": (signoff("alice", seq=7),)},
        {"signoff.fairness"},
        "alice is the model's author and cannot sign off",
    ),
    (
        "sign-off with another role",
        lambda ev: {"signoffs": (signoff("fran", seq=7, role="reviewer"),)},
        {"signoff.fairness"},
        "0 of 1",
    ),
    (
        "sign-off of another check",
        lambda ev: {"signoffs": (signoff("fran", seq=7, check="drift"),)},
        {"signoff.fairness"},
        "0 of 1",
    ),
    (
        "sign-off of another run",
        lambda ev: {"signoffs": (signoff("fran", seq=7, run_id="zzz"),)},
        {"signoff.fairness"},
        "0 of 1",
    ),
    (
        "a reject after an approve",
        lambda ev: {
            "signoffs": (signoff("fran", seq=7), signoff("fran", "reject", seq=8, note="groups too small"))
        },
        {"signoff.fairness"},
        "rejected by fran: groups too small",
    ),
    (
        "a later reject listed first",
        lambda ev: {
            "signoffs": (signoff("gil", "reject", seq=9), signoff("fran", seq=7), signoff("gil", seq=3))
        },
        {"signoff.fairness"},
        "rejected by gil: no note",
    ),
    (
        "the author's reject",
        lambda ev: {"signoffs": (signoff("fran", seq=7), signoff("alice", "reject", seq=8, note="not yet"))},
        {"signoff.fairness"},
        "rejected by alice: not yet",
    ),
    (
        "unknown author",
        lambda ev: {"run_author": None},
        {"signoff.fairness", "duties.promoter"},
        "author is unknown",
    ),
    (
        "a broken audit chain",
        lambda ev: {
            "audit": {
                "ok": False,
                "head_seq": 9,
                "head_hash": "e" * 64,
                "first_bad_seq": 4,
                "problem": "hash mismatch",
            }
        },
        {"audit.intact"},
        "chain broken at seq 4: hash mismatch",
    ),
    ("an unverified audit chain", lambda ev: {"audit": None}, {"audit.intact"}, "not verified"),
    (
        "the author promotes",
        lambda ev: {"actor": "alice"},
        {"duties.promoter"},
        "alice is the model's author (run a1b2c3) and may not promote it",
    ),
]


@pytest.mark.parametrize(
    ("change", "unmet", "detail"), [k[1:] for k in KNOCKOUTS], ids=[k[0] for k in KNOCKOUTS]
)
def test_each_missing_piece_leaves_exactly_its_requirement_unmet(evidence, change, unmet, detail):
    decision = decide(default_policy(), dataclasses.replace(evidence, **change(evidence)))
    assert decision.passed is False
    assert unmet_names(decision) == unmet
    assert any(detail in r.detail for r in decision.unmet()), [r.detail for r in decision.unmet()]
    line = decision.summary()
    assert "blocked" in line and all(name in line for name in unmet) and "\n" not in line


@pytest.mark.parametrize(
    "signoffs",
    [
        pytest.param(
            (signoff("fran", "reject", seq=3, note="x"), signoff("fran", seq=5)), id="approve after reject"
        ),
        pytest.param(
            (signoff("fran", seq=7), signoff("alice", seq=8)), id="author's approval ignored, another counts"
        ),
        pytest.param((signoff("fran", seq=2), signoff("fran", seq=4)), id="the same approval twice"),
    ],
)
def test_a_persons_latest_approval_counts(evidence, signoffs):
    decision = decide(default_policy(), dataclasses.replace(evidence, signoffs=signoffs))
    assert decision.passed, decision.summary()


def test_count_needs_distinct_people(evidence):
    policy = parse_policy('[[signoffs]]\ncheck = "fairness"\ncount = 2\n')
    twice = dataclasses.replace(evidence, signoffs=(signoff("fran", seq=1), signoff("fran", seq=2)))
    assert unmet_names(decide(policy, twice)) == {"signoff.fairness"}
    two = dataclasses.replace(evidence, signoffs=(signoff("fran", seq=1), signoff("gil", seq=2)))
    decision = decide(policy, two)
    assert decision.passed and "approved by fran, gil" in decision.requirements[-4].detail


def test_release_signoff_by_a_release_manager(evidence):
    policy = parse_policy('[[signoffs]]\ncheck = "release"\n')
    assert unmet_names(decide(policy, evidence)) == {"signoff.release"}
    ok = dataclasses.replace(
        evidence, signoffs=(signoff("rita", seq=9, check="release", role="release-manager"),)
    )
    assert decide(policy, ok).passed


def test_without_separated_duties_the_author_may_sign_off_and_promote(evidence):
    policy = parse_policy("[duties]\nseparate = false\n")
    mine = dataclasses.replace(evidence, signoffs=(signoff("alice", seq=7),), actor="alice")
    decision = decide(policy, mine)
    assert decision.passed and "duties.promoter" not in [r.name for r in decision.requirements]
    assert not decide(default_policy(), mine).passed


def test_no_actor_means_no_promoter_requirement(evidence):
    decision = decide(default_policy(), dataclasses.replace(evidence, actor=None))
    assert decision.passed and "duties.promoter" not in [r.name for r in decision.requirements]


# -- review coverage and agreement ----------------------------------------------------------------------

SNAPSHOTS = (
    {"id": "s1", "queue": "q1", "n_items": 30, "krippendorff_alpha": 0.9},
    {"id": "s2", "queue": "q1", "n_items": 60, "krippendorff_alpha": 0.7},  # republished: replaces s1
    {"id": "s3", "queue": "q2", "n_items": 30, "krippendorff_alpha": 0.75},
)


@pytest.mark.parametrize(
    ("review", "snapshots", "unmet", "detail"),
    [
        (
            "min_verified_items = 90",
            SNAPSHOTS,
            set(),
            "90 human-verified item(s) (q1: 60 in snapshot s2, q2: 30 in snapshot s3)",
        ),
        ("min_verified_items = 91", SNAPSHOTS, {"review.verified_items"}, "90 human-verified item(s)"),
        (
            "min_verified_items = 1",
            (),
            {"review.verified_items"},
            "0 human-verified item(s) (no published snapshot)",
        ),
        ("min_krippendorff_alpha = 0.7", SNAPSHOTS, set(), "lowest Krippendorff's alpha: q1 = 0.700 >= 0.7"),
        (
            "min_krippendorff_alpha = 0.72",
            SNAPSHOTS,
            {"review.agreement"},
            "lowest Krippendorff's alpha: q1 = 0.700 < 0.72",
        ),
        ("min_krippendorff_alpha = 0.0", (), {"review.agreement"}, "no published snapshot"),
        (
            "min_krippendorff_alpha = 0.0",
            ({"id": "s", "queue": "q", "n_items": 5, "krippendorff_alpha": math.nan},),
            {"review.agreement"},
            "agreement was not measured for queue(s) q",
        ),
        (
            "min_verified_items = 10",
            ({"id": "s", "queue": "q", "n_items": 50, "run_id": "other"},),
            {"review.verified_items"},
            "0 human-verified item(s)",
        ),
    ],
)
def test_review_coverage_and_agreement(evidence, review, snapshots, unmet, detail):
    decision = decide(
        parse_policy(f"[review]\n{review}\n"), dataclasses.replace(evidence, snapshots=snapshots)
    )
    assert unmet_names(decision) == unmet and decision.passed is (not unmet)
    assert any(detail in r.detail for r in decision.requirements if r.name.startswith("review."))


# -- targets --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "protected"),
    [
        ("alias:champion", True),
        ("alias:Champion", True),
        ("alias:challenger", False),
        ("stage:Production", True),
        ("stage:production", True),
        ("stage:STAGING", True),
        ("stage:Archived", False),
    ],
)
def test_is_protected(target, protected):
    assert is_protected(default_policy(), target) is protected


def test_an_unprotected_target_passes_with_one_requirement(evidence):
    decision = decide(default_policy(), Evidence(model_name="arrests", version=3, target="alias:challenger"))
    assert decision.passed and decision.version == "3"
    assert decision.requirements == (
        Requirement(
            "target.not_protected",
            True,
            "alias:challenger is not protected (protected: alias:champion, alias:production, stage:Production, stage:Staging)",
        ),
    )


def test_nothing_but_a_protected_target_meets_nothing_that_needs_evidence():
    decision = decide(default_policy(), Evidence(model_name="m", version="1", target="stage:Production"))
    met = {r.name for r in decision.requirements if r.met}
    assert not decision.passed and met == {"review.verified_items"}  # 0 items required by default


@pytest.mark.parametrize("target", ["champion", "alias:", "tag:champion", "Alias:champion", None])
def test_a_malformed_target_is_refused(target):
    with pytest.raises(InputError, match="must be 'alias:<name>' or 'stage:<name>'"):
        is_protected(default_policy(), target)
    with pytest.raises(InputError, match="must be 'alias:<name>' or 'stage:<name>'"):
        Evidence(model_name="m", version="1", target=target)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_name": ""}, "evidence.model_name must be the registered model's name"),
        ({"metrics": {"calibration.ece": "low"}}, r"evidence.metrics\['calibration.ece'\] must be a number"),
        (
            {"signoffs": ({"user": "fran"},)},
            r"evidence.signoffs\[0\] lacks run_id, check_name, role, decision, audit_seq",
        ),
        (
            {"signoffs": (signoff("fran", "maybe", seq=1),)},
            "decision must be 'approve' or 'reject', got 'maybe'",
        ),
        ({"snapshots": (["s", 3],)}, r"evidence.snapshots\[0\] must be a mapping"),
        ({"audit": {"head_seq": 3}}, "evidence.audit must be a mapping with a boolean 'ok'"),
        ({"summary": "passed"}, "evidence.summary must be the parsed summary.json"),
    ],
)
def test_malformed_evidence_is_refused(evidence, changes, message):
    with pytest.raises(InputError, match=message):
        dataclasses.replace(evidence, **changes)


def test_a_policy_built_in_code_still_never_accepts_insufficient_evidence(evidence):
    policy = dataclasses.replace(
        default_policy(),
        checks={"drift": CheckRule("drift", allow_status=("passed", "insufficient_evidence"))},
    )
    summary = {**evidence.summary, "checks": {"drift": "insufficient_evidence"}}
    decision = decide(policy, dataclasses.replace(evidence, summary=summary))
    assert unmet_names(decision) == {"check.drift"}


# -- the evidence hash ----------------------------------------------------------------------------------


def test_the_evidence_hash_is_stable_and_recomputable(evidence):
    first = decide(default_policy(), evidence)
    again = decide(
        default_policy(), dataclasses.replace(evidence, signoffs=tuple(reversed(evidence.signoffs)))
    )
    assert first.evidence_hash == again.evidence_hash == decide(parse_policy(""), evidence).evidence_hash
    record = json.loads(json.dumps(first.to_dict()))  # what a stored decision looks like
    assert decision_hash(record) == first.evidence_hash
    canonical = json.dumps(
        {
            k: record[k]
            for k in ("model_name", "version", "target", "passed", "policy_hash", "requirements", "evidence")
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == first.evidence_hash
    record["requirements"][0]["met"] = False
    assert decision_hash(record) != first.evidence_hash
    with pytest.raises(InputError, match="decision record lacks evidence"):
        decision_hash(without(record, "evidence"))


def test_the_evidence_records_what_was_looked_at(evidence):
    looked = decide(default_policy(), evidence).evidence
    assert looked["run_id"] == RUN and looked["summary_sha256"] == "f" * 64
    assert [s["id"] for s in looked["snapshots"]] == ["snap-1"]
    assert looked["audit"]["head_seq"] == 9 and looked["audit"]["head_hash"] == "e" * 64
    assert looked["signoffs"][0]["audit_hash"] == evidence.signoffs[0]["audit_hash"]
    assert looked["policy_hash"] == decide(default_policy(), evidence).policy_hash
    assert looked["registration"] == {"seq": 5, "digest": REGISTERED}
    assert looked["model_sha256"] == looked["evaluated_model_sha256"] == MODEL
    assert looked["signoffs"][0]["approves"] == REGISTERED
    assert "time" not in json.dumps(dict(looked))


CHANGES = {
    "model_name": "other-model",
    "version": "4",
    "target": "stage:Production",
    "run_id": "zzz",
    "run_author": "bob",
    "authors": ("alice", "bob"),
    "author_problem": "no record",
    "registration": {"seq": 6, "digest": "7" * 64, "summary_sha256": "f" * 64, "model_sha256": MODEL},
    "evidence_changes": ("hitl/x was added",),
    "model_sha256": "8" * 64,
    "model_problem": "unreadable",
    "version_run_id": "yyy",
    "summary": None,
    "summary_sha256": "0" * 64,
    "artifact_problems": ("report.html: missing",),
    "metrics": {**METRICS, "calibration.mce": 0.41},
    "signoffs": (signoff("fran", seq=7, note="fine"),),
    "snapshots": ({"id": "snap-1", "queue": "q", "n_items": 41, "krippendorff_alpha": 0.8},),
    "audit": {"ok": True, "head_seq": 10, "head_hash": "e" * 64, "problem": None},
    "actor": "rita",
}


def test_every_evidence_field_is_covered():
    assert set(CHANGES) == {f.name for f in dataclasses.fields(Evidence)}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_the_evidence_hash_changes_with_every_input(evidence, field):
    before = decide(default_policy(), evidence)
    after = decide(default_policy(), dataclasses.replace(evidence, **{field: CHANGES[field]}))
    assert after.evidence_hash != before.evidence_hash


def test_the_evidence_hash_changes_with_the_policy(evidence):
    stricter = parse_policy("[review]\nmin_verified_items = 10\n")
    assert decide(stricter, evidence).evidence_hash != decide(default_policy(), evidence).evidence_hash


def test_decision_is_immutable_and_its_repr_is_short(evidence):
    decision = decide(default_policy(), dataclasses.replace(evidence, actor="alice"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.passed = True
    with pytest.raises(TypeError):
        decision.evidence["run_id"] = "x"
    assert (
        repr(decision)
        == "GateDecision('arrests', version='3', target='alias:champion', passed=False, unmet=['duties.promoter'])"
    )


def test_a_policy_can_bound_the_privacy_blind_spot_the_validation_accepted(evidence):
    """``max_undetectable_excess`` is the validating team's setting; the release side bounds the figure
    itself, so a looser setting in a config cannot carry a version through. No figure (the tests could
    catch no excess at all) is an unmet bound, never a pass."""
    policy = parse_policy(
        '[checks.generator]\nmax = { "*_copy_min_detectable_excess" = 0.05 }\nallow_status = ["passed"]\n'
    )
    name = "check.generator.*_copy_min_detectable_excess <= 0.05"

    def decide_with(**figures):
        metrics = {**METRICS, **{f"generator.{k}": v for k, v in figures.items()}}
        return decide(policy, dataclasses.replace(evidence, metrics=metrics))

    assert name not in unmet_names(decide_with(exact_copy_min_detectable_excess=0.042))
    blind = decide_with(exact_copy_min_detectable_excess=0.042, near_copy_min_detectable_excess=0.085)
    assert unmet_names(blind) == {name}
    assert "near_copy_min_detectable_excess = 0.085, limit <= 0.05" in blind.unmet()[0].detail
    assert "no logged metric matches" in decide_with().unmet()[0].detail
