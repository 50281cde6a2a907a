"""The Model page's versions: fine-tune on the corrected history, watch it train, compare, activate, roll back.

Everything here goes through mnist.registry and mnist.finetune; the registry lives in the history database,
so every app process (and the API) sees the same versions and serves the active one within seconds.
Starting, activating and rolling back change what everyone is served: they wait for the API token when
MNIST_API_TOKEN is set (ui/auth.py), as relabelling does.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mnist import finetune, registry
from mnist.errors import EngineError, StoreUnavailable
from mnist.store import Filters, ModelVersion, Store
from ui import auth, charts, resources, views

WATCH_SECONDS = 2  # how often a training version's progress is read again
STATUS = {"training": "Training", "ready": "Ready", "failed": "Failed", "active": "Active", "retired": "Retired"}


def accuracy(figures: dict | None, key: str) -> float | None:
    """A version's accuracy on one evaluation set (mnist, holdout, redrawn), None when not measured."""
    return ((figures or {}).get(key) or {}).get("accuracy")


def percent(figures: dict | None, key: str) -> float | None:
    """The same accuracy in percent, for a table column that shows two decimals whatever the value."""
    value = accuracy(figures, key)
    return None if value is None else 100 * value


def name(model: ModelVersion) -> str:
    """How a version is named to a person: the shipped weights say so."""
    return f"{model.version} (shipped)" if model.is_shipped else model.version


def gate_text(model: ModelVersion) -> str:
    """The gate's answer in a few words."""
    if model.is_shipped:
        return "version zero"
    gate = model.gate or {}
    if "passed" not in gate:
        return "—"
    if gate.get("forced_at"):
        return "refused, activated anyway"
    return "passed" if gate["passed"] else "refused: " + "; ".join(gate.get("reasons") or [])


def table(models: list[ModelVersion]) -> None:
    """Every version, newest first: status, lineage and the figures on each evaluation set."""
    frame = pd.DataFrame(
        {
            "version": [name(m) for m in models],
            "status": [STATUS.get(m.status, m.status) for m in models],
            "progress": [m.progress if m.status == "training" else None for m in models],
            "parent": [m.parent or "" for m in models],
            "created": [m.created_at.replace(tzinfo=None) for m in models],
            "rows": [m.rows_trained_on for m in models],
            "mnist": [percent(m.metrics, "mnist") for m in models],
            "holdout": [percent(m.metrics, "holdout") for m in models],
            "redrawn": [percent(m.metrics, "redrawn") for m in models],
            "gate": [gate_text(m) for m in models],
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        placeholder=views.MISSING,
        column_config={
            "version": st.column_config.TextColumn("Version"),
            "status": st.column_config.TextColumn("Status"),
            "progress": st.column_config.ProgressColumn("Progress", format="percent", min_value=0, max_value=1),
            "parent": st.column_config.TextColumn("Made from"),
            "created": st.column_config.DatetimeColumn("Created (UTC)", format="YYYY-MM-DD HH:mm"),
            "rows": st.column_config.NumberColumn("Labelled digits trained on", format="%d"),
            "mnist": st.column_config.NumberColumn("MNIST", format="%.2f%%"),
            "holdout": st.column_config.NumberColumn("History holdout", format="%.2f%%"),
            "redrawn": st.column_config.NumberColumn("Redrawn digits", format="%.2f%%"),
            "gate": st.column_config.TextColumn("Gate", width="large"),
        },
        key="versions_table",
    )


def _act(action, done: str) -> None:
    """Run a registry change if this session may; what became of it is shown once by message()."""
    if not auth.allowed():
        st.session_state["model_message"] = ("error", "Locked: unlock with the API token first.")
        return
    try:
        action()
    except (EngineError, ValueError) as exc:  # the registry says why (gate, one job at a time, no labels, ...)
        st.session_state["model_message"] = ("error", str(exc))
        return
    st.session_state["model_message"] = ("success", done)


def start(store: Store) -> None:
    epochs = int(st.session_state.get("finetune_epochs") or finetune.EPOCHS)
    _act(lambda: finetune.start(store, epochs=epochs), "Fine-tune started: its progress shows below.")


def activate(store: Store, version: str, force: bool) -> None:
    _act(
        lambda: registry.activate(store, version, force=force),
        f"Version {version} is active: every app process serves it within a few seconds.",
    )


def roll_back(store: Store) -> None:
    _act(lambda: registry.roll_back(store), "Rolled back: the shipped weights are served again.")


def message() -> None:
    """The outcome of the last start, activation or rollback, shown once."""
    kind, text = st.session_state.pop("model_message", (None, None))
    if kind == "success":
        st.success(views.plain(text), icon=":material/check:")
    elif kind == "error":
        st.error(views.plain(text), icon=":material/error:")


def start_form(store: Store, training: ModelVersion | None) -> None:
    """How many corrections there are to learn from, and the button that starts a fine-tune on them."""
    if training is not None:  # one fine-tune at a time: its progress shows instead
        return
    labelled = store.page(limit=1, filters=Filters(labelled=True)).total
    if not labelled:
        st.info(
            'Nothing to learn from yet: correct some readings in the History (or answer "Was this right?" after '
            "saving a drawing), then fine-tune the model on them here.",
            icon=":material/school:",
        )
        return
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    left.number_input("Epochs", min_value=1, max_value=100, value=finetune.EPOCHS, key="finetune_epochs")
    right.button(
        f"Fine-tune on {labelled:,} labelled row(s)",
        type="primary",
        icon=":material/model_training:",
        key="finetune_start",
        on_click=start,
        args=(store,),
        help="From the active version, on the labelled history (one row in five held out to judge it) mixed "
        "with MNIST training digits so it does not forget; in a process of its own, so reading goes on.",
    )


@st.fragment(run_every=WATCH_SECONDS)
def watch(store: Store, version: str) -> None:
    """A training version's progress, read again every WATCH_SECONDS; the page reruns once it is done."""
    try:
        model = store.model(version)
    except (EngineError, StoreUnavailable) as exc:
        st.warning(f"Could not read the fine-tune's progress: {views.plain(exc)}")
        return
    if model.status != "training":
        st.rerun()  # the whole page: the table, the comparison and the buttons follow the finished version
    st.progress(model.progress, text=f"Fine-tuning {model.version}: {views.plain(model.stage or 'starting')}")


def compare(store: Store, models: list[ModelVersion]) -> None:
    """A fine-tuned version beside the version it was made from, on the same evaluation sets."""
    measured = [m for m in models if not m.is_shipped and m.metrics and (m.gate or {}).get("parent_metrics")]
    if not measured:
        return
    st.markdown("**Compare a fine-tuned version with the one it was made from**")
    chosen = st.selectbox("Version", measured, format_func=name, key="compare_version")
    before, after = chosen.gate["parent_metrics"], chosen.metrics
    columns = st.columns(3)
    for column, key, label in zip(
        columns, ("holdout", "mnist", "redrawn"), ("History holdout", "MNIST", "Redrawn digits"), strict=True
    ):
        old, new = accuracy(before, key), accuracy(after, key)
        column.metric(
            label,
            "—" if new is None else f"{new:.2%}",
            None if new is None or old is None else f"{(new - old) * 100:+.2f} points",
            border=True,
            help=f"{chosen.gate['parent']}: {'—' if old is None else f'{old:.2%}'}",
        )
    left, right = st.columns(2, gap="large")
    sides = ((left, before, f"{chosen.gate['parent']} (made from)"), (right, after, chosen.version))
    for column, figures, title in sides:
        mnist = (figures or {}).get("mnist") or {}
        if mnist.get("per_class_accuracy"):
            chart = charts.per_class_accuracy(mnist["per_class_accuracy"], title=f"{title}: MNIST per digit")
            column.altair_chart(chart, width="stretch")
        held = (figures or {}).get("holdout") or {}
        if held.get("confusion_matrix"):
            chart = charts.confusion(held["confusion_matrix"], title=f"{title}: history holdout")
            column.altair_chart(chart, width="stretch")
    actions(store, chosen)


def actions(store: Store, model: ModelVersion) -> None:
    """Activate the version compared (forced past a refusing gate only on purpose)."""
    if model.status == "active" or model.status not in ("ready", "retired"):
        return
    gate = model.gate or {}
    refused = model.status == "ready" and not gate.get("passed", False)
    if refused:
        reasons = views.plain("; ".join(gate.get("reasons") or []))
        st.warning(f"The gate refused it: {reasons}", icon=":material/gpp_bad:")
        force = st.checkbox("Activate it anyway (logged)", key=f"force_{model.version}")
    else:
        force = False
    st.button(
        f"Activate {model.version}",
        type="primary",
        icon=":material/rocket_launch:",
        key=f"activate_{model.version}",
        disabled=refused and not force,
        on_click=activate,
        args=(store, model.version, force),
    )


def section() -> None:
    """The registry on the Model page."""
    st.subheader("Versions: learning from corrections")
    store = resources.get_store()
    if store is None or not resources.database_ready():
        st.info("The history database is not reachable: the model's versions live there.")
        return
    message()
    try:
        models = registry.list_models(store)
    except (EngineError, StoreUnavailable) as exc:
        st.warning(f"Could not read the model's versions: {views.plain(exc)}")
        return
    active = next((m for m in models if m.status == "active"), None)
    training = next((m for m in models if m.status == "training"), None)
    st.caption(
        f"Serving **{views.plain(name(active)) if active else 'the shipped weights'}**. A fine-tune learns from "
        "the labelled history; its gate refuses a version worse than the one it was made from on the held-out "
        f"labelled rows or more than {finetune.MAX_MNIST_DROP_POINTS} points worse on MNIST."
    )
    if not auth.allowed():
        auth.unlock_form()
    else:
        start_form(store, training)
    if training is not None:
        watch(store, training.version)
    table(models)
    if auth.allowed() and active is not None and not active.is_shipped:
        st.button(
            "Roll back to the shipped weights",
            icon=":material/undo:",
            key="roll_back",
            on_click=roll_back,
            args=(store,),
        )
    compare(store, models)
