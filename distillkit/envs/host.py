"""The env contract implemented on the host, for the repo's tasks: what the MuJoCo engines share.

A repo task (:class:`~distillkit.tasks.base.MujocoTask`) draws resets, edits per-world physics
parameters, computes observations, rewards and failures in numpy; an engine only steps the physics
and shows its state. :class:`HostEnv` does everything else once, so every engine behaves the same:
validation, clipping, reward weighting, sensor noise, observation history, episode counters,
auto-reset, and the optional perturbations (push, range overrides, privileged perturbation).

An engine subclasses it and implements five hooks: ``physics``, ``_start_worlds``,
``_step_physics``, ``_change_velocity`` and ``_models_edited``.
"""

from __future__ import annotations

from abc import abstractmethod

import mujoco
import numpy as np
import torch

from distillkit.envs.base import ACTION_LIMIT, VALIDITY_SIGNALS, ActionError, BatchedEnv, Obs, StepResult
from distillkit.schema import SchemaError
from distillkit.tasks import TASKS, make_mujoco_task
from distillkit.tasks.base import MujocoTask, PhysicsState

NOISE_ORDER = ("gaussian", "uniform", None)


def build_task(task: str | MujocoTask, num_envs: int) -> MujocoTask:
    """The task instance for ``num_envs`` worlds: built from its name, or checked if given."""
    built = make_mujoco_task(task, num_envs) if isinstance(task, str) else task
    if built.num_envs != num_envs:
        raise ValueError(f"task was built for {built.num_envs} worlds, env asked for {num_envs}")
    return built


class HostEnv(BatchedEnv):
    """N worlds of a repo task whose physics an engine steps.

    Args:
        task: the task instance, built for N worlds (see :func:`build_task`).
        model: the compiled model of ``task.mjcf()`` the engine steps; the task binds to it.
        device: where the returned tensors live.
        noise: apply the schema's sensor noise models.
    """

    tasks = tuple(TASKS)
    features = frozenset({"push", "override_ranges", "perturb_privileged"})
    #: the engine's version string, recorded in the spec
    engine_version: str
    #: per-world models the task edits at reset (``MjModel`` copies, or views with their fields)
    world_models: list

    def __init__(self, task: MujocoTask, model: mujoco.MjModel, *, device: str = "cpu", noise: bool = True):
        self.task = task
        self.model = model
        task.bind(model)
        self.spec = self._task_spec()
        self.schema = task.schema
        self.reset_transient_steps = task.reset_transient_steps
        super().__init__(task.num_envs, device=device, noise=noise)
        num_envs = task.num_envs
        self.noise_scale = 1.0          # multiplies every noise scale and outlier rate (a sensor-noise perturbation)
        self.action_dim = self.spec.action_dim
        self.max_episode_steps = self.spec.max_episode_steps
        self.frame_skip = self.spec.frame_skip
        self.episode_step = np.zeros(num_envs, dtype=np.int64)
        self.last_actions = np.zeros((num_envs, self.action_dim))
        self._term_names = list(self.spec.reward_weights)
        self._term_weights = np.array([self.spec.reward_weights[k] for k in self._term_names])[:, None]
        self._noise_gen = torch.Generator()
        self._seeded = False
        self.rng = np.random.default_rng(0)   # the task's episode sampler (resets, randomisation, terrain)
        self._plan_layout()

    def _task_spec(self):
        return self.task.spec(engine=self.engine, engine_version=self.engine_version)

    def _plan_layout(self) -> None:
        """Each step's sample of every field is one flat float32 row per world, so that noise,
        history and the numpy -> torch hand-over are a few whole-array operations, not a few per
        field. Inside that row (never seen outside the env) gaussian-noise fields come first,
        then uniform ones, so each kind of noise is one draw added to one block of columns."""
        self._layout = sorted(self.schema.fields,
                              key=lambda f: NOISE_ORDER.index(f.noise and f.noise.kind))
        self._columns: dict[str, slice] = {}
        self._noise_blocks: list[tuple[str, slice, torch.Tensor]] = []
        start = 0
        for kind in NOISE_ORDER:
            block_start, scales = start, []
            for f in self._layout:
                if (f.noise and f.noise.kind) == kind:
                    width = int(np.prod(f.shape))
                    self._columns[f.name] = slice(start, start + width)
                    scales += [f.noise.scale if f.noise else 0.0] * width
                    start += width
            if kind is not None and start > block_start:
                self._noise_blocks.append(
                    (kind, slice(block_start, start), torch.tensor(scales, dtype=torch.float32)))
        self._width = start
        # Fields whose readings are sometimes replaced by outliers: (columns, probability, range).
        self._outlier_blocks = [(self._columns[f.name], f.noise.outliers, f.noise.outlier_range)
                                for f in self._layout if f.noise and f.noise.outliers > 0]
        self._widths = [self._columns[f.name].stop - self._columns[f.name].start for f in self._layout]
        self._layout_names = [f.name for f in self._layout]
        # Fields with the same history length share one (N, history, columns) buffer.
        self._history_groups: list[tuple[int, torch.Tensor, list[tuple[str, slice, tuple]]]] = []
        for length in sorted({f.history_length for f in self._layout if f.history_length > 1}):
            cols, members, at = [], [], 0
            for f in self._layout:
                if f.history_length == length:
                    sl = self._columns[f.name]
                    cols += range(sl.start, sl.stop)
                    members.append((f.name, slice(at, at + sl.stop - sl.start), f.shape))
                    at += sl.stop - sl.start
            self._history_groups.append((length, torch.tensor(cols), members))
        self._history: list[torch.Tensor] = []

    # ------------------------------------------------------------------------- engine hooks
    @abstractmethod
    def physics(self, ids: np.ndarray | None = None) -> PhysicsState:
        """The current physics state of worlds ``ids`` (default: all), as the task reads it."""

    @abstractmethod
    def _start_worlds(self, ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Put worlds ``ids`` into the state (qpos, qvel) the task drew for their new episode
        (the task has already edited their ``world_models``), with the sensors of that state."""

    @abstractmethod
    def _step_physics(self, ctrl: np.ndarray) -> None:
        """Apply the controls (N, nu) for ``frame_skip`` physics steps of every world."""

    @abstractmethod
    def _change_velocity(self, ids: np.ndarray, dofs: np.ndarray, change: np.ndarray) -> None:
        """Add ``change`` (len(ids), len(dofs)) to the velocities ``dofs`` of worlds ``ids``."""

    def _models_edited(self, ids: np.ndarray) -> None:
        """The task edited the ``world_models`` of worlds ``ids`` outside a reset; engines that
        keep a copy of the models elsewhere update it here."""

    # ------------------------------------------------------------------------------- public
    def reset(self, seed: int | None = None) -> Obs:
        if seed is None and not self._seeded:
            seed = 0
        if seed is not None:
            self.rng = np.random.default_rng(seed)
            self._noise_gen.manual_seed(seed)
            self._seeded = True
        everyone = np.arange(self.num_envs)
        self._reset_worlds(everyone)
        self.episode_step[:] = 0
        self.last_actions[:] = 0.0
        self._started = True
        return self._restart(self._sense(), everyone)

    def step(self, actions: torch.Tensor | np.ndarray) -> StepResult:
        self._require_reset("step")
        acts = self._check_actions(actions)
        saturated = np.abs(acts).max(axis=1) > ACTION_LIMIT
        np.clip(acts, -ACTION_LIMIT, ACTION_LIMIT, out=acts)
        transient = self.episode_step < self.reset_transient_steps

        self._step_physics(self.task.ctrl(acts))
        terms, failed = self.task.evaluate(self.physics(), acts, self.last_actions)
        self.last_actions[:] = acts
        self.episode_step += 1
        truncated = (self.episode_step >= self.max_episode_steps) & ~failed
        final_sample = self._sense()
        final_obs = self._fields(final_sample)

        done = failed | truncated
        obs = final_obs
        if done.any():
            ids = np.flatnonzero(done)
            self._reset_worlds(ids)
            self.episode_step[ids] = 0
            self.last_actions[ids] = 0.0
            obs = self._restart(self._sense(ids), ids, current=final_sample)

        try:
            raw = np.stack([terms[k] for k in self._term_names])
        except KeyError:
            raise KeyError(f"task {self.spec.task!r} returned reward terms {sorted(terms)}, "
                           f"its spec weighs {sorted(self._term_names)}") from None
        weighted = self._tensor((raw * self._term_weights).astype(np.float32))
        metrics = {k: self._tensor(v.astype(np.float32)) for k, v in terms.items() if k not in self.spec.reward_weights}
        flags = self._tensor(np.stack([failed, truncated, saturated, transient]))
        return StepResult(
            obs=obs,
            reward=weighted.sum(0),
            reward_terms=dict(zip(self._term_names, weighted)),
            terminated=flags[0],
            truncated=flags[1],
            final_obs=final_obs,
            validity=dict(zip(VALIDITY_SIGNALS, flags)),
            metrics=metrics,
        )

    def observe(self) -> Obs:
        self._require_reset("observe")
        sample = self._sense()
        parts = dict(zip(self._layout_names, torch.split(sample, self._widths, dim=1)))
        saved = self._history
        self._history = [h.clone() for h in saved]
        for g, (length, cols, members) in enumerate(self._history_groups):
            self._history[g][:, -1] = sample.index_select(1, cols)
        obs = self._named(parts)
        self._history = saved
        return obs

    def close(self) -> None:
        """Nothing to release unless the engine holds threads or device memory."""

    # ---------------------------------------------------------------------- perturbations
    def push(self, ids: np.ndarray, velocity_change: np.ndarray) -> None:
        """Perturb worlds ``ids``: add ``velocity_change`` (len(ids), len(task.push_dofs)) to the
        task's push degrees of freedom (the walker's base velocity, the cart-pole's pole), as
        Isaac Lab's ``push_by_setting_velocity`` event does. Takes effect at the next step."""
        ids = np.asarray(ids)
        change = np.asarray(velocity_change, dtype=np.float64)
        want = (len(ids), len(self.task.push_dofs))
        if change.shape != want:
            raise ValueError(f"{self.spec.task}: velocity_change must have shape {want}, got {change.shape}")
        self._change_velocity(ids, np.asarray(self.task.push_dofs), change)

    def override_ranges(self, ranges: dict[str, list]) -> None:
        """Change entries of the task's reset distribution or randomisation (e.g. only the
        hardest terrain, low friction) for the next resets; the spec follows, so results under
        an override carry its digest."""
        self.task.override_ranges(ranges)
        self.spec = self._task_spec()

    def perturb_privileged(self, ids: np.ndarray, seed: int = 0) -> None:
        """Change what only the teacher can sense in worlds ``ids`` (see the task's
        ``perturb_privileged``); the physics state itself is untouched."""
        ids = np.asarray(ids)
        self.task.perturb_privileged(self.physics(ids), ids, np.random.default_rng(seed), self.world_models)
        self._models_edited(ids)

    # ------------------------------------------------------------------------------ helpers
    def _reset_worlds(self, ids: np.ndarray) -> None:
        """Start a fresh episode in worlds ``ids``, drawn from the task's reset distribution."""
        qpos, qvel = self.task.reset_worlds(ids, self.rng, self.world_models)
        self._start_worlds(ids, qpos, qvel)

    def _observe(self, ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The clean (noise-free, single-sample) value of every schema field for worlds ``ids``
        (all worlds if None), each (len(ids), *shape)."""
        last = self.last_actions if ids is None else self.last_actions[ids]
        return self.task.observe(self.physics(ids), last)

    def _check_actions(self, actions) -> np.ndarray:
        """A float64 copy of ``actions`` (clipping must not touch the caller's), or a clear error."""
        if isinstance(actions, torch.Tensor):
            actions = actions.detach().cpu().numpy()
        actions = np.array(actions, dtype=np.float64)
        want = (self.num_envs, self.action_dim)
        if actions.shape != want:
            raise ActionError.bad_shape(self.spec.task, want, actions.shape)
        # The sum is one cheap test; it can overflow on huge finite values, hence the second.
        if not np.isfinite(actions.sum()) and not np.isfinite(actions).all():
            envs = np.flatnonzero(~np.isfinite(actions).all(axis=1))
            raise ActionError.not_finite(self.spec.task, envs.tolist(), actions[envs[0]].tolist())
        return actions

    def _sense(self, ids: np.ndarray | None = None) -> torch.Tensor:
        """This step's sample of every field for worlds ``ids`` (default all), flat
        (worlds, width): clean values from the task plus each deployable sensor's noise."""
        raw = self._observe(ids)
        n = self.num_envs if ids is None else len(ids)
        flat = np.empty((n, self._width), dtype=np.float32)
        for f in self._layout:
            value = raw.get(f.name)
            if value is None or value.shape != (n, *f.shape):
                got = "nothing" if value is None else f"shape {value.shape}"
                raise SchemaError(f"field {f.name!r}: engine for {self.spec.task!r} produced {got}, "
                                  f"schema says {(n, *f.shape)}")
            flat[:, self._columns[f.name]] = value.reshape(n, -1)
        sample = torch.from_numpy(flat)
        if self.noise:
            for kind, columns, scale in self._noise_blocks:
                shape = (n, columns.stop - columns.start)
                if kind == "gaussian":
                    draw = torch.randn(shape, generator=self._noise_gen)
                else:
                    draw = torch.rand(shape, generator=self._noise_gen) * 2 - 1
                sample[:, columns].addcmul_(draw, scale if self.noise_scale == 1.0 else scale * self.noise_scale)
            for columns, probability, spread in self._outlier_blocks:
                shape = (n, columns.stop - columns.start)
                hit = torch.rand(shape, generator=self._noise_gen) < min(1.0, probability * self.noise_scale)
                outlier = (torch.rand(shape, generator=self._noise_gen) * 2 - 1) * spread
                sample[:, columns] = torch.where(hit, outlier, sample[:, columns])
        return sample

    def _fields(self, sample: torch.Tensor) -> Obs:
        """Observation of a step: the sample's fields; history fields append the new sample
        (the oldest drops out)."""
        parts = dict(zip(self._layout_names, torch.split(sample, self._widths, dim=1)))
        for g, (length, cols, members) in enumerate(self._history_groups):
            newest = sample.index_select(1, cols).unsqueeze(1)
            self._history[g] = torch.cat([self._history[g][:, 1:], newest], dim=1)
        return self._named(parts)

    def _restart(self, sample: torch.Tensor, ids: np.ndarray, current: torch.Tensor | None = None) -> Obs:
        """Worlds ``ids`` begin an episode and observe ``sample`` (one row each); their history
        is filled with it, as Isaac Lab's history buffers do. The other worlds keep the flat
        sample ``current`` and their history."""
        rows = torch.as_tensor(ids, dtype=torch.long)
        if current is None:
            self._history = [None] * len(self._history_groups)
        else:
            current = current.clone()
            current[rows] = sample
            sample = current
        parts = dict(zip(self._layout_names, torch.split(sample, self._widths, dim=1)))
        for g, (length, cols, members) in enumerate(self._history_groups):
            filled = sample.index_select(1, cols).unsqueeze(1).expand(-1, length, -1)
            if current is None:
                self._history[g] = filled.clone()
            else:
                self._history[g] = self._history[g].clone()
                self._history[g][rows] = filled[rows]
        return self._named(parts)

    def _named(self, parts: Obs) -> Obs:
        """Assemble the observation dict in schema order: plain fields from ``parts``, history
        fields as views of their group's buffer."""
        for g, (length, cols, members) in enumerate(self._history_groups):
            for name, sl, shape in members:
                parts[name] = self._history[g][:, :, sl]
        obs = {}
        for f in self.schema.fields:
            value = parts[f.name]
            if len(f.shape) > 1:
                value = value.unflatten(-1, f.shape)
            obs[f.name] = value if self.device.type == "cpu" else value.to(self.device)
        return obs

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        return tensor if self.device.type == "cpu" else tensor.to(self.device)
