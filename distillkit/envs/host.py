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

import math
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
        self._term_set = frozenset(self._term_names)
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
        then uniform ones, so each kind of noise is one draw added to one block of columns; the
        fields without noise follow, those with a history first, so that a history group's
        columns are usually one contiguous block.

        A step's observation is one (N, row) float32 array: the sample, then each history group
        as (history_length, columns) per world, oldest first. Every returned field is a strided
        view of it (one array per observation, new each step, so returned tensors are never
        overwritten later)."""
        def order(f):
            kind = f.noise and f.noise.kind
            return NOISE_ORDER.index(kind), (-f.history_length if kind is None else 0)

        self._layout = sorted(self.schema.fields, key=order)
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
        # Each noise block is noised in a buffer of its own, as torch and numpy (the same memory):
        # one torch call a step instead of three on a view of the step's new array.
        self._stages = [torch.empty((self.num_envs, c.stop - c.start)) for _, c, _ in self._noise_blocks]
        # Fields whose readings are sometimes replaced by outliers: (columns, probability, range).
        self._outlier_blocks = [(self._columns[f.name], f.noise.outliers, f.noise.outlier_range)
                                for f in self._layout if f.noise and f.noise.outliers > 0]
        self._staged = [stage.numpy() for stage in self._stages]
        # (name, columns, shape, reshape needed) in layout order, for filling the sample
        self._fill = [(f.name, self._columns[f.name], tuple(f.shape), len(f.shape) != 1) for f in self._layout]
        # Fields with the same history length share one group: (length, its columns of the
        # sample (a slice when contiguous), first and end column of its block in the observation).
        self._history_groups: list[tuple[int, slice | np.ndarray, int, int]] = []
        places: dict[str, tuple[int, int, int, int]] = {}   # name -> (length, block, block width, column in it)
        block = self._width
        for length in sorted({f.history_length for f in self._layout if f.history_length > 1}):
            members = [f for f in self._layout if f.history_length == length]
            cols = [c for f in members for c in range(self._columns[f.name].start, self._columns[f.name].stop)]
            at = 0
            for f in members:
                places[f.name] = (length, block, len(cols), at)
                at += self._columns[f.name].stop - self._columns[f.name].start
            contiguous = cols == list(range(cols[0], cols[-1] + 1))
            self._history_groups.append((length, slice(cols[0], cols[-1] + 1) if contiguous else np.array(cols),
                                         block, block + length * len(cols)))
            block += length * len(cols)
        self._row = block
        # Each field as (name, size, stride, offset) of a view of the (N, row) observation, in
        # schema order.
        self._views: list[tuple[str, tuple, tuple, int]] = []
        for f in self.schema.fields:
            shape = tuple(f.shape)
            inner = tuple(int(np.prod(shape[k + 1:])) for k in range(len(shape)))
            if f.name in places:
                length, start, width, at = places[f.name]
                self._views.append((f.name, (self.num_envs, length, *shape), (self._row, width, *inner), start + at))
            else:
                self._views.append((f.name, (self.num_envs, *shape), (self._row, *inner), self._columns[f.name].start))
        self._byte_views = [(name, size, tuple(4 * s for s in stride), 4 * offset)     # float32: 4 bytes
                            for name, size, stride, offset in self._views]
        self._latest: np.ndarray | None = None    # the last observation returned: its history

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
        out = np.empty((self.num_envs, self._row), dtype=np.float32)
        self._sense(out)
        self._fill_history(out, None)
        self._latest = out
        return self._obs(out)

    def step(self, actions: torch.Tensor | np.ndarray) -> StepResult:
        self._require_reset("step")
        acts, largest, peak = self._check_actions(actions)
        saturated = largest > ACTION_LIMIT
        if peak > ACTION_LIMIT:
            np.clip(acts, -ACTION_LIMIT, ACTION_LIMIT, out=acts)
        transient = self.episode_step < self.reset_transient_steps
        if self.task.hold_pose_while_settling:
            acts[transient] = 0.0
        draws = self._draw_noise(self.num_envs)     # the final sample's noise: drawn first either way

        self._step_physics(self.task.ctrl(acts))
        terms, failed = self.task.evaluate(self.physics(), acts, self.last_actions)
        self.last_actions[:] = acts
        self.episode_step += 1
        truncated = (self.episode_step >= self.max_episode_steps) & ~failed
        final = np.empty((self.num_envs, self._row), dtype=np.float32)
        self._sense(final, draws=draws)
        self._fill_history(final, self._latest)
        final_obs = self._obs(final)

        ids = np.flatnonzero(failed | truncated)
        obs, latest = final_obs, final
        if len(ids):
            self._reset_worlds(ids)
            self.episode_step[ids] = 0
            self.last_actions[ids] = 0.0
            latest = final.copy()
            self._restart(latest, ids)
            obs = self._obs(latest)
        self._latest = latest

        try:
            raw = np.array([terms[k] for k in self._term_names])
        except KeyError:
            raise KeyError(f"task {self.spec.task!r} returned reward terms {sorted(terms)}, "
                           f"its spec weighs {sorted(self._term_names)}") from None
        weighted = np.multiply(raw, self._term_weights, out=np.empty(raw.shape, np.float32),
                               casting="unsafe")           # in float64, rounded once to float32
        metrics = {k: self._tensor(v.astype(np.float32)) for k, v in terms.items() if k not in self._term_set}
        # numpy sums the terms row after row in float32, as torch's sum(0) does: the same reward, fewer calls
        reward = self._tensor(np.add.reduce(weighted, axis=0))
        flags = [self._tensor(np.array(flag)) for flag in (failed, truncated, saturated, transient)]
        return StepResult(
            obs=obs,
            reward=reward,
            reward_terms=dict(zip(self._term_names, map(self._tensor, weighted))),
            terminated=flags[0],
            truncated=flags[1],
            final_obs=final_obs,
            validity=dict(zip(VALIDITY_SIGNALS, flags)),
            metrics=metrics,
        )

    def observe(self) -> Obs:
        self._require_reset("observe")
        out = np.empty((self.num_envs, self._row), dtype=np.float32)
        self._sense(out)
        self._fill_history(out, self._latest, shift=False)
        return self._obs(out)

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

    def _check_actions(self, actions) -> tuple[np.ndarray, np.ndarray, float]:
        """A float64 copy of ``actions`` (clipping must not touch the caller's), each world's
        largest absolute action and the largest of all, or a clear error."""
        if isinstance(actions, torch.Tensor):
            if actions.device.type != "cpu" or actions.requires_grad:
                actions = actions.detach().cpu()
            actions = actions.numpy()
        actions = np.array(actions, dtype=np.float64)
        want = (self.num_envs, self.action_dim)
        if actions.shape != want:
            raise ActionError.bad_shape(self.spec.task, want, actions.shape)
        magnitude = np.abs(actions)
        largest = magnitude[:, 0] if self.action_dim == 1 else np.maximum.reduce(magnitude, axis=1)
        peak = float(np.maximum.reduce(largest))      # NaN if any action is NaN, inf if any is inf
        if not math.isfinite(peak):
            envs = np.flatnonzero(~np.isfinite(actions).all(axis=1))
            raise ActionError.not_finite(self.spec.task, envs.tolist(), actions[envs[0]].tolist())
        return actions, largest, peak

    def _sense(self, out: np.ndarray, ids: np.ndarray | None = None, draws: list | None = None) -> None:
        """This step's sample of every field for worlds ``ids`` (default all) into the first
        columns of ``out`` (one row per world): clean values from the task plus each deployable
        sensor's noise (``draws``, if drawn already: see :meth:`_draw_noise`)."""
        raw = self._observe(ids)
        n = len(out)
        for name, columns, shape, reshape in self._fill:
            value = raw.get(name)
            if value is None or value.shape != (n, *shape):
                got = "nothing" if value is None else f"shape {value.shape}"
                raise SchemaError(f"field {name!r}: engine for {self.spec.task!r} produced {got}, "
                                  f"schema says {(n, *shape)}")
            out[:, columns] = value.reshape(n, -1) if reshape else value
        if self.noise and self._noise_blocks:
            draws = draws or self._draw_noise(n)
            blocks = zip(self._noise_blocks, draws, self._stages, self._staged)
            for (kind, columns, scale), draw, stage, staged in blocks:
                if n < self.num_envs:
                    stage, staged = stage[:n], staged[:n]
                staged[:] = out[:, columns]
                stage.addcmul_(draw, scale if self.noise_scale == 1.0 else scale * self.noise_scale)
                out[:, columns] = staged
            # outliers replace readings after the noise: (uniform for "is it hit", uniform for its value)
            outlier_draws = draws[len(self._noise_blocks):]
            for (columns, probability, spread), (hit_draw, value_draw) in zip(self._outlier_blocks, outlier_draws):
                hit = (hit_draw < min(1.0, probability * self.noise_scale)).numpy()
                block = out[:, columns]
                block[hit] = ((value_draw * 2 - 1) * spread).numpy()[hit]

    def _draw_noise(self, n: int) -> list:
        """The unit noise of one sample of ``n`` worlds: one draw per noise block, then a pair of
        uniform draws (is a reading hit, the outlier's value) per outlier block. A step draws
        it before its physics (the same numbers in the same order as after, and cheaper: the
        physics leaves the caches cold for the small torch calls)."""
        if not (self.noise and self._noise_blocks):
            return []
        draws = []
        for kind, columns, _ in self._noise_blocks:
            shape = (n, columns.stop - columns.start)
            if kind == "gaussian":
                draws.append(torch.randn(shape, generator=self._noise_gen))
            else:
                draws.append(torch.rand(shape, generator=self._noise_gen) * 2 - 1)
        for columns, _, _ in self._outlier_blocks:
            shape = (n, columns.stop - columns.start)
            draws.append((torch.rand(shape, generator=self._noise_gen), torch.rand(shape, generator=self._noise_gen)))
        return draws

    def _fill_history(self, out: np.ndarray, before: np.ndarray | None, shift: bool = True) -> None:
        """Fill the history blocks of the observation ``out`` whose sample is in place: from
        the observation ``before``, dropping its oldest entry (``shift``) or its newest, with
        the new sample last; without ``before`` (a reset), every entry is the new sample, as
        Isaac Lab's history buffers start."""
        n = len(out)
        for length, cols, start, end in self._history_groups:
            history = out[:, start:end].reshape(n, length, -1)
            if before is None:
                history[:] = out[:, None, cols]
                continue
            past = before[:, start:end].reshape(n, length, -1)
            history[:, :-1] = past[:, 1:] if shift else past[:, :-1]
            history[:, -1] = out[:, cols]

    def _restart(self, out: np.ndarray, ids: np.ndarray) -> None:
        """Worlds ``ids`` begin an episode: their rows of the observation ``out`` show their
        first sample, which fills their history."""
        fresh = np.empty((len(ids), self._row), dtype=np.float32)
        self._sense(fresh, ids)
        self._fill_history(fresh, None)
        out[ids] = fresh

    def _obs(self, out: np.ndarray) -> Obs:
        """The observation dict in schema order: a view of ``out`` per field."""
        if self.device.type == "cpu":
            return {name: torch.from_numpy(np.ndarray(size, np.float32, out, offset, strides))
                    for name, size, strides, offset in self._byte_views}
        whole = torch.from_numpy(out).to(self.device)
        return {name: whole.as_strided(size, stride, offset) for name, size, stride, offset in self._views}

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        return tensor if self.device.type == "cpu" else tensor.to(self.device)
