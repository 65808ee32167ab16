"""The Hardware page: what Hearth detected, how the current model was placed, and the state cache.

Detection (a llama.cpp subprocess probe) and the engine's stats (a blocking pipe
call to the worker) both run as JobRunner jobs (ui/widgets/jobs.py); results come
back on the GUI thread, and ``shutdown`` (wired to the window's close) joins them.
The page takes the context and the chat controller; what it finds goes out as
signals (``hardware_detected``, ``stats_updated``) that build_window connects.
When the plan carries an 8-bit KV-cache offer (a markedly larger context), the
page shows it with a button that sets Settings.kv_cache and reloads the model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget,
)

from app.errors import HearthError
from app.hardware import HardwareInfo, detect_hardware
from app.models.units import format_bytes_or
from ui.widgets.forms import add_form_row, aligned_form
from ui.widgets.inputs import guard_wheel
from ui.widgets.jobs import JobRunner
from ui.widgets.labels import VERDICT_BADGES, hint_label, page_title, verdict_colour
from ui.widgets.page_layout import scrolled_page

if TYPE_CHECKING:
    from app.context import AppContext
    from ui.chat.controller import ChatController

log = logging.getLogger(__name__)

JOB_TICK_MS = 50  # detection and stats results reach the page within a frame or three

# HardwareInfo.unknown keys, as a person would name them
PROBE_NAMES: dict[str, str] = {
    "cpu_model": "CPU model",
    "cpu_physical_cores": "Physical cores",
    "cpu_logical_cores": "Logical cores",
    "ram": "Memory (RAM)",
    "cgroup_memory_limit": "Container memory limit",
    "simd": "SIMD features",
    "llama_cpp_backends": "llama.cpp backends",
    "nvidia": "NVIDIA GPUs",
    "drm_gpus": "Other GPUs",
    "apple_gpu": "Apple GPU",
    "disk_free": "Free disk space",
}

NO_MODEL_PLAN = "No model is loaded. Open a model to see how Hearth placed it on this computer."
ACCEPT_KV_OFFER = "Use the 8-bit cache"


def _gb(n: int | None) -> str:
    """A size as the whole UI shows sizes (app.models.units.format_bytes: decimal GB/MB)."""
    return format_bytes_or(n)


def _unknown(hw: HardwareInfo, *keys: str) -> str:
    """'Unknown (reason)' for the first probe among ``keys`` that failed."""
    for k in keys:
        if k in hw.unknown:
            return f"Unknown ({hw.unknown[k]})"
    return "Unknown"


def hardware_rows(hw: HardwareInfo) -> list[tuple[str, str]]:
    """(row title, text) for each thing detected, unknowns with their reason."""
    rows: list[tuple[str, str]] = []
    if hw.source != "detected":
        rows.append(("Source", f"{hw.source}: {hw.description}" if hw.description else hw.source))
    system = " ".join(x for x in (hw.os, hw.os_version) if x) or _unknown(hw)
    rows.append(("System", f"{system} ({hw.arch or 'unknown architecture'})"))
    rows.append(("CPU", hw.cpu_model or _unknown(hw, "cpu_model")))
    phys = str(hw.cpu_physical_cores) if hw.cpu_physical_cores else _unknown(hw, "cpu_physical_cores")
    logical = str(hw.cpu_logical_cores) if hw.cpu_logical_cores else _unknown(hw, "cpu_logical_cores")
    rows.append(("Cores", f"{phys} physical, {logical} logical"))
    rows.append(("SIMD features", ", ".join(hw.simd) if hw.simd else _unknown(hw, "simd")))
    if hw.ram_total is None:
        rows.append(("Memory (RAM)", _unknown(hw, "ram")))
    else:
        rows.append(("Memory (RAM)", f"{_gb(hw.ram_total)} total, {_gb(hw.ram_available)} available"))
    if not hw.gpus:
        failed = [PROBE_NAMES.get(k, k) for k in ("nvidia", "drm_gpus", "apple_gpu") if k in hw.unknown]
        rows.append(("GPU", "None found" + (f" (could not check: {', '.join(failed)})" if failed else "")))
    for g in hw.gpus:
        if g.unified_memory:
            mem = f"{_gb(g.vram_total)} unified memory, GPU budget {_gb(g.working_set)}"
            if g.working_set_estimated:
                mem += " (estimated)"
        else:
            mem = f"{_gb(g.vram_total)} VRAM ({_gb(g.vram_free)} free)"
        parts = [mem]
        if g.driver:
            parts.append(f"driver {g.driver}")
        if g.compute_capability:
            parts.append(f"compute capability {g.compute_capability}")
        if g.backend:
            parts.append(g.backend.upper() if len(g.backend) <= 5 else g.backend)
        title = "GPU" if len(hw.gpus) == 1 else f"GPU {g.index}"
        rows.append((title, f"{g.name}: " + ", ".join(parts)))
    b = hw.backend
    if b.probed:
        devs = ", ".join(f"{d.name} ({d.description})" if d.description else d.name for d in b.devices) or "none"
        offload = "yes" if b.gpu_offload else "no"
        rows.append(("llama.cpp", f"llama-cpp-python {b.llama_cpp_version or '?'}; devices: {devs}; "
                                  f"GPU offload: {offload}"))
    else:
        devs = ", ".join(d.name for d in b.devices)
        reason = "described by a profile" if b.reason == "profile" else (b.reason or "not checked")
        rows.append(("llama.cpp", f"Not probed ({reason})" + (f"; expected devices: {devs}" if devs else "")))
    if hw.models_dir is not None:
        free = _gb(hw.disk_free) + " free" if hw.disk_free is not None else _unknown(hw, "disk_free")
        rows.append(("Models folder disk", f"{free} in {hw.models_dir}"))
    return rows


def plan_rows(plan: dict[str, Any], rss_bytes: int | None) -> list[tuple[str, str]]:
    """(row title, text) for a LoadPlan.to_json() dict and the worker's measured RSS."""
    gl = int(plan.get("n_gpu_layers", 0))
    gpu_layers = "All layers" if gl < 0 else ("None (runs on the CPU)" if gl == 0 else f"{gl} layers")
    cel = int(plan.get("cpu_expert_layers", 0))
    experts = "None" if cel == 0 else f"{cel} layers' experts on the CPU"
    in_use = f"{_gb(rss_bytes)} in use by the model process" if rss_bytes else "in use: measuring…"
    kv = str(plan.get("type_k", "?")).upper()
    if plan.get("type_v") and plan.get("type_v") != plan.get("type_k"):
        kv += f" / {str(plan['type_v']).upper()}"
    rows = [
        ("GPU layers", gpu_layers),
        ("CPU expert layers", experts),
        ("Context", f"{int(plan.get('n_ctx', 0)):,} tokens"),
        ("Flash attention", "On" if plan.get("flash_attn") else "Off"),
        ("KV cache type", kv),
        ("Threads", str(plan.get("n_threads", "?"))),
        ("Memory-mapped file", "Yes" if plan.get("use_mmap") else "No"),
        ("RAM", f"{_gb(plan.get('ram_bytes'))} predicted; {in_use}"),
        ("GPU memory", f"{_gb(plan.get('vram_bytes'))} predicted" if plan.get("vram_bytes") else "None"),
        ("Estimated speed", f"about {float(plan.get('est_tok_per_s', 0)):.0f} tokens/s"),
    ]
    return rows


def cache_line(stats: dict[str, Any]) -> str:
    """'N of M recent conversations kept, X MB of Y GB' from EngineClient.stats()."""
    budget = int(stats.get("states_budget_bytes") or 0)
    if budget <= 0:
        return "Conversation-state cache is off (size 0 in Settings › Advanced)."
    return (f"{int(stats.get('states_cached') or 0)} of {int(stats.get('states_max_entries') or 0)} recent "
            f"conversations kept, {_gb(int(stats.get('states_bytes') or 0))} of {_gb(budget)}")


class HardwarePage(QWidget):
    """What this computer offers, the current model's plan, and the state cache."""

    hardware_detected = Signal(object)  # HardwareInfo
    stats_updated = Signal(dict)  # EngineClient.stats()

    def __init__(self, ctx: AppContext, controller: ChatController, *,
                 reload_model: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.controller = controller
        # Accepting the KV offer reloads the model; the window passes its own reload.
        self.reload_model = reload_model or (lambda: controller.load_model(controller.model_path)
                                             if controller.model_path else None)
        self.setObjectName("hardwarePage")
        self.hardware: HardwareInfo | None = None
        self.stats: dict[str, Any] | None = None
        self._detect_gen = 0
        self._stats_gen = 0
        self._stats_running = False
        self._stats_again = False
        self._closing = False
        self.jobs = JobRunner(self, tick_ms=JOB_TICK_MS, name="hardware")
        self._build()
        guard_wheel(self)
        c = controller
        c.model_loaded.connect(self._on_controller_model_loaded)
        c.model_unloaded.connect(self._on_controller_model_unloaded)
        c.busy_changed.connect(self._on_controller_busy_changed)
        self._show_plan()

    # ---- layout ----------------------------------------------------------

    def _build(self) -> None:
        _, _, col = scrolled_page(self)

        top = QHBoxLayout()
        title = page_title("Hardware")
        top.addWidget(title)
        top.addStretch(1)
        self.detect_status = QLabel("")
        self.detect_status.setAccessibleName("Detection status")
        top.addWidget(self.detect_status)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setAccessibleName("Detect hardware again")
        self.refresh_button.setToolTip("Detect the CPU, memory, GPUs and disk space again")
        self.refresh_button.clicked.connect(self.refresh)
        top.addWidget(self.refresh_button)
        col.addLayout(top)

        self.hw_box = QGroupBox("This computer")
        self.hw_box.setAccessibleName("This computer")
        self.hw_form = aligned_form(self.hw_box)
        col.addWidget(self.hw_box)
        self.unknown_label: QLabel | None = None

        self.plan_box = QGroupBox("Current model")
        self.plan_box.setAccessibleName("Current model plan")
        pl = QVBoxLayout(self.plan_box)
        head = QHBoxLayout()
        self.verdict_badge = QLabel("")
        self.verdict_badge.setObjectName("verdictBadge")
        self.verdict_badge.setAccessibleName("Fit verdict")
        self.verdict_badge.setVisible(False)
        head.addWidget(self.verdict_badge)
        self.plan_title = self._value_label("Model")
        head.addWidget(self.plan_title, 1)
        pl.addLayout(head)
        self.plan_form = aligned_form()
        pl.addLayout(self.plan_form)
        self.plan_explanation = self._value_label("Why this plan")
        pl.addWidget(self.plan_explanation)
        self.retry_note = self._value_label("Retry note")
        self.retry_note.setObjectName("errorLabel")
        self.retry_note.setVisible(False)
        pl.addWidget(self.retry_note)
        self.kv_offer_row = QWidget()
        kr = QHBoxLayout(self.kv_offer_row)
        kr.setContentsMargins(0, 4, 0, 0)
        self.kv_offer_label = self._value_label("Larger context offer")
        kr.addWidget(self.kv_offer_label, 1)
        self.kv_offer_button = QPushButton(ACCEPT_KV_OFFER)
        self.kv_offer_button.setObjectName("primaryButton")
        self.kv_offer_button.setAccessibleName("Use the 8-bit KV cache and reload the model")
        self.kv_offer_button.setToolTip("Sets Settings › Advanced › KV cache to 8-bit and loads the model again")
        self.kv_offer_button.clicked.connect(self._on_kv_offer_button_clicked)
        kr.addWidget(self.kv_offer_button, 0, Qt.AlignmentFlag.AlignTop)
        self.kv_offer_row.setVisible(False)
        pl.addWidget(self.kv_offer_row)
        col.addWidget(self.plan_box)

        self.cache_box = QGroupBox("Conversation memory")
        self.cache_box.setAccessibleName("Conversation memory")
        cl = QVBoxLayout(self.cache_box)
        self.cache_label = self._value_label("Conversation-state cache")
        self.cache_label.setText("No model is loaded.")
        cl.addWidget(self.cache_label)
        hint = hint_label("Recent conversations' processed prompts are kept so that a reply starts at once. "
                          "The size is set in Settings › Advanced.")
        cl.addWidget(hint)
        col.addWidget(self.cache_box)
        col.addStretch(1)

    def _value_label(self, name: str) -> QLabel:
        lab = QLabel("")
        lab.setWordWrap(True)
        lab.setAccessibleName(name)
        lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                    | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        return lab

    def _fill_form(self, form: QFormLayout, rows: list[tuple[str, str]]) -> None:
        while form.rowCount():
            form.removeRow(0)
        for title, text in rows:
            lab = self._value_label(title)
            lab.setText(text)
            add_form_row(form, title, lab)

    # ---- detection -------------------------------------------------------

    def refresh(self) -> None:
        """Detect the hardware again, in the background."""
        if self._closing:
            return
        self._detect_gen += 1
        gen = self._detect_gen
        self.refresh_button.setEnabled(False)
        self.detect_status.setText("Detecting…")
        models_dir = self.ctx.models_dir
        self._spawn("detect", gen, lambda: detect_hardware(models_dir))

    def _show_hardware(self, hw: HardwareInfo) -> None:
        self.hardware = hw
        self._fill_form(self.hw_form, hardware_rows(hw))
        self.unknown_label = None
        if hw.unknown:
            # _fill_form deleted the previous rows' labels: this one is new each time too.
            self.unknown_label = self._value_label("Could not detect")
            self.unknown_label.setObjectName("unknownList")
            self.unknown_label.setTextFormat(Qt.TextFormat.PlainText)
            self.unknown_label.setText("\n".join(f"{PROBE_NAMES.get(k, k)}: {v}" for k, v in hw.unknown.items()))
            add_form_row(self.hw_form, "Could not detect", self.unknown_label)

    # ---- model plan ------------------------------------------------------

    def _show_plan(self) -> None:
        choice = self.controller.load_choice
        loaded = self.controller.loaded
        if not loaded or choice is None:
            self.verdict_badge.setVisible(False)
            self.plan_title.setText(NO_MODEL_PLAN)
            self._fill_form(self.plan_form, [])
            self.plan_explanation.setText("")
            self.retry_note.setVisible(False)
            self.kv_offer_row.setVisible(False)
            return
        plan: dict[str, Any] = dict(choice.plan or {})
        text, colour = VERDICT_BADGES.get(plan.get("verdict", ""), (str(plan.get("verdict", "?")), "#666666"))
        colour = verdict_colour(str(plan.get("verdict", "")), colour)  # the theme's success/warning/danger
        self.verdict_badge.setText(text)
        self.verdict_badge.setStyleSheet(
            f"QLabel#verdictBadge {{ background: {colour}; color: white; border-radius: 9px; padding: 2px 10px; }}")
        self.verdict_badge.setToolTip(choice.explanation)
        self.verdict_badge.setVisible(True)
        info = self.controller.model_info or {}
        name = plan.get("model") or info.get("name") or "the model"
        self.plan_title.setText(f"<b>{_html(str(name))}</b>")
        rss = (self.stats or {}).get("rss_bytes") or info.get("rss_bytes")
        self._fill_form(self.plan_form, plan_rows(plan, rss))
        notes = plan.get("notes") or []
        expl = choice.explanation or plan.get("explanation", "")
        self.plan_explanation.setText(expl + ("".join(f"\n• {n}" for n in notes) if notes else ""))
        self.retry_note.setText(f"After running out of memory, Hearth retried: {choice.retry_note}"
                                if choice.retry_note else "")
        self.retry_note.setVisible(bool(choice.retry_note))
        offer = plan.get("kv_offer") or {}
        self.kv_offer_label.setText(f"Larger context: {offer.get('explanation', '')}" if offer else "")
        self.kv_offer_row.setVisible(bool(offer))

    def _on_kv_offer_button_clicked(self) -> None:
        offer = dict((self.controller.load_choice.plan or {}).get("kv_offer") or {}) \
            if self.controller.load_choice else {}
        if not offer:
            return
        previous = self.ctx.settings.kv_cache
        self.ctx.settings.kv_cache = str(offer.get("type_k", "q8_0"))
        try:
            self.ctx.save_settings()
        except HearthError as exc:
            self.ctx.settings.kv_cache = previous
            self.kv_offer_label.setText(f"Could not save the setting: {exc}")
            return
        self.kv_offer_row.setVisible(False)
        self.reload_model()

    # ---- engine stats ----------------------------------------------------

    def refresh_stats(self) -> None:
        """Ask the worker for memory and cache numbers, in the background (never while generating)."""
        c = self.controller
        if self._closing or not c.loaded or c.generating:
            return
        if self._stats_running:
            self._stats_again = True  # one more when the current one is back
            return
        self._stats_running = True
        self._stats_gen += 1
        engine = c.engine
        self._spawn("stats", self._stats_gen, engine.stats)

    def _show_stats(self, stats: dict[str, Any]) -> None:
        self.stats = stats
        self.cache_label.setText(cache_line(stats))
        self._show_plan()
        self.stats_updated.emit(dict(stats))

    # ---- threads ---------------------------------------------------------

    def _spawn(self, kind: str, gen: int, fn: Callable[[], Any]) -> None:
        def done(result: Any, error: BaseException | None) -> None:
            if error is not None:
                log.warning("hardware page %s failed: %s", kind, error)
            self._on_job_done(kind, gen, result, error)

        self.jobs.call(kind, lambda _cancel: fn(), done)

    def _on_job_done(self, kind: str, gen: int, result: Any, error: Any) -> None:
        if kind == "detect":
            if gen != self._detect_gen:
                return  # a newer Refresh is on its way
            self.refresh_button.setEnabled(True)
            if error is not None:
                self.detect_status.setText(f"Detection failed: {error}")
                return
            self.detect_status.setText("")
            self._show_hardware(result)
            self.hardware_detected.emit(result)
        elif kind == "stats":
            self._stats_running = False
            if not self.controller.loaded:
                self.cache_label.setText("No model is loaded.")  # unloaded while the call was out
            elif error is not None:
                # The worker may have gone away (unload, crash): say so instead of keeping old numbers.
                msg = str(error) if isinstance(error, HearthError) else f"unexpected error: {error}"
                self.cache_label.setText(f"Could not read the model process's numbers: {msg}")
            elif gen == self._stats_gen:
                self._show_stats(dict(result or {}))
            if self._stats_again:
                self._stats_again = False
                self.refresh_stats()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Join the background jobs (the window is closing)."""
        self._closing = True
        for job in self.jobs.jobs:
            if job.thread is not None:
                job.thread.join(0.5)
            if job.running and self.controller.generating:
                # A stats call waits for the engine behind a reply: stop the reply (the window
                # is closing and would stop it next anyway) so the call can finish.
                self.controller.stop()
        self.jobs.shutdown(timeout)

    # ---- controller ------------------------------------------------------

    def _on_controller_model_loaded(self, _info: dict) -> None:
        self.stats = None
        self._show_plan()
        self.refresh_stats()

    def _on_controller_model_unloaded(self, _reason: str) -> None:
        self.stats = None
        self._show_plan()
        self.cache_label.setText("No model is loaded.")

    def _on_controller_busy_changed(self, busy: bool) -> None:
        if not busy:
            self.refresh_stats()


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
