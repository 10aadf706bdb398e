"""The default engine: the MuJoCo C library on the CPU, N worlds batched on a C thread pool.

Each control step is one call of ``mujoco.rollout`` for all worlds: it sets each world's full
physics state, applies the control for ``frame_skip`` physics steps and returns the new state
and sensor data, spreading worlds over a pool of C threads, close to the pure-C limit (`bench/env_throughput.py` measures it).
``rollout`` is stateless, so the env owns the state array and feeds it back every step; the
solver warm-start is not carried between calls (it starts from zero each control step), which is
deterministic for a seed and differs from a plain ``mj_step`` loop by ~1e-12.

Every world has its own copy of the model, so per-world physics parameters (friction, payload,
pole mass) and terrain are just edits of that copy at reset.
"""

from __future__ import annotations

import copy
import os

import mujoco
import numpy as np
from mujoco import rollout

from distillkit.envs.host import HostEnv, build_task
from distillkit.tasks.base import MujocoTask, PhysicsState

FULL_PHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS.value
CTRL = mujoco.mjtState.mjSTATE_CTRL.value


class MujocoEnv(HostEnv):
    """A repo task on the MuJoCo C engine.

    Args:
        task: a task name (see ``distillkit.tasks.TASKS``) or a task instance.
        num_envs: number of worlds N.
        nthread: C threads stepping the worlds; 0 steps them in the calling thread.
            Default: one per CPU core, at most N.
        device: where the returned tensors live.
        noise: apply the schema's sensor noise models.
    """

    engine = "mujoco"
    engine_version = mujoco.__version__

    def __init__(self, task: str | MujocoTask = "cartpole", num_envs: int = 64, *,
                 nthread: int | None = None, device: str = "cpu", noise: bool = True):
        task = build_task(task, num_envs)
        super().__init__(task, mujoco.MjModel.from_xml_string(task.mjcf()), device=device, noise=noise)

        m = self.model
        self.nthread = min(os.cpu_count() or 1, num_envs) if nthread is None else nthread
        self.models = [copy.deepcopy(m) for _ in range(num_envs)]
        self.world_models = self.models
        self.datas = [mujoco.MjData(m) for _ in range(max(self.nthread, 1))]
        self._scratch = mujoco.MjData(m)       # computes sensors of freshly reset worlds
        self._pool = rollout.Rollout(nthread=self.nthread)

        nstate = mujoco.mj_stateSize(m, FULL_PHYSICS)
        self._qpos_at = mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_TIME.value)
        self._qvel_at = self._qpos_at + m.nq
        self.state = np.zeros((num_envs, nstate))
        self.sensordata = np.zeros((num_envs, m.nsensordata))
        self._control = np.zeros((num_envs, self.frame_skip, m.nu))
        self._traj = np.zeros((num_envs, self.frame_skip, nstate))
        self._traj_sensors = np.zeros((num_envs, self.frame_skip, m.nsensordata))
        self._qpos = self.state[:, self._qpos_at:self._qvel_at]
        self._qvel = self.state[:, self._qvel_at:self._qvel_at + m.nv]
        self._everyone = PhysicsState(self._qpos, self._qvel, self.sensordata)

    # ----------------------------------------------------------------------------- views
    def physics(self, ids: np.ndarray | None = None) -> PhysicsState:
        """Views of the current physics state of worlds ``ids`` (default: all)."""
        if ids is None:
            return self._everyone      # views: the state is always updated in place
        return PhysicsState(self._qpos[ids], self._qvel[ids], self.sensordata[ids], ids=ids)

    # ------------------------------------------------------------------------------ hooks
    def _start_worlds(self, ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        self.state[ids] = 0.0
        self._qpos[ids] = qpos
        self._qvel[ids] = qvel
        if not self.model.nsensordata:
            return
        scratch = self._scratch
        zero_ctrl = self.task.ctrl(np.zeros((1, self.action_dim)))[0]
        for i in ids:
            # Sensors (contacts, forces) of the new state, before any step is taken. The solver
            # starts cold, as in every rollout call, so the result is the same on any thread.
            mujoco.mj_setState(self.models[i], scratch, self.state[i], FULL_PHYSICS)
            scratch.ctrl[:] = zero_ctrl
            scratch.qacc_warmstart[:] = 0.0
            mujoco.mj_forward(self.models[i], scratch)
            self.sensordata[i] = scratch.sensordata

    def _step_physics(self, ctrl: np.ndarray) -> None:
        self._control[:] = ctrl[:, None, :]
        self._pool.rollout(self.models, self.datas, self.state, self._control,
                           control_spec=CTRL, skip_checks=True, nstep=self.frame_skip,
                           state=self._traj, sensordata=self._traj_sensors)
        self.state[:] = self._traj[:, -1]
        self.sensordata[:] = self._traj_sensors[:, -1]

    def _change_velocity(self, ids: np.ndarray, dofs: np.ndarray, change: np.ndarray) -> None:
        columns = self._qvel_at + dofs
        self.state[ids[:, None], columns[None, :]] += change

    def close(self) -> None:
        self._pool.close()
