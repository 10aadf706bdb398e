"""The privileged-field panel in a real browser: JupyterLab started here, Debian chromium driven by
Playwright.

The test opens chapter 1 (a copy in a temporary folder, so autosave cannot touch the repo), runs
every cell, checks the panel's layout (no button label cut, the plot not stretched, no raw
markup printed), unticks a privileged field of the teacher, waits for the panel's summary to show the
corrupted configuration, ticks it again, waits for the intact one, and keeps a screenshot in
runs/browser/ (git-ignored). The kernel inherits the server's environment: the quick task and
the notebooks' FAST budgets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_observation_schema.ipynb"
SCREENSHOTS = ROOT / "runs" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-extensions", "--no-first-run"]
FIELD = "joint_vel_rel"          # the cart-pole teacher's first privileged input

pytestmark = pytest.mark.slow

RUN_STATE = """() => {
    const notebook = window.jupyterapp.shell.currentWidget;
    const cells = notebook.content.widgets.filter(cell => cell.model.type === 'code');
    for (const cell of cells) {
        const error = cell.model.outputs.toJSON().find(output => output.output_type === 'error');
        if (error) return `${error.ename}: ${error.evalue}`;
    }
    const idle = notebook.sessionContext.session.kernel.status === 'idle';
    return idle && cells.every(cell => cell.model.executionCount !== null) ? 'done' : false;
}"""


def chromium() -> str:
    """Debian's chromium (Playwright's own browser downloads are not reachable from CI machines)."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} is missing and cannot be installed here (needs apt-get as root): "
                    f"run `apt-get install -y chromium`")
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    done = subprocess.run(install, capture_output=True, text=True)
    if done.returncode != 0:                     # a fresh machine may have no package lists yet
        subprocess.run(["apt-get", "update"], capture_output=True, text=True)
        done = subprocess.run(install, capture_output=True, text=True)
    if done.returncode != 0 or not Path(CHROMIUM).exists():
        pytest.skip(f"`apt-get install chromium` failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a copy of chapter 1; yields its URL."""
    assert NOTEBOOK.exists(), f"{NOTEBOOK} is missing"
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(NOTEBOOK, served / NOTEBOOK.name)
    # no "build recommended" dialog (an extension in the env is not in the prebuilt lab) and no news toast
    labconfig = tmp_path / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps({
        "buildCheck": False, "buildAvailable": False,
        "disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port = free_port()
    env = {**os.environ, "DISTILLKIT_TASK": "cartpole", "DISTILLKIT_FAST": "1",
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
         "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={served}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_privileged_field_panel_in_jupyterlab(jupyterlab):
    from playwright.sync_api import expect, sync_playwright

    executable = chromium()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{jupyterlab}/lab/tree/{NOTEBOOK.name}")
            page.wait_for_function("window.jupyterapp !== undefined && window.jupyterapp.shell.currentWidget "
                                   "&& window.jupyterapp.shell.currentWidget.sessionContext "
                                   "&& window.jupyterapp.shell.currentWidget.sessionContext.session "
                                   "&& window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                                   timeout=90_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            # done when every code cell has an execution count and the kernel is idle; stop at an error
            outcome = page.wait_for_function(RUN_STATE, timeout=300_000).json_value()
            assert outcome == "done", f"a notebook cell raised: {outcome}"

            panel = page.locator(".widget-vbox", has=page.locator(".widget-checkbox", has_text=FIELD)).first
            summary = panel.locator(".widget-html-content", has_text="fall rate").first
            expect(summary).to_contain_text("all privileged inputs intact", timeout=60_000)
            intact = summary.inner_text()
            # what a learner sees: no button cut to "▶ ru…", the plot at its own aspect ratio (not
            # stretched to the controls' height), the summary as text, not markup
            cut = panel.evaluate("""p => [...p.querySelectorAll('button')]
                .filter(b => b.offsetWidth > 0 && b.scrollWidth > b.clientWidth + 1).map(b => b.textContent)""")
            assert not cut, f"buttons whose label is cut: {cut}"
            shown, natural = panel.locator("img").first.evaluate(
                "i => [i.clientWidth / i.clientHeight, i.naturalWidth / i.naturalHeight]")
            assert abs(shown - natural) < 0.05 * natural, f"plot stretched: aspect {shown:.2f}, drawn {natural:.2f}"
            assert "<b>" not in " ".join(page.locator(".jp-OutputArea-output pre").all_inner_texts())
            checkbox = panel.locator(".widget-checkbox", has_text=FIELD).locator("input")
            assert checkbox.is_checked()

            checkbox.uncheck()
            expect(summary).to_contain_text(f"{FIELD} zeroed", timeout=120_000)
            collapsed = summary.inner_text()
            page.screenshot(path=str(SCREENSHOTS / "01_panel_field_unticked.png"), full_page=False)
            returns = [float(re.search(r"return (-?[\d.]+)", text)[1]) for text in (intact, collapsed)]
            assert returns[1] < 0.5 * returns[0], f"no collapse without {FIELD}: {intact!r} -> {collapsed!r}"

            checkbox.check()
            expect(summary).to_contain_text("all privileged inputs intact", timeout=120_000)
            assert summary.inner_text() == intact      # same held-out panel, same teacher: same numbers
            panel.screenshot(path=str(SCREENSHOTS / "01_panel.png"))
        except Exception:
            page.screenshot(path=str(SCREENSHOTS / "01_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
