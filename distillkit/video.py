"""Videos of one closed-loop rollout, rendered offscreen by MuJoCo (CPU engine, any task).

MuJoCo chooses its OpenGL context class once, when it is first imported, from the ``MUJOCO_GL``
variable. Which value works depends on the platform, so a notebook calls
:func:`configure_rendering` in its first cell, before anything imports mujoco:

- the user's own ``MUJOCO_GL`` is always kept;
- Linux without a display (no ``DISPLAY`` or ``WAYLAND_DISPLAY``: a server, CI, a container):
  ``egl``, offscreen rendering (Mesa's llvmpipe on a CPU-only machine); ``osmesa`` when there is
  no EGL library but OSMesa; ``disable`` when there is neither (``import mujoco`` would fail with
  either: PyOpenGL cannot load the library), so simulation works and videos are skipped;
- Linux with a display, macOS, Windows: left unset, so MuJoCo uses its default (GLFW; CGL on
  macOS). MuJoCo rejects ``egl`` outside Linux.

:func:`rendering_problem` tries one tiny offscreen frame and says, in one line, why rendering is
not possible here (or ``None``); chapters skip their videos with that message instead of failing.
When mujoco was already imported with the default (GLFW, which needs a display) on Linux without a
display, :func:`renderer` switches the context class to EGL before creating a renderer.

Shadows and reflections are off: with them llvmpipe renders 10-27 frames/s at 320x240, without
them 45-112 on a 2-core build machine.

This module imports mujoco only when it renders, so importing it to configure rendering is safe.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    import mujoco


def choose_mujoco_gl(platform: str | None = None, environ: Mapping[str, str] | None = None,
                     find_library: Callable[[str], str | None] = ctypes.util.find_library) -> str | None:
    """The ``MUJOCO_GL`` value for ``platform`` (``sys.platform`` style: "linux", "darwin",
    "win32") and environment ``environ`` (default: this process's): the user's own value when set;
    on Linux without a display ``"egl"``, else ``"osmesa"``, else ``"disable"``, by which GL
    library ``find_library`` finds; ``None`` (leave it unset: MuJoCo's default) otherwise."""
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    if environ.get("MUJOCO_GL"):
        return environ["MUJOCO_GL"]
    if platform.startswith("linux") and not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"):
        for value, library in (("egl", "EGL"), ("osmesa", "OSMesa")):
            if find_library(library):
                return value
        return "disable"
    return None


def configure_rendering() -> str | None:
    """Set ``MUJOCO_GL`` as :func:`choose_mujoco_gl` says (only when it is unset); returns the value
    in effect (``None``: MuJoCo's default). Call it before mujoco is imported: MuJoCo reads the
    variable once, at import."""
    choice = choose_mujoco_gl()
    if choice is not None:
        os.environ.setdefault("MUJOCO_GL", choice)
    return choice


@lru_cache(maxsize=1)
def rendering_problem() -> str | None:
    """``None`` when MuJoCo can render offscreen here; otherwise one line saying why not and what
    to try. Tries one 8x8 frame (once per process)."""
    gl = os.environ.get("MUJOCO_GL") or "default (GLFW)"
    if gl in ("disable", "disabled", "off", "false", "0"):
        return (f"MuJoCo's rendering is off (MUJOCO_GL={gl}; on Linux without a display it is chosen when neither "
                f"an EGL nor an OSMesa library is installed). Install one (Debian/Ubuntu: libegl1 or libosmesa6) "
                f"and restart the kernel for videos.")
    try:
        import mujoco

        model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='.1'/></worldbody></mujoco>")
        scene = renderer(model, 8, 8)
        try:
            scene.update_scene(mujoco.MjData(model))
            scene.render()
        finally:
            scene.close()
    except Exception as err:         # any failure of the GL stack means no video, not a failed chapter
        reason = " ".join(f"{type(err).__name__}: {err}".split())[:200]
        return (f"MuJoCo cannot render offscreen here (MUJOCO_GL={gl}; {reason}). On Linux without a display "
                f"install EGL (libegl1) or OSMesa and set MUJOCO_GL=egl or osmesa; elsewhere run with a display.")
    return None


#: How each task is filmed: a named camera of its MJCF, or a free camera looking at a point.
CAMERAS = {
    "cartpole": {"lookat": (0.0, 0.0, 1.4), "distance": 5.0, "elevation": -8.0, "azimuth": 90.0},
    "walker_rough": {"camera": "side"},
}


def renderer(model: mujoco.MjModel, width: int, height: int) -> mujoco.Renderer:
    import mujoco
    from mujoco.rendering.classic import gl_context

    headless_linux = choose_mujoco_gl(environ={**os.environ, "MUJOCO_GL": ""}, find_library=lambda _: "found") == "egl"
    if headless_linux and os.environ.get("MUJOCO_GL", "") in ("", "glfw"):
        from mujoco.egl import GLContext

        gl_context.GLContext = GLContext
    return mujoco.Renderer(model, height=height, width=width)


def camera_for(task: str, model: mujoco.MjModel) -> mujoco.MjvCamera | str:
    import mujoco

    view = CAMERAS.get(task, {"lookat": (0.0, 0.0, 0.5), "distance": 4.0, "elevation": -15.0, "azimuth": 90.0})
    if "camera" in view:
        return view["camera"]
    camera = mujoco.MjvCamera()
    camera.lookat[:] = view["lookat"]
    camera.distance, camera.elevation, camera.azimuth = view["distance"], view["elevation"], view["azimuth"]
    return camera


@torch.no_grad()
def render_rollout(policy: Callable, task: str, seed: int, *, seconds: float = 5.0, fps: int = 25,
                   width: int = 320, height: int = 240, observe: Callable = lambda obs: obs,
                   progress: bool = False) -> tuple[np.ndarray, float]:
    """Frames (T, height, width, 3) and their frame rate, of one world driven by ``policy`` from ``seed`` until its
    first episode ends or ``seconds`` of simulated time pass. ``observe`` maps the env's
    observation to what the policy gets (e.g. ``StudentOnly.deployable``)."""
    import mujoco

    from distillkit.envs.mujoco_cpu import FULL_PHYSICS, MujocoEnv
    from distillkit.policy import forget

    env = MujocoEnv(task, 1, nthread=0)
    obs = env.reset(seed=seed)
    forget(policy)
    every = max(1, round(1.0 / (fps * env.spec.control_dt)))
    steps = int(seconds / env.spec.control_dt)
    # world 0's own model copy, after the reset: its terrain and randomised physics are edits
    # of that copy, and the renderer uploads the terrain when it is created
    scene = renderer(env.models[0], width, height)
    scene.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    scene.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    camera = camera_for(task, env.model)
    data = mujoco.MjData(env.model)
    frames = []
    iterator = range(steps)
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(iterator, desc=f"rendering {task}", leave=False)
    for step in iterator:
        if step % every == 0:
            mujoco.mj_setState(env.models[0], data, env.state[0], FULL_PHYSICS)
            mujoco.mj_forward(env.models[0], data)
            scene.update_scene(data, camera)
            frames.append(scene.render())
        result = env.step(policy(observe(obs)))
        if bool(result.done[0]):
            break
        obs = result.obs
    scene.close()
    env.close()
    return np.stack(frames), 1.0 / (every * env.spec.control_dt)


def _mediapy():
    """mediapy, pointed at the ffmpeg binary that the imageio-ffmpeg wheel brings."""
    import imageio_ffmpeg
    import mediapy

    mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
    return mediapy


def to_mp4(frames: np.ndarray, fps: float) -> bytes:
    """H.264 bytes of ``frames``, e.g. for ``ipywidgets.Video(value=..., format="mp4")``."""
    return _mediapy().compress_video(frames, fps=fps)


def show_video(frames: np.ndarray, fps: float, title: str | None = None) -> None:
    """Show ``frames`` in a notebook (an HTML5 video)."""
    _mediapy().show_video(frames, fps=fps, title=title)
