"""End-to-end story: a model trained on too-clean, biased, leaky synthetic data, caught at the gate.

Real data: the arrests data set that ships with scikit-lego (target ``released``; sensitive
``colour`` and ``sex``). A deliberately naive generator learns from part of it and makes a
synthetic training set with the three classic faults:

- too clean: numeric columns drawn from tidy class-conditional distributions whose classes are
  further apart than in reality, so the model learns to be sure of itself;
- amplified bias: the generator releases Black arrestees less often than its source did;
- leaked rows: 15% of the synthetic rows are verbatim copies of real rows it should never have seen
  (it was handed the evaluation holdout too).

1. Evidence: a model is trained on the synthetic set, logged to a local SQLite MLflow store and
   checked by ``mlflow_hitl.validate`` against held-out real rows and newer production rows.
2. People: an admin appoints themselves and grants roles; two domain experts audit a blind mix of the
   generator's rows and real ones (the ``generator_audit`` check); the model's least-confident production rows
   go to a blind queue, three simulated reviewers of known quality label each one (one of them
   sloppy), Dawid-Skene finds the consensus and spots the sloppy rater, an adjudicator settles the
   disagreements, the verified labels are published as an immutable snapshot, and a fairness
   reviewer rejects the bias audit.
3. The gate: the model is registered as ``arrests`` version 1 under the policy below; promoting it to
   ``champion`` is refused, with the reasons.
4. The fix: an honest generator (no amplified bias, no leaked rows, real spread) and the human-verified
   labels train version 2. Its gate is refused once more, for the one thing still missing: people's
   approval. The fairness reviewer and the release manager sign off, and the promotion goes through.
5. Lineage: version 2 traced through the verified-label snapshot it trained on to the queue, the
   raters, the adjudications and the sign-offs.
6. The loop closes in production (``examples/close_the_loop.py``): the champion serves production rows
   through a routed model that sends its uncertain ones to a queue; people label them; version 3 is
   retrained with those labels, and its lineage and dossier reach the production queue, its raters and
   the champion's sign-offs.

Run it with ``make demo`` (or ``python examples/arrests_demo.py``). The data are also written to
``demo-output/data/`` as CSV files, for the command-line examples in the README.
"""

from __future__ import annotations

import argparse
import os
import secrets
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklego.datasets import load_arrests

import mlflow_hitl

TARGET = "released"
SENSITIVE = ["colour", "sex"]
CATEGORICAL = ["colour", "sex", "employed", "citizen"]
NUMERIC = ["year", "age", "checks"]
LEAKED_SHARE = 0.15


def split_real_data(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.Series]:
    """(generator source, labelled real holdout, unlabelled production, production's true labels).

    Production rows are the newest years (2001-2002), so the model also meets time drift. Their
    true labels are kept aside: only the simulated reviewers get to see them.
    """
    arrests = load_arrests(as_frame=True)
    newest = arrests[arrests["year"] >= 2001].reset_index(drop=True)
    past = arrests[arrests["year"] < 2001].sample(frac=1.0, random_state=seed).reset_index(drop=True)
    cut = int(len(past) * 0.6)
    return (
        past.iloc[:cut].reset_index(drop=True),
        past.iloc[cut:].reset_index(drop=True),
        newest.drop(columns=[TARGET]),
        newest[TARGET],
    )


def naive_generator(
    source: pd.DataFrame, n_rows: int, *, leak_from: pd.DataFrame, seed: int = 0
) -> pd.DataFrame:
    """A synthetic set with the faults described in the module docstring; ``leak_from`` is copied from."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(source[TARGET].to_numpy(), size=n_rows)
    synthetic = pd.DataFrame({TARGET: labels})
    _categorical_draws(synthetic, source, rng)
    for column in NUMERIC:  # tidy normal draws, classes pushed apart: "too clean"
        overall = source[column].std()
        for label in np.unique(labels):
            rows = synthetic[TARGET] == label
            values = source.loc[source[TARGET] == label, column]
            push = 0.6 * overall * (1 if label == "No" else -1) if column == "checks" else 0.0
            draws = rng.normal(values.mean() + push, 0.5 * values.std(), size=int(rows.sum()))
            synthetic.loc[rows, column] = np.clip(np.round(draws), source[column].min(), source[column].max())
    synthetic[NUMERIC] = synthetic[NUMERIC].astype("int64")
    # Amplified bias: a third of released Black arrestees become not released.
    black_released = np.flatnonzero((synthetic["colour"] == "Black") & (synthetic[TARGET] == "Yes"))
    flipped = rng.choice(black_released, size=len(black_released) // 3, replace=False)
    synthetic.loc[flipped, TARGET] = "No"
    # Leaked rows: 15% verbatim copies of real rows the generator should never have seen.
    leaked = leak_from.sample(n=int(LEAKED_SHARE * n_rows), random_state=seed)
    synthetic = pd.concat([synthetic.iloc[: n_rows - len(leaked)], leaked], ignore_index=True)
    return synthetic[source.columns].sample(frac=1.0, random_state=seed).reset_index(drop=True)


def honest_generator(source: pd.DataFrame, n_rows: int, *, seed: int = 1) -> pd.DataFrame:
    """The fixed generator: the same class-conditional model, with each class's real spread, no label
    changes and no copied rows (numbers are drawn value by value, so rows only coincide by chance)."""
    rng = np.random.default_rng(seed)
    synthetic = pd.DataFrame({TARGET: rng.choice(source[TARGET].to_numpy(), size=n_rows)})
    _categorical_draws(synthetic, source, rng)
    for column in NUMERIC:
        for label in np.unique(synthetic[TARGET]):
            rows = synthetic[TARGET] == label
            values = source.loc[source[TARGET] == label, column].to_numpy()
            synthetic.loc[rows, column] = rng.choice(values, size=int(rows.sum()))
    synthetic[NUMERIC] = synthetic[NUMERIC].astype("int64")
    return synthetic[source.columns]


def _categorical_draws(synthetic: pd.DataFrame, source: pd.DataFrame, rng: np.random.Generator) -> None:
    """Class-conditional category frequencies, independent otherwise (both generators share this)."""
    for column in CATEGORICAL:
        for label in np.unique(synthetic[TARGET]):
            rows = synthetic[TARGET] == label
            freq = source.loc[source[TARGET] == label, column].value_counts(normalize=True)
            synthetic.loc[rows, column] = rng.choice(
                freq.index.to_numpy(), size=int(rows.sum()), p=freq.to_numpy()
            )


def train(rows: pd.DataFrame, sample_weight: np.ndarray | None = None):
    features = CATEGORICAL + NUMERIC
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), CATEGORICAL), (StandardScaler(), NUMERIC)
        ),
        LogisticRegression(max_iter=1000),
    )
    return model.fit(rows[features], rows[TARGET], logisticregression__sample_weight=sample_weight)


# The demo's gate, written out to demo-output/policy.toml. Every bound is the policy's own (the checks'
# logged verdicts use their defaults); docs/gates/policy.md documents each key.
POLICY = """\
# Gate policy of the demo's "arrests" model: what a version must show before it may become champion.
[protect]
aliases = ["champion"]
stages = []

[checks.calibration]
# Overconfidence: trained on too-clean data, a model is surer than it is right.
max = { ece = 0.05, overconfidence_error = 0.05 }

[checks.adversarial]
max = { worst_overconfidence_error = 0.1 }

[checks.fairness]
# The real data itself release Black arrestees less often than white ones: that disparity is in the
# world the model predicts, and the fairness reviewer's sign-off below weighs it (with the model's
# own model_amplification). What this gate refuses is bias the generator adds to its source: the
# synthetic labels' disparity may exceed the real labels' own by at most 10 points, per sensitive
# feature and their intersection.
max = { "*.bias_amplification" = 0.1 }

[checks.generator]
# Too clean: a classifier must not tell synthetic rows from real ones easily.
# Leaked rows: 46% of this data's real rows repeat another real row (few columns, small integers), so
# a copy as such proves nothing. What counts is copying beyond that baseline: synthetic rows may repeat
# real rows at most 2 points more often than real rows repeat each other (docs/checks/generator.md).
# And the copy test must have been able to see an excess of 5 points (the blind spot VALIDATION_CONFIG
# accepts): a validation run with a looser setting does not carry a version through.
max = { c2st_auc = 0.75, exact_copy_excess = 0.02, exact_copy_min_detectable_excess = 0.05 }

[[signoffs]]
check = "fairness"
role = "fairness-reviewer"
count = 1

[[signoffs]]
check = "release"
role = "release-manager"
count = 1

[review]
# The verified labels reach a retrained version as training data (see its lineage), not as a queue of
# its own run.
min_verified_items = 0

[duties]
# The model's author (maya) may neither sign off nor promote it.
separate = true
"""
MODEL_NAME = "arrests"
TARGET_ALIAS = "champion"
# Privacy's blind spot, accepted on the record. At the holdout's size the copy tests catch an excess
# copying of about 4.2 % of synthetic rows with 80 % power, no less; by default (2 %) a privacy pass
# here is impossible and an honest generator gets insufficient_evidence. The team accepts 5 %: the
# setting is kept with the run's evidence (the generator check's thresholds, shown in its report).
VALIDATION_CONFIG = {"generator": {"max_undetectable_excess": 0.05}}
ENGINEER = "maya"  # trains and validates: the models' recorded author

# Simulated reviewers: the share of items each labels correctly.
REVIEWERS = {"alice": 0.93, "bob": 0.9, "sam": 0.6}


def appoint_people(store) -> None:
    """The role bootstrap: the first admin appoints themselves (audited), then grants everyone else's role."""
    if store.roles("root").empty:
        store.grant_role("root", "admin", actor="root")
    for user, role in (
        ("carol", "adjudicator"),
        ("dana", "fairness-reviewer"),
        ("rita", "release-manager"),
    ):
        store.grant_role(user, role, actor="root")
    print(
        "roles: root admin (self-appointed), carol adjudicator, dana fairness-reviewer, rita release-manager"
    )


def simulated_labels(
    store, queue: str, truth: pd.Series, reviewers: dict[str, float], *, seed: int = 0, source: str = "demo"
) -> None:
    """Each simulated reviewer labels every item the store gives them: the row's true label (``truth`` at
    the item's row key) with their accuracy, another class otherwise."""
    rng = np.random.default_rng(seed)
    classes = store.queue(queue).classes
    for reviewer, accuracy in reviewers.items():
        while (item := store.next_item(queue, user=reviewer)) is not None:
            right = truth.loc[int(item.row_key)]
            wrong = next(c for c in classes if c != right)
            store.annotate(
                queue,
                position=item.position,
                user=reviewer,
                label=right if rng.random() < accuracy else wrong,
                source=source,
            )


def generator_audit(
    store, run_id: str, synthetic: pd.DataFrame, real: pd.DataFrame, *, seed: int = 0
) -> None:
    """People who know the domain audit the generator's output: a blind mix of synthetic rows (stratified by
    colour and sex) and real controls, each judged realistic or not by two simulated experts who see
    through a synthetic row with a known skill; logged to ``run_id`` as the ``generator_audit`` check."""
    from mlflow_hitl.review import NOT_REALISTIC, REALISTIC, queue_generator_audit

    name = f"arrests-generator-audit-{run_id[:8]}"
    queue_generator_audit(
        store,
        name,
        synthetic=synthetic,
        real=real,
        sensitive=SENSITIVE,
        per_group=30,
        actor=ENGINEER,
        run_id=run_id,
    )
    answer_key = store.gold(name)  # the simulation's answer key; no reviewer-facing surface shows it
    rng = np.random.default_rng(seed)
    for expert, skill in (("alice", 0.75), ("bob", 0.7)):  # chance of judging a row right
        while (item := store.next_item(name, user=expert)) is not None:
            right = answer_key[item.position]
            wrong = REALISTIC if right == NOT_REALISTIC else NOT_REALISTIC
            store.annotate(
                name, position=item.position, user=expert, label=right if rng.random() < skill else wrong
            )
    audit = mlflow_hitl.generator_audit_results(store, name)
    print(
        f"generator audit {name}: {len(answer_key)} rows judged twice, people tell synthetic from real with "
        f"AUC {audit.metrics['human_auc']:.2f} ({audit.status.value})"
    )
    return audit


def human_review(
    store, model, run_id: str, production: pd.DataFrame, truth: pd.Series, *, seed: int = 0
) -> str:
    """Queue, label, agree, adjudicate, publish, sign off. Returns the queue's name."""
    from mlflow_hitl.adapter.review import queue_from_model
    from mlflow_hitl.review import queue_consensus

    name = f"arrests-review-{run_id[:8]}"
    queue_from_model(
        store,
        name,
        data=production,
        model=model,
        actor=ENGINEER,
        size=120,
        raters_per_item=3,
        blind=True,
        run_id=run_id,
        group_column="colour",
    )
    print(f"\nqueue {name}: {len(store.items(name))} least-confident production rows, 3 raters each, blind")

    simulated_labels(store, name, truth, REVIEWERS, seed=seed)

    state = queue_consensus(store, name, method="dawid-skene")
    stats = state.agreement
    print(
        f"consensus (Dawid-Skene): Fleiss kappa {stats.fleiss_kappa:.2f}, Krippendorff alpha "
        f"{stats.krippendorff_alpha:.2f}; {len(state.pending)} item(s) to adjudicate"
    )
    for rater, row in state.rater_quality.iterrows():
        print(
            f"  {rater:<6} estimated accuracy {row['estimated_accuracy']:.2f} (simulated {REVIEWERS[rater]:.2f})"
        )
    for position in state.pending:
        row_key = int(next(i.row_key for i in store.items(name) if i.position == position))
        store.adjudicate(
            name, position=position, user="carol", label=truth.iloc[row_key], note="checked the file"
        )

    record = mlflow_hitl.publish_labels(
        store, name, actor=ENGINEER, method="dawid-skene", label_column=TARGET
    )
    verified = queue_consensus(store, name, method="dawid-skene").verified
    accuracy = (verified["label"] == truth.iloc[verified["row_key"].astype(int)].to_numpy()).mean()
    print(
        f"published snapshot {record['id']}: {record['n_items']} verified labels, "
        f"{accuracy:.0%} match the truth (the sloppy rater alone: {REVIEWERS['sam']:.0%})"
    )
    store.sign_off(
        run_id=run_id,
        check="fairness",
        user="dana",
        approve=False,
        note="the synthetic set releases Black arrestees far less often than the real data",
    )
    print("dana (fairness-reviewer) rejects the fairness audit of this run")
    return name


def demo_data(seed: int = 0) -> dict[str, pd.DataFrame]:
    """Every data set of the story: the generator's real source, the labelled real holdout, production rows
    (unlabelled) and their true labels (only the simulated reviewers see them), and both synthetic sets."""
    source, real, production, truth = split_real_data(seed)
    return {
        "source": source,
        "real": real,
        "production": production,
        "production_truth": truth.to_frame(),
        "synthetic": naive_generator(source, n_rows=len(source), leak_from=real, seed=seed),
        "synthetic_fixed": honest_generator(source, n_rows=len(source)),
    }


def write_demo_data(folder: Path, data: dict[str, pd.DataFrame] | None = None) -> dict[str, Path]:
    """The story's data as CSV files (``real.csv``, ``synthetic.csv``, ``production.csv``, ...) for the
    command-line examples; the docs' tests build their data with this same function."""
    data = demo_data() if data is None else data
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in data.items():
        paths[name] = folder / f"{name.replace('_', '-')}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def _show_decision(decision) -> None:
    verdict = "PASSES" if decision.passed else "REFUSED"
    print(f"gate of {decision.model_name} version {decision.version} for {decision.target}: {verdict}")
    for requirement in decision.unmet():
        print(f"  UNMET  {requirement.name}: {requirement.detail}")


def _train_and_validate(
    experiment_id: str, name: str, rows, example, *, synthetic, real, production, weights=None, before=None
):
    """One training run: fit, log and register the model, validate it; returns (model, run, result, version)."""
    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
        if before is not None:
            rows = before(rows)
        model = train(rows, sample_weight=None if weights is None else weights(rows))
        # Requirements named, not inferred: inference loads the model in a subprocess (~10 s each).
        logged = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=example,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            registered_model_name=MODEL_NAME,  # first: validate shows the gate of a registered model
        )
        mlflow.log_input(
            mlflow.data.from_pandas(synthetic, name=f"{name}-synthetic", targets=TARGET), context="training"
        )
        mlflow.log_input(
            mlflow.data.from_pandas(real, name="real-holdout", targets=TARGET), context="validation"
        )
        result = mlflow_hitl.validate(
            model,
            real=real,
            target=TARGET,
            synthetic=synthetic,
            production=production,
            sensitive_features=SENSITIVE,
            registered_model_name=MODEL_NAME,  # the report shows its gate policy's bounds
            config=VALIDATION_CONFIG,
        )
    version = logged.registered_model_version
    print(f"\n{name}: HITL status {result.status.value}, registered as {MODEL_NAME} version {version}")
    for check_name, check in result.checks.items():
        print(f"  {check_name:<12} {check.status.value:<22} {check.summary}")
    return model, run, result, str(version)


def production_loop(
    store, data: dict[str, pd.DataFrame], experiment_id: str, output: Path, version: str
) -> dict:
    """Step 6, ``examples/close_the_loop.py`` on the champion: serve, route, label, retrain, trace."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "close_the_loop", Path(__file__).with_name("close_the_loop.py")
    )
    loop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop)
    return loop.close_the_loop(
        store,
        MODEL_NAME,
        version,
        production=data["production"],
        truth=data["production_truth"][TARGET],
        synthetic=data["synthetic_fixed"],
        real=data["real"],
        experiment_id=experiment_id,
        output=output,
        actor=ENGINEER,
    )


def run_story(output: Path) -> dict:
    """The whole story into ``output``; returns what happened (for tests and for the closing lines)."""
    from mlflow_hitl.adapter.gate import GateBlockedError, check_gate, promote, set_policy
    from mlflow_hitl.adapter.lineage import lineage, render_tree
    from mlflow_hitl.adapter.review import open_store

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ["MLFLOW_HITL_USER"] = ENGINEER  # who trains and validates: the recorded author
    # MLflow hints that integer columns cannot hold missing values; this data has none.
    warnings.filterwarnings(
        "ignore", message=r"(?s).*Inferred schema contains integer column", category=UserWarning
    )
    output.mkdir(parents=True, exist_ok=True)
    tracking_uri = f"sqlite:///{output / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)  # the demo's own registry too, whatever MLFLOW_REGISTRY_URI says
    experiment = mlflow.get_experiment_by_name("hitl-demo")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment("hitl-demo", artifact_location=(output / "artifacts").as_uri())
    )
    data = demo_data()
    write_demo_data(output / "data", data)
    (output / "policy.toml").write_text(POLICY)
    source, real, production = data["source"], data["real"], data["production"]
    truth, synthetic = data["production_truth"][TARGET], data["synthetic"]
    # Numbers as floats in the signature, so rows with missing values still pass MLflow's schema check.
    example = real[CATEGORICAL + NUMERIC].head(3).astype({c: "float64" for c in NUMERIC})
    print(
        f"real data: {len(source)} rows for the generator, {len(real)} labelled holdout, {len(production)} production"
    )
    print(
        f"synthetic: {len(synthetic)} rows; released rate for Black arrestees "
        f"{(synthetic[synthetic.colour == 'Black'][TARGET] == 'Yes').mean():.2f} synthetic vs "
        f"{(source[source.colour == 'Black'][TARGET] == 'Yes').mean():.2f} real; "
        f"{LEAKED_SHARE:.0%} of rows copied from real rows"
    )

    # 1. Evidence.
    model, run, result, first = _train_and_validate(
        experiment_id,
        "trained-on-synthetic",
        synthetic,
        example,
        synthetic=synthetic,
        real=real,
        production=production,
    )

    # 2. People.
    store = open_store()  # beside the MLflow store: demo-output/hitl.db
    print()
    appoint_people(store)
    set_policy(store, MODEL_NAME, POLICY, actor="root", source="policy.toml")
    print(f"policy of {MODEL_NAME} set by root: {output / 'policy.toml'}")
    audit = generator_audit(store, run.info.run_id, synthetic, real)
    queue_name = human_review(store, model, run.info.run_id, production, truth)

    # 3. The gate refuses version 1, with the reasons.
    print(f"\nrita asks for {MODEL_NAME} version {first} as {TARGET_ALIAS}:")
    try:
        promote(MODEL_NAME, first, target=f"alias:{TARGET_ALIAS}", store=store, actor="rita")
        raise AssertionError("the gate let the model trained on faulty synthetic data through")
    except GateBlockedError as refused:
        first_decision = refused.decision
    _show_decision(first_decision)

    # 4. The fix: an honest generator, plus the human-verified labels; then people approve.
    fixed = data["synthetic_fixed"]
    with_labels = {}

    def add_verified(rows):
        verified = mlflow_hitl.verified_labels(queue_name, store=store)  # logged as an input: the lineage
        with_labels["n"] = len(verified)
        return pd.concat([rows, verified[rows.columns]], ignore_index=True)

    _, retrain, again, second = _train_and_validate(
        experiment_id,
        "retrained-with-verified-labels",
        fixed,
        example,
        synthetic=fixed,
        real=real,
        production=production,
        before=add_verified,
        weights=lambda rows: np.r_[np.ones(len(fixed)), np.full(len(rows) - len(fixed), 5.0)],
    )
    print(f"  (trained on {len(fixed)} honest synthetic rows and {with_labels['n']} human-verified rows)")
    waiting = check_gate(MODEL_NAME, second, f"alias:{TARGET_ALIAS}", store=store, actor="rita")
    _show_decision(waiting)
    store.sign_off(
        run_id=retrain.info.run_id,
        check="fairness",
        user="dana",
        approve=True,
        note="no bias added by the generator; the remaining gap is the real data's own, checked by group",
    )
    store.sign_off(
        run_id=retrain.info.run_id, check="release", user="rita", approve=True, note="ready for champion"
    )
    print("dana approves the fairness audit, rita the release")
    granted = promote(MODEL_NAME, second, target=f"alias:{TARGET_ALIAS}", store=store, actor="rita")
    _show_decision(granted)
    print(f"{MODEL_NAME} version {second} is now {TARGET_ALIAS}")

    # 5. Lineage: from the champion back to the people.
    trace = lineage(MODEL_NAME, second, store=store)
    print(f"\nlineage of {MODEL_NAME} version {second}:")
    print(render_tree(trace), end="")

    # 6. The loop closes in production.
    loop = production_loop(store, data, experiment_id, output, second)
    return {
        "tracking_uri": tracking_uri,
        "first": {"version": first, "run_id": run.info.run_id, "result": result, "decision": first_decision},
        "second": {
            "version": second,
            "run_id": retrain.info.run_id,
            "result": again,
            "waiting": waiting,
            "decision": granted,
        },
        "queue": queue_name,
        "generator_audit": audit,
        "lineage": trace,
        "loop": loop,
        "audit": store.verify_audit(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo-output", help="folder for the SQLite store and artifacts")
    args = parser.parse_args(argv)
    output = Path(args.output).resolve()
    story = run_story(output)
    store, first = story["tracking_uri"], story["first"]
    report = output / "artifacts" / first["run_id"] / "artifacts" / "hitl" / "report.html"
    print(f"\naudit chain: {'intact' if story['audit'].ok else 'BROKEN'}, {story['audit'].n_events} events")
    print("\nWhere to look:")
    print(f"  the report:  {report}")
    print(f"  the data:    {output / 'data'} (CSV files for the README's command-line examples)")
    print(
        f"  the gate:    mlflow-hitl --tracking-uri {store} gate check models:/{MODEL_NAME}/1 --target {TARGET_ALIAS}"
    )
    print(
        f"  lineage:     mlflow-hitl --tracking-uri {store} lineage models:/{MODEL_NAME}/{story['second']['version']} --format html -o lineage.html"
    )
    print(f"  the audit:   mlflow-hitl --tracking-uri {store} audit verify")
    print(
        f"  the loop:    {story['loop']['dossier'].path}/index.html (version {story['loop']['version']}'s dossier)"
    )
    password = secrets.token_urlsafe(9)
    print("  the UI, with the gate enforced (MLflow basic auth: log in as admin with this password):")
    print(
        f"    MLFLOW_FLASK_SERVER_SECRET_KEY={secrets.token_hex(16)} MLFLOW_AUTH_ADMIN_PASSWORD={password} \\\n"
        f"    mlflow server --app-name hitl --backend-store-uri {store} --host 127.0.0.1 --port 5000"
    )
    print(
        "  Only that server enforces the gate. `mlflow ui` (or a plain `mlflow server`) on the same store lets\n"
        f"  anyone set the {TARGET_ALIAS} alias on any version: use it to browse, never to promote."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
