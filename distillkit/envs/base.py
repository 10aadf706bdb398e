"""The batched environment interface every engine implements.

One env holds N worlds that step together. What it hands out is always *named*:

- ``obs``: ``{field name: tensor (N, *field.obs_shape)}``, exactly the schema's fields;
- ``reward_terms``: ``{term name: weighted tensor (N,)}``, summing to ``reward``;
- ``validity``: the per-step signals distillation uses to mask teacher data:
  ``fell`` (failure termination), ``timeout`` (episode cut by its time limit),
  ``action_saturated`` (an action component was outside [-1, 1] and got clipped) and
  ``reset_transient`` (the step began within the first few steps after a reset).

Finished worlds are reset automatically inside ``step``. The observation a world reached *before*
that reset is kept in ``final_obs``: on a time-out PPO bootstraps its value from it, since the
state after a time limit is not terminal.

Engines subclass :class:`BatchedEnv` and implement four hooks (``_seed``, ``_reset_worlds``,
``_advance`` and ``_observe``); validation, clipping, reward weighting, sensor noise,
observation history, episode counters and auto-reset live here once, so every engine behaves
the same. Returned tensors are never written to again by the env: keep them as long as you like.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import torch

from distillkit.schema import ObservationSchema, SchemaError
from distillkit.tasks.spec import TaskSpec

VALIDITY_SIGNALS = ("fell", "timeout", "action_saturated", "reset_transient")
ACTION_LIMIT = 1.0   # actions are clipped to [-ACTION_LIMIT, ACTION_LIMIT] before they act


def executed(actions: torch.Tensor) -> torch.Tensor:
    """What the env actually applies for ``actions``: the clipped value."""
    return actions.clamp(-ACTION_LIMIT, ACTION_LIMIT)
NOISE_ORDER = ("gaussian", "uniform", None)

Obs = dict[str, torch.Tensor]


class ActionError(ValueError):
    """Actions handed to ``step`` have the wrong shape or non-finite values."""


@dataclass
class StepResult:
    obs: Obs                               # next observation; reset worlds already show their new episode
    reward: torch.Tensor                   # (N,) float32, the sum of reward_terms
    reward_terms: dict[str, torch.Tensor]  # term -> (N,) float32, weight already applied
    terminated: torch.Tensor               # (N,) bool: the episode ended in a terminal state (a failure)
    truncated: torch.Tensor                # (N,) bool: the episode was cut by its time limit
    final_obs: Obs                         # observation reached by this step, before any auto-reset
    validity: dict[str, torch.Tensor]      # VALIDITY_SIGNALS -> (N,) bool
    #: unweighted per-step diagnostics a task reports beside its reward terms (e.g. the walker's
    #: ``lin_vel_x_error``, which success is judged on); never part of the reward
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def done(self) -> torch.Tensor:
        return self.terminated | self.truncated


class BatchedEnv(ABC):
    """N worlds of one task on one engine. Subclasses set ``spec``, ``schema`` and
    ``reset_transient_steps`` before calling ``super().__init__``."""

    spec: TaskSpec
    schema: ObservationSchema
    #: steps after a reset whose data count as a transient (the robot settling onto the ground)
    reset_transient_steps: int = 0

    def __init__(self, num_envs: int, device: str = "cpu", noise: bool = True):
        if not (isinstance(num_envs, int) and num_envs >= 1):
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.noise = noise
        self.noise_scale = 1.0          # multiplies every noise model (a sensor-noise perturbation)
        self.action_dim = self.spec.action_dim
        self.max_episode_steps = self.spec.max_episode_steps
        self.episode_step = np.zeros(num_envs, dtype=np.int64)
        self.last_actions = np.zeros((num_envs, self.action_dim))
        self._term_names = list(self.spec.reward_weights)
        self._term_weights = np.array([self.spec.reward_weights[k] for k in self._term_names])[:, None]
        self._noise_gen = torch.Generator()
        self._seeded = False
        self._started = False
        self._plan_layout()

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
    def _seed(self, seed: int) -> None:
        """Seed the engine's episode sampler (reset distribution, randomisation, terrain)."""

    @abstractmethod
    def _reset_worlds(self, ids: np.ndarray) -> None:
        """Start a fresh episode in worlds ``ids``, drawn from the task's reset distribution."""

    @abstractmethod
    def _advance(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Apply clipped actions (N, action_dim) for one control step; return the unweighted
        reward terms (names = the spec's ``reward_weights`` keys), each (N,), and a (N,) bool
        array of failure terminations."""

    @abstractmethod
    def _observe(self, ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The clean (noise-free, single-sample) value of every schema field for worlds ``ids``
        (all worlds if None), each (len(ids), *shape)."""

    # ------------------------------------------------------------------------------- public
    def reset(self, seed: int | None = None) -> Obs:
        """Reset every world. The same seed gives the same episodes, noise and observations;
        without a seed, the episodes continue the current random streams (seed 0 at first)."""
        if seed is None and not self._seeded:
            seed = 0
        if seed is not None:
            self._seed(seed)
            self._noise_gen.manual_seed(seed)
            self._seeded = True
        everyone = np.arange(self.num_envs)
        self._reset_worlds(everyone)
        self.episode_step[:] = 0
        self.last_actions[:] = 0.0
        self._started = True
        return self._restart(self._sense(), everyone)

    def step(self, actions: torch.Tensor | np.ndarray) -> StepResult:
        """Advance every world by one control step (``spec.control_dt``)."""
        if not self._started:
            raise RuntimeError(f"{self.spec.task}: call reset() before step()")
        acts = self._check_actions(actions)
        saturated = np.abs(acts).max(axis=1) > ACTION_LIMIT
        np.clip(acts, -ACTION_LIMIT, ACTION_LIMIT, out=acts)
        transient = self.episode_step < self.reset_transient_steps

        terms, failed = self._advance(acts)
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
        """The observation of the current state, taken again without stepping (e.g. after a
        perturbation); history fields keep their past and show the new sample last."""
        if not self._started:
            raise RuntimeError(f"{self.spec.task}: call reset() before observe()")
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
        """Release engine resources (thread pools, GPU memory)."""

    # ------------------------------------------------------------------------------ helpers
    def _check_actions(self, actions) -> np.ndarray:
        """A float64 copy of ``actions`` (clipping must not touch the caller's), or a clear error."""
        if isinstance(actions, torch.Tensor):
            actions = actions.detach().cpu().numpy()
        actions = np.array(actions, dtype=np.float64)
        want = (self.num_envs, self.action_dim)
        if actions.shape != want:
            raise ActionError(f"{self.spec.task}: actions must have shape {want} "
                              f"(num_envs, action_dim), got {actions.shape}")
        # The sum is one cheap test; it can overflow on huge finite values, hence the second.
        if not np.isfinite(actions.sum()) and not np.isfinite(actions).all():
            envs = np.flatnonzero(~np.isfinite(actions).all(axis=1))
            raise ActionError(f"{self.spec.task}: actions contain NaN/inf in env(s) {envs[:10].tolist()} "
                              f"(first: {actions[envs[0]].tolist()})")
        return actions

    def _sense(self, ids: np.ndarray | None = None) -> torch.Tensor:
        """This step's sample of every field for worlds ``ids`` (default all), flat
        (worlds, width): clean values from the engine plus each deployable sensor's noise."""
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
