"""The batched environment contract every engine implements.

One env holds N worlds that step together. What it hands out is always *named*:

- ``obs``: ``{field name: tensor (N, *field.obs_shape)}``, exactly the schema's fields;
- ``reward_terms``: ``{term name: weighted tensor (N,)}``, summing to ``reward``;
- ``validity``: the per-step signals distillation uses to mask teacher data:
  ``fell`` (failure termination), ``timeout`` (episode cut by its time limit),
  ``action_saturated`` (an action component was outside [-1, 1] and got clipped) and
  ``reset_transient`` (the step began within the first few steps after a reset).

Finished worlds are reset automatically inside ``step``. The observation a world reached *before*
that reset is kept in ``final_obs``: on a time-out PPO bootstraps its value from it, since the
state after a time limit is not terminal. Returned tensors are never written to again by the env:
keep them as long as you like.

:class:`BatchedEnv` is only the contract. The MuJoCo engines share one implementation of it that
computes observations and rewards on the host (:class:`distillkit.envs.host.HostEnv`); Isaac Lab
implements it in torch on its own device (:mod:`distillkit.envs.isaaclab`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from distillkit.schema import ObservationSchema
from distillkit.tasks.spec import TaskSpec


class EngineFeatureError(RuntimeError):
    """A perturbation or probe needs an optional feature the chosen engine does not offer."""


VALIDITY_SIGNALS = ("fell", "timeout", "action_saturated", "reset_transient")
ACTION_LIMIT = 1.0   # actions are clipped to [-ACTION_LIMIT, ACTION_LIMIT] before they act

#: Perturbations an engine may offer. One that does lists the name in its ``features`` and
#: implements the method; on the others the attribute is None, and :meth:`BatchedEnv.feature`
#: names the engine that lacks it.
OPTIONAL_FEATURES = {
    "push": "push(ids, velocity_change): add velocity_change (len(ids), number of push dofs) to the "
            "task's push degrees of freedom in worlds ids; takes effect at the next step",
    "override_ranges": "override_ranges(ranges): change reset / randomisation ranges by name for the "
                       "next resets; the spec follows, so results under an override carry its digest",
    "perturb_privileged": "perturb_privileged(ids, seed=0): change only what the teacher senses in "
                          "worlds ids; the physics state is untouched",
}


def executed(actions: torch.Tensor) -> torch.Tensor:
    """What the env actually applies for ``actions``: the clipped value."""
    return actions.clamp(-ACTION_LIMIT, ACTION_LIMIT)


Obs = dict[str, torch.Tensor]


class ActionError(ValueError):
    """Actions handed to ``step`` have the wrong shape or non-finite values."""

    @classmethod
    def bad_shape(cls, task: str, want: tuple, got: tuple) -> ActionError:
        return cls(f"{task}: actions must have shape {want} (num_envs, action_dim), got {got}")

    @classmethod
    def not_finite(cls, task: str, envs: list[int], first: list[float]) -> ActionError:
        return cls(f"{task}: actions contain NaN/inf in env(s) {envs[:10]} (first: {first})")


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
    """N worlds of one task on one engine.

    An engine sets, besides what ``__init__`` sets: ``spec`` (the task spec, whose digest
    artifacts carry), ``schema``, ``action_dim``, ``max_episode_steps``, ``reset_transient_steps``
    (steps after a reset whose data count as a transient), ``noise_scale`` (multiplies every noise
    model; assignable) and ``episode_step`` ((N,) control steps since each world's reset).
    """

    #: the engine's name in the registry (``distillkit.envs.registry``)
    engine: ClassVar[str]
    #: the tasks it offers (the registry lists them too, so that listing imports no engine)
    tasks: ClassVar[tuple[str, ...]]
    #: the OPTIONAL_FEATURES this engine implements
    features: ClassVar[frozenset[str]] = frozenset()
    push = None
    override_ranges = None
    perturb_privileged = None

    spec: TaskSpec
    schema: ObservationSchema
    action_dim: int
    max_episode_steps: int
    reset_transient_steps: int = 0
    noise_scale: float
    episode_step: np.ndarray | torch.Tensor

    def __init_subclass__(cls, **kwargs):
        """An engine's declared features and its methods must agree: a feature is never guessed
        from what happens to be defined."""
        super().__init_subclass__(**kwargs)
        unknown = set(cls.features) - set(OPTIONAL_FEATURES)
        if unknown:
            raise TypeError(f"{cls.__name__}.features names {sorted(unknown)}; optional features are "
                            f"{list(OPTIONAL_FEATURES)}")
        for name in OPTIONAL_FEATURES:
            declared, implemented = name in cls.features, getattr(cls, name) is not None
            if declared and not implemented:
                raise TypeError(f"{cls.__name__} declares feature {name!r} but does not implement {name}()")
            if implemented and not declared:
                raise TypeError(f"{cls.__name__} implements {name}() but does not declare it in features")

    def __init__(self, num_envs: int, device: str | torch.device = "cpu", noise: bool = True):
        if not (isinstance(num_envs, int) and num_envs >= 1):
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.noise = noise          # apply the schema's sensor noise models
        self._started = False       # reset() has run

    def supports(self, feature: str) -> bool:
        """Whether this engine implements the optional ``feature`` (see OPTIONAL_FEATURES)."""
        if feature not in OPTIONAL_FEATURES:
            raise KeyError(f"unknown feature {feature!r}; optional features are {list(OPTIONAL_FEATURES)}")
        return feature in self.features

    def feature(self, name: str, purpose: str):
        """The method of optional feature ``name``, or an :class:`EngineFeatureError` naming this
        engine and what needed it (``purpose``)."""
        if not self.supports(name):
            raise EngineFeatureError(f"engine {self.spec.engine!r} does not support {name}(), needed for {purpose}; "
                                     f"leave that perturbation out or choose an engine that has it")
        return getattr(self, name)

    @abstractmethod
    def reset(self, seed: int | None = None) -> Obs:
        """Reset every world. The same seed gives the same episodes, noise and observations;
        without a seed, the episodes continue the current random streams (seed 0 at first)."""

    @abstractmethod
    def step(self, actions: torch.Tensor | np.ndarray) -> StepResult:
        """Advance every world by one control step (``spec.control_dt``). Actions (N, action_dim)
        are clipped to [-ACTION_LIMIT, ACTION_LIMIT]; a wrong shape or a non-finite value is an
        :class:`ActionError`; finished worlds are reset."""

    @abstractmethod
    def observe(self) -> Obs:
        """The observation of the current state, taken again without stepping (e.g. after a
        perturbation); history fields keep their past and show the new sample last."""

    @abstractmethod
    def close(self) -> None:
        """Release engine resources (thread pools, GPU memory, the simulation)."""

    def _require_reset(self, call: str) -> None:
        if not self._started:
            raise RuntimeError(f"{self.spec.task}: call reset() before {call}()")
