"""The repo's MuJoCo tasks on MuJoCo Warp: all worlds step together on a GPU (or, slowly, on the
Warp CPU device).

Only the physics stepping differs from the C engine: the model is the task's own MJCF, and the
task object draws resets, edits per-world physics parameters, computes observations, rewards and
failures exactly as on the C engine (in numpy, on the host). Each control step

1. writes the controls of all worlds into ``Data.ctrl`` (one host -> device copy),
2. runs ``frame_skip`` calls of ``mujoco_warp.step`` for all worlds (captured once into a CUDA
   graph on a GPU),
3. reads ``qpos``, ``qvel`` and ``sensordata`` back for the task (one device -> host copy each).

The host reads and writes the Warp arrays through ``wp.to_torch`` views (zero-copy: on the CPU
device they are the Warp arrays' own memory), and keeps float64 copies of the state for the task.

Per-world physics parameters use MuJoCo Warp's batched model fields (``put_model(batch_sizes=)``):
``body_mass``, ``body_inertia`` and ``geom_friction`` get one row per world. Heightfield data is
not a batched field, so the model holds one copy of each heightfield per world and each world's
terrain geom points at its own copy through the batched ``geom_dataid``. The task edits these
through :class:`WorldModel` objects that look like the per-world ``MjModel`` copies of the C
engine, so task code is shared unchanged.

As on the C engine, the solver warm-start is cleared at the start of every control step, and the
sensors of freshly reset worlds are computed by a forward pass with zero action.
Differences that remain: MuJoCo Warp computes in float32 (the C library in float64) with a solver
tolerance of at least 1e-6, and for a capsule on a heightfield it keeps at most four contacts per
geom pair where the C library keeps one per heightfield prism. Trajectories agree to float32
precision until the walker's feet touch the ground and drift apart after
(``tests/test_mujoco_warp.py`` states the tolerances), so artifacts are per engine. Kernels are
compiled on first use (10-30 s on the CPU) and cached by Warp in the user's cache folder, so later
runs start in seconds.
"""

from __future__ import annotations

import warnings

import mujoco
import mujoco_warp as mjw
import numpy as np
import torch
import warp as wp
from mujoco_warp._src.types import OverflowType

from distillkit.envs.host import HostEnv, build_task
from distillkit.envs.logs import engine_logs
from distillkit.tasks.base import MujocoTask, PhysicsState

wp.config.log_level = wp.LOG_WARNING   # no line per compiled kernel module
with engine_logs("mujoco_warp"):       # Warp's start-up: on a machine without CUDA, a warning from C saying so
    wp.init()

#: Model fields a task may edit per world (see MujocoTask.reset_worlds), each batched per world.
PER_WORLD_FIELDS = ("body_mass", "body_inertia", "geom_friction")
#: Overflows of the space preallocated per world (nconmax, njmax), which drop contacts or
#: constraints. Not among them: solver iteration limits (they cost accuracy, as in the C library)
#: and more than 50 contacts between one geom and a heightfield, where the C library stops at the
#: same number (mjMAXCONPAIR), e.g. a fallen walker's torso lying across the terrain.
CAPACITY_OVERFLOWS = ~(OverflowType.ITERATIONS | OverflowType.LS_ITERATIONS | OverflowType.HFIELD)


class WorldModel:
    """What a task sees of one world's model: rows of the per-world parameter arrays, with the
    names and shapes of ``MjModel`` fields. Any other field is an error, not a silent no-op."""

    def __init__(self, rows: dict[str, np.ndarray]):
        self.__dict__.update(rows)

    def __getattr__(self, name: str):
        raise AttributeError(f"engine 'mujoco_warp': a task may edit only the per-world model fields "
                             f"{[*PER_WORLD_FIELDS, 'hfield_data']} at reset, not {name!r}")


def per_world_heightfields(mjcf: str, num_envs: int) -> tuple[mujoco.MjModel, np.ndarray]:
    """Compile ``mjcf`` with one copy of every heightfield per world, world 0 owning the
    originals. Returns the model and, per world, the heightfield id for each original id."""
    spec = mujoco.MjSpec.from_string(mjcf)
    originals = list(spec.hfields)
    for world in range(1, num_envs):
        for h in originals:
            spec.add_hfield(name=f"{h.name}_world{world}", nrow=h.nrow, ncol=h.ncol, size=h.size,
                            userdata=h.userdata)
    model = spec.compile()
    ids = np.arange(num_envs)[:, None] * len(originals) + np.arange(len(originals))[None, :]
    return model, ids


class MujocoWarpEnv(HostEnv):
    """A repo task on MuJoCo Warp.

    Args:
        task: a task name (see ``distillkit.tasks.TASKS``) or a task instance.
        num_envs: number of worlds N.
        device: the Warp device stepping the physics: ``"cpu"`` or ``"cuda[:i]"``. Observations,
            rewards and signals are computed by the task on the host and returned as CPU tensors,
            where distillkit's PPO and distillation run.
        noise: apply the schema's sensor noise models.
        nconmax, njmax: contacts and constraint rows allocated per world (MuJoCo Warp's defaults
            when None); running out is an error naming them.
    """

    engine = "mujoco_warp"
    engine_version = f"{mjw.__version__} (warp {wp.__version__})"

    def __init__(self, task: str | MujocoTask = "cartpole", num_envs: int = 64, *, device: str = "cpu",
                 noise: bool = True, nconmax: int | None = None, njmax: int | None = None):
        task = build_task(task, num_envs)
        self.wp_device = wp.get_device(device)
        model, self._hfield_of_world = per_world_heightfields(task.mjcf(), num_envs)
        super().__init__(task, model, device="cpu", noise=noise)
        m = self.model
        nhfield = m.nhfield // num_envs

        batched = {name: num_envs for name in PER_WORLD_FIELDS}
        if nhfield:
            batched["geom_dataid"] = num_envs
        with wp.ScopedDevice(self.wp_device), warnings.catch_warnings():
            # Warp warns that capsule-heightfield pairs get no multi-contact CCD; how its
            # heightfield contacts differ from the C library's is measured in tests/test_mujoco_warp.py.
            warnings.filterwarnings("ignore", message="MULTICCD is enabled")
            self.wp_model = mjw.put_model(m, batch_sizes=batched)
            self.wp_model.opt.warn_overflow = False     # no printf from kernels: _check_overflow reports
            self.wp_data = mjw.make_data(m, nworld=num_envs, nconmax=nconmax, njmax=njmax)
        self.nconmax, self.njmax = nconmax, njmax

        # Torch views of the Warp arrays (the same memory) through which the host reads and writes.
        view = lambda array: wp.to_torch(array)
        d, wm = self.wp_data, self.wp_model
        self._dev = {"qpos": view(d.qpos), "qvel": view(d.qvel), "ctrl": view(d.ctrl),
                     "sensordata": view(d.sensordata),
                     **{name: view(getattr(wm, name)) for name in PER_WORLD_FIELDS}}
        if nhfield:
            self._dev["hfield_data"] = view(wm.hfield_data).view(num_envs, -1)
            dataid = view(wm.geom_dataid)
            terrain_geoms = np.flatnonzero(m.geom_type == mujoco.mjtGeom.mjGEOM_HFIELD)
            for g in terrain_geoms:   # world i's heightfield geoms use world i's copies
                dataid[:, g] = torch.as_tensor(self._hfield_of_world[:, m.geom_dataid[g]], device=dataid.device)
            self._torch_wrote()

        # Host copies: the physics state the task reads (float64, like the C engine's) and the
        # per-world parameters the task writes, uploaded for the worlds it changed.
        self.qpos = np.zeros((num_envs, m.nq))
        self.qvel = np.zeros((num_envs, m.nv))
        self.sensordata = np.zeros((num_envs, m.nsensordata))
        self._params = {name: np.repeat(getattr(m, name)[None], num_envs, axis=0).astype(np.float64)
                        for name in PER_WORLD_FIELDS}
        if nhfield:
            self._params["hfield_data"] = self._dev["hfield_data"].cpu().numpy().copy()
        self.world_models = [WorldModel({k: v[i] for k, v in self._params.items()}) for i in range(num_envs)]
        self._zero_ctrl = self.task.ctrl(np.zeros((1, self.action_dim)))[0]
        self._graphs: dict[str, wp.Graph] = {}

    # ----------------------------------------------------------------------------- views
    def physics(self, ids: np.ndarray | None = None) -> PhysicsState:
        """The current physics state of worlds ``ids`` (default: all), as the task reads it."""
        if ids is None:
            return PhysicsState(self.qpos, self.qvel, self.sensordata)
        return PhysicsState(self.qpos[ids], self.qvel[ids], self.sensordata[ids], ids=ids)

    # -------------------------------------------------------------------- host <-> device
    def _upload(self, names, ids: np.ndarray, source: dict[str, np.ndarray]) -> None:
        """Copy rows ``ids`` of the host arrays ``source[name]`` into the device arrays."""
        for name in names:
            target = self._dev[name]
            rows = torch.as_tensor(ids, device=target.device)
            target[rows] = torch.from_numpy(source[name][ids]).to(target.device, target.dtype)
        self._torch_wrote()

    def _torch_wrote(self) -> None:
        """Torch writes on its CUDA stream, Warp launches on its own: wait for torch's writes."""
        if self.wp_device.is_cuda:
            torch.cuda.synchronize(self.wp_device.ordinal)

    def _download(self) -> None:
        wp.synchronize_device(self.wp_device)
        for name in ("qpos", "qvel", "sensordata"):
            getattr(self, name)[:] = self._dev[name].cpu().numpy()

    def _launch(self, name: str, work) -> None:
        """Run ``work`` (Warp launches only) on the physics device. On a GPU it is captured once
        into a CUDA graph and replayed, which removes the cost of launching each kernel."""
        with wp.ScopedDevice(self.wp_device):
            if not self.wp_device.is_cuda:
                work()
                return
            if name not in self._graphs:
                with wp.ScopedCapture() as capture:
                    work()
                self._graphs[name] = capture.graph
            wp.capture_launch(self._graphs[name])

    def _cold_steps(self) -> None:
        self.wp_data.qacc_warmstart.zero_()
        for _ in range(self.frame_skip):
            mjw.step(self.wp_model, self.wp_data)

    def _cold_forward(self) -> None:
        self.wp_data.qacc_warmstart.zero_()
        mjw.forward(self.wp_model, self.wp_data)

    def _run_physics(self) -> None:
        """``frame_skip`` physics steps of every world, from a cold solver warm-start."""
        self._launch("steps", self._cold_steps)
        self._check_overflow()

    def _check_overflow(self) -> None:
        overflow = self.wp_data.overflow.numpy()
        bad = np.flatnonzero(overflow & int(CAPACITY_OVERFLOWS))
        if len(bad):
            kinds = [f.name for f in OverflowType if overflow[bad[0]] & f.value]
            raise RuntimeError(f"engine 'mujoco_warp', task {self.spec.task!r}: world(s) {bad[:10].tolist()} "
                               f"ran out of preallocated space ({kinds}); raise nconmax/njmax "
                               f"(now {self.nconmax}/{self.njmax}, None = MuJoCo Warp's defaults)")
        self.wp_data.overflow.zero_()

    # ------------------------------------------------------------------------------ hooks
    def _start_worlds(self, ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        self.qpos[ids], self.qvel[ids] = qpos, qvel
        self._upload(self._params, ids, self._params)
        self._upload(("qpos", "qvel"), ids, {"qpos": self.qpos, "qvel": self.qvel})
        if self.model.nsensordata:
            self._sense_reset_worlds(ids)

    def _sense_reset_worlds(self, ids: np.ndarray) -> None:
        """Sensors (contacts, forces) of the new state of worlds ``ids`` before any step, with
        zero action and a cold solver, as the C engine computes them. A forward pass runs over
        all worlds; the others keep the sensor values their last step produced."""
        ctrl = np.repeat(self._zero_ctrl[None], self.num_envs, axis=0)
        self._upload(("ctrl",), ids, {"ctrl": ctrl})
        self._launch("forward", self._cold_forward)
        wp.synchronize_device(self.wp_device)
        fresh = self._dev["sensordata"]
        self.sensordata[ids] = fresh[torch.as_tensor(ids, device=fresh.device)].cpu().numpy()

    def _step_physics(self, ctrl: np.ndarray) -> None:
        self._dev["ctrl"][:] = torch.from_numpy(ctrl).to(self._dev["ctrl"].device, torch.float32)
        self._torch_wrote()
        self._run_physics()
        self._download()

    def _change_velocity(self, ids: np.ndarray, dofs: np.ndarray, change: np.ndarray) -> None:
        self.qvel[ids[:, None], dofs[None, :]] += change
        self._upload(("qvel",), ids, {"qvel": self.qvel})

    def _models_edited(self, ids: np.ndarray) -> None:
        self._upload(self._params, ids, self._params)
