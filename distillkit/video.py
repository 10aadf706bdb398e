"""Videos of one closed-loop rollout, rendered offscreen by MuJoCo (CPU engine, any task).

Offscreen rendering needs a GL context without a display: EGL (Mesa's llvmpipe on a CPU-only
machine) or OSMesa. MuJoCo chooses its context class once, when it is first imported, from the
``MUJOCO_GL`` variable; a notebook sets ``MUJOCO_GL=egl`` in its first cell. When mujoco was
already imported with the default (GLFW, which needs a display) and there is no display,
:func:`renderer` switches the context class to EGL before creating a renderer.

Shadows and reflections are off: with them llvmpipe renders 10-27 frames/s at 320x240, without
them 45-112 on a 2-core build machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import mujoco
import numpy as np
import torch

from distillkit.envs.mujoco_cpu import FULL_PHYSICS, MujocoEnv
from distillkit.policy import forget

#: How each task is filmed: a named camera of its MJCF, or a free camera looking at a point.
CAMERAS = {
    "cartpole": {"lookat": (0.0, 0.0, 1.4), "distance": 5.0, "elevation": -8.0, "azimuth": 90.0},
    "walker_rough": {"camera": "side"},
}


def renderer(model: mujoco.MjModel, width: int, height: int) -> mujoco.Renderer:
    from mujoco.rendering.classic import gl_context

    if not os.environ.get("DISPLAY") and os.environ.get("MUJOCO_GL", "") in ("", "glfw"):
        from mujoco.egl import GLContext

        gl_context.GLContext = GLContext
    return mujoco.Renderer(model, height=height, width=width)


def camera_for(task: str, model: mujoco.MjModel) -> mujoco.MjvCamera | str:
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
