"""Proximal Policy Optimisation for the privileged teacher, readable top to bottom.

One iteration:

1. **Rollout.** Every env takes ``steps_per_env`` steps with actions a ~ pi(.|o_t); we store o_t,
   a_t, log pi(a_t|o_t), V(o_t), r_t and whether the episode ended.
2. **Time-out bootstrap.** An episode cut by its time limit did not end in a terminal state: the
   return should go on as gamma * V(s_final). We add that to r_t, with V evaluated on the
   **true final observation** the env returns before its auto-reset
   (``timeout_bootstrap="final_obs"``). rsl_rl adds gamma * V(o_t), the value of the state the
   step *started* from, "the next best approximation" when the final observation is lost
   (``"current_obs"``); ``"none"`` treats time-outs as terminal.
3. **Generalised advantage estimation** (Schulman et al. 2016), backwards in time:
   delta_t = r_t + gamma * V(o_{t+1}) * (1 - done_t) - V(o_t),
   A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   R_t = A_t + V(o_t).
4. **Update**, ``epochs`` passes over ``minibatches`` shuffled minibatches (of steps; of whole
   worlds' sequences for a recurrent actor, whose memory is rebuilt from the rollout's first step),
   minimising
   L = -min(rho * A, clip(rho, 1 - eps, 1 + eps) * A)  with rho = pi(a|o) / pi_old(a|o)
       + c_v * max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2)
       - c_e * entropy,
   with gradient-norm clipping and a learning rate adapted to keep KL(pi_old || pi) near
   ``desired_kl``. The entropy bonus c_e is ``entropy_coef``, or with ``entropy_decay_steps`` > 0
   c_e = entropy_coef * max(0, 1 - env_steps / entropy_decay_steps): wide exploration early, none
   at the end (:meth:`PPOConfig.entropy_coef_at`).
5. **Normalisers** take in the rollout's observations *after* the update: inside one update the
   policy that is optimised is the one that collected the data.

The actor reads the schema group ``actor_group`` ("teacher"; "student" gives the unprivileged baseline),
the critic ``critic_group`` ("critic": the asymmetric critic sees even more). With
``encoder_latent`` > 0 the actor first encodes its privileged fields into a latent z; with
``actor_memory`` > 0 it is recurrent, a GRU over its group then an MLP (:func:`build_actor`); the
loss is the same.

Steps 2 and 3 are plain functions, :func:`bootstrap_timeouts` and :func:`compute_gae`, that
:class:`PPO` takes as parameters: a learner's own versions run inside this very loop.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from distillkit.envs.base import BatchedEnv, Obs, StepResult
from distillkit.models import Actor, Critic, EncoderActor, GaussianActor, RecurrentActor
from distillkit.policy import forget
from distillkit.schema import ObservationSchema

TIMEOUT_BOOTSTRAPS = ("final_obs", "current_obs", "none")


@dataclass(frozen=True)
class PPOConfig:
    steps_per_env: int = 24           # rollout length per iteration
    epochs: int = 5
    minibatches: int = 4
    gamma: float = 0.99
    lam: float = 0.95
    clip: float = 0.2
    value_coef: float = 1.0
    entropy_coef: float = 0.01
    entropy_decay_steps: int = 0      # > 0: the entropy bonus falls linearly to 0 at this many env steps
    learning_rate: float = 1e-3
    desired_kl: float = 0.01          # adaptive learning rate target
    max_grad_norm: float = 1.0
    init_std: float = 1.0
    actor_hidden: tuple[int, ...] = (256, 128, 64)
    critic_hidden: tuple[int, ...] = (256, 128, 64)
    encoder_latent: int = 0           # > 0: the actor encodes its privileged fields into a latent this big first
    encoder_hidden: tuple[int, ...] = (64, 32)
    actor_memory: int = 0             # > 0: a recurrent actor, a GRU with this much memory before its MLP
    actor_group: str = "teacher"
    critic_group: str = "critic"
    timeout_bootstrap: str = "final_obs"

    #: the allowed values of string fields (checked here, offered as choices by the CLI)
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"timeout_bootstrap": TIMEOUT_BOOTSTRAPS}

    def __post_init__(self) -> None:
        if self.timeout_bootstrap not in TIMEOUT_BOOTSTRAPS:
            raise ValueError(f"timeout_bootstrap must be one of {TIMEOUT_BOOTSTRAPS}, got {self.timeout_bootstrap!r}")
        if self.encoder_latent < 0:
            raise ValueError(f"encoder_latent must be >= 0 (0: no encoder), got {self.encoder_latent}")
        if self.actor_memory < 0:
            raise ValueError(f"actor_memory must be >= 0 (0: a memoryless actor), got {self.actor_memory}")
        if self.entropy_decay_steps < 0:
            raise ValueError(f"entropy_decay_steps must be >= 0 (0: a constant entropy bonus), got "
                             f"{self.entropy_decay_steps}")
        if self.actor_memory and self.encoder_latent:
            raise ValueError(f"an actor has an encoder (encoder_latent={self.encoder_latent}) or a memory "
                             f"(actor_memory={self.actor_memory}), not both")
        for name in ("actor_hidden", "critic_hidden", "encoder_hidden"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def entropy_coef_at(self, env_steps: int) -> float:
        """The entropy bonus c_e of an update after ``env_steps`` env steps: ``entropy_coef``, falling
        linearly to 0 at ``entropy_decay_steps`` when that is > 0. A constant bonus can hold the action
        noise wide for good: PPO widens sigma as long as the bonus outweighs what the noise costs in
        return, and late rollouts are then mostly noise."""
        if not self.entropy_decay_steps:
            return self.entropy_coef
        return self.entropy_coef * max(0.0, 1.0 - env_steps / self.entropy_decay_steps)

    def to_dict(self) -> dict:
        """JSON form (tuples as lists), as stored in artifacts."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def bootstrap_timeouts(rewards: torch.Tensor, truncated: torch.Tensor, final_values: torch.Tensor,
                       gamma: float) -> torch.Tensor:
    """Step 2: r_t + gamma * V(s_final) where the episode was cut by its time limit (a new tensor;
    the raw rewards stay as they were, for logging)."""
    return rewards + gamma * final_values * truncated


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor,
                last_values: torch.Tensor, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns for a rollout of shape (T, N); ``dones`` marks steps after which
    the episode ended (time-outs already bootstrapped into ``rewards``)."""
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(last_values)
    next_values = last_values
    for t in reversed(range(rewards.shape[0])):
        not_done = 1.0 - dones[t].float()
        delta = rewards[t] + gamma * next_values * not_done - values[t]
        next_advantage = delta + gamma * lam * not_done * next_advantage
        advantages[t] = next_advantage
        next_values = values[t]
    return advantages, advantages + values


def build_actor(schema: ObservationSchema, action_dim: int, config: PPOConfig) -> GaussianActor:
    """The actor ``config`` describes: an MLP on ``actor_group``; with ``encoder_latent`` > 0 an
    :class:`~distillkit.models.EncoderActor` (privileged fields -> latent, then an MLP on the rest
    and the latent); with ``actor_memory`` > 0 a :class:`~distillkit.models.RecurrentActor` (a GRU,
    then an MLP). PPO trains each end to end; :func:`distillkit.train.load_actor` rebuilds it
    from the config an artifact records."""
    if config.encoder_latent:
        return EncoderActor(schema, config.actor_group, action_dim, config.actor_hidden, config.init_std,
                            config.encoder_latent, config.encoder_hidden)
    if config.actor_memory:
        return RecurrentActor(schema, config.actor_group, action_dim, config.actor_hidden, config.init_std,
                              config.actor_memory)
    return Actor(schema, config.actor_group, action_dim, config.actor_hidden, config.init_std)


#: (rewards, truncated, final_values, gamma) -> bootstrapped rewards, like :func:`bootstrap_timeouts`
BootstrapFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]
#: (rewards, values, dones, last_values, gamma, lam) -> (advantages, returns), like :func:`compute_gae`
AdvantageFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float, float],
                       tuple[torch.Tensor, torch.Tensor]]


def is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def leave_process_group() -> None:
    """End a torchrun process's part in training. The barrier first: a rank that tears gloo down while
    another is still finishing the last collective aborts that rank ("terminate called without an
    active exception", seen on a loaded 2-core machine)."""
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


class PPO:
    """The learner: actor, critic, optimiser and the update rule. ``collect`` and ``update``
    make one iteration; :func:`train` loops them. ``bootstrap`` and ``advantages`` compute steps
    2 and 3 (a learner's functions may take the place of the package's)."""

    def __init__(self, env: BatchedEnv, config: PPOConfig, seed: int = 0, *,
                 bootstrap: BootstrapFn = bootstrap_timeouts, advantages: AdvantageFn = compute_gae,
                 device: str | torch.device | None = None):
        self.env, self.config = env, config
        self.bootstrap, self.advantages = bootstrap, advantages
        # Networks and buffers live on ``device``, by default where the env hands out its tensors.
        # A host-side env on a GPU engine (MuJoCo Warp: the task's numpy code runs on the host) hands
        # them out on the CPU; device="cuda" then moves each step's tensors to the networks and the
        # actions back, so the update runs on the GPU.
        self.device = env.device if device is None else torch.device(device)
        torch.manual_seed(seed)
        self.actor = build_actor(env.schema, env.action_dim, config).to(self.device)
        self.critic = Critic(env.schema, config.critic_group, config.critic_hidden).to(self.device)
        if is_distributed():                       # every rank starts from rank 0's weights
            for p in self.parameters():
                torch.distributed.broadcast(p.data, src=0)
        self.learning_rate = config.learning_rate
        # foreach: one call for all parameters instead of a Python loop over them (on the CPU torch
        # defaults to the loop); the same numbers, bit for bit
        self.optimizer = torch.optim.Adam(self.parameters(), lr=self.learning_rate, foreach=True)
        self.episode_return = torch.zeros(env.num_envs, device=self.device)
        self.episode_length = torch.zeros(env.num_envs, device=self.device)
        self.recurrent = isinstance(self.actor, RecurrentActor)
        if self.recurrent:
            if env.num_envs < config.minibatches:
                raise ValueError(f"a recurrent actor's minibatches are whole worlds: num_envs ({env.num_envs}) must "
                                 f"be >= PPOConfig.minibatches ({config.minibatches})")
            # the rollouts' memory, kept here: whatever else runs the actor between iterations (a
            # validation) leaves it alone
            self.memory = torch.zeros(env.num_envs, config.actor_memory, device=self.device)

    def parameters(self) -> list[nn.Parameter]:
        return [*self.actor.parameters(), *self.critic.parameters()]

    # ------------------------------------------------------------------------------ 1. rollout
    @torch.no_grad()
    def collect(self, obs: Obs) -> tuple[dict, Obs, dict]:
        """Run ``steps_per_env`` steps from ``obs``; return the rollout, the next observation
        and the episodes that ended (returns, lengths, falls)."""
        cfg = self.config
        T = cfg.steps_per_env
        observations = []
        actions, log_probs, values, rewards, dones, means = [], [], [], [], [], []
        ended = {"return": [], "length": [], "fell": []}
        if self.recurrent:
            self.actor.memory = start_memory = self.memory
        obs = self._here(obs)
        for _ in range(T):
            dist = self.actor.distribution(obs)
            action = dist.sample()
            value = self.critic(obs)
            result = self._step(action)
            reward = result.reward
            # 2. time-out bootstrap: the episode would have gone on.
            if cfg.timeout_bootstrap == "final_obs" and result.truncated.any():
                reward = self.bootstrap(reward, result.truncated, self.critic(result.final_obs), cfg.gamma)
            elif cfg.timeout_bootstrap == "current_obs":
                reward = self.bootstrap(reward, result.truncated, value, cfg.gamma)
            observations.append(obs)
            actions.append(action)
            log_probs.append(dist.log_prob(action).sum(-1))
            means.append(dist.mean)
            values.append(value)
            rewards.append(reward)
            dones.append(result.done)
            self._track_episodes(result, ended)
            forget(self.actor, result.done)       # a recurrent actor starts the next episodes from zeros
            obs = result.obs
        rollout = {
            "obs": {k: torch.stack([o[k] for o in observations]) for k in observations[0]},
            "actions": torch.stack(actions), "log_probs": torch.stack(log_probs),
            "means": torch.stack(means), "values": torch.stack(values),
            "rewards": torch.stack(rewards), "dones": torch.stack(dones),
            "std": self.actor.log_std.exp().detach().clone(),
        }
        if self.recurrent:
            self.memory = self.actor.memory
            # the memory each world started the rollout with, and where episodes restart within it
            rollout["memory"] = start_memory
            rollout["starts"] = torch.cat([torch.zeros_like(rollout["dones"][:1]), rollout["dones"][:-1]])
        last_values = self.critic(obs)
        # 3. generalised advantage estimation
        rollout["advantages"], rollout["returns"] = self.advantages(
            rollout["rewards"], rollout["values"], rollout["dones"], last_values, cfg.gamma, cfg.lam)
        return rollout, obs, ended

    def _here(self, obs: Obs) -> Obs:
        """``obs`` on the networks' device."""
        return {k: v.to(self.device) for k, v in obs.items()}

    def _step(self, action: torch.Tensor) -> StepResult:
        """One env step with ``action``, its result on the networks' device."""
        result = self.env.step(action.to(self.env.device))
        if self.env.device == self.device:
            return result
        move = lambda x: x.to(self.device)
        return dataclasses.replace(
            result, obs=self._here(result.obs), final_obs=self._here(result.final_obs), reward=move(result.reward),
            terminated=move(result.terminated), truncated=move(result.truncated),
            reward_terms={k: move(v) for k, v in result.reward_terms.items()},
            validity={k: move(v) for k, v in result.validity.items()},
            metrics={k: move(v) for k, v in result.metrics.items()})

    def _track_episodes(self, result, ended: dict) -> None:
        self.episode_return += result.reward
        self.episode_length += 1
        done = result.done
        if done.any():
            ended["return"] += self.episode_return[done].tolist()
            ended["length"] += self.episode_length[done].tolist()
            ended["fell"] += result.terminated[done].tolist()
            self.episode_return[done] = 0.0
            self.episode_length[done] = 0.0

    # ------------------------------------------------------------------------------- 4. update
    def update(self, rollout: dict, env_steps: int = 0) -> dict[str, float]:
        """Step 4 on one rollout; ``env_steps``: how many env steps training had taken before it
        (the entropy bonus's schedule)."""
        cfg = self.config
        entropy_coef = cfg.entropy_coef_at(env_steps)
        advantages = rollout["advantages"]
        steps = {"actions": rollout["actions"], "old_log_probs": rollout["log_probs"], "old_means": rollout["means"],
                 "old_values": rollout["values"], "returns": rollout["returns"],
                 "advantages": (advantages - advantages.mean()) / (advantages.std() + 1e-8)}
        old_std = rollout["std"]
        T, N = rollout["rewards"].shape
        steps = {k: v.reshape(T * N, *v.shape[2:]) for k, v in steps.items()}
        obs = {k: v.reshape(T * N, *v.shape[2:]) for k, v in rollout["obs"].items()}
        # Each network's input group, flattened and normalised once for the whole update (the
        # normalisers learn from this rollout only after it): a minibatch then indexes one tensor
        # per network instead of every field.
        actor_flat, critic_flat = self.actor.input.flat(obs), self.critic.input.flat(obs)
        critic_x = self.critic.input.normalizer(critic_flat)
        actor_x = None if self.recurrent else self.actor.input.normalizer(actor_flat)

        stats = {"surrogate_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "kl": 0.0}
        updates = 0
        for _ in range(cfg.epochs):
            for idx, mean in self._minibatches(rollout, actor_x):
                mb = {k: v[idx] for k, v in steps.items()}
                dist = self.actor.gaussian(mean)
                log_prob = dist.log_prob(mb["actions"]).sum(-1)
                entropy = dist.entropy().sum(-1).mean()
                value = self.critic.value(critic_x[idx])

                # KL(pi_old || pi) between diagonal Gaussians; adapt the learning rate to it.
                with torch.no_grad():
                    std = dist.stddev
                    kl = (torch.log(std / old_std) + (old_std ** 2 + (mb["old_means"] - dist.mean) ** 2)
                          / (2 * std ** 2) - 0.5).sum(-1).mean()
                    if is_distributed():
                        torch.distributed.all_reduce(kl)
                        kl /= torch.distributed.get_world_size()
                    self._adapt_learning_rate(float(kl))

                ratio = torch.exp(log_prob - mb["old_log_probs"])
                adv = mb["advantages"]
                surrogate_loss = -torch.min(ratio * adv, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * adv).mean()
                old_values, returns = mb["old_values"], mb["returns"]
                value_clipped = old_values + (value - old_values).clamp(-cfg.clip, cfg.clip)
                value_loss = torch.max((value - returns) ** 2, (value_clipped - returns) ** 2).mean()
                loss = surrogate_loss + cfg.value_coef * value_loss - entropy_coef * entropy

                self.optimizer.zero_grad()
                loss.backward()
                if is_distributed():
                    self._average_gradients()
                nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.max_grad_norm, foreach=True)
                nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm, foreach=True)
                self.optimizer.step()

                stats["surrogate_loss"] += surrogate_loss.item()
                stats["value_loss"] += value_loss.item()
                stats["entropy"] += entropy.item()
                stats["kl"] += float(kl)
                updates += 1

        # 5. normalisers learn from this rollout only now, after the update
        self.actor.input.normalizer.update(actor_flat)
        self.critic.input.normalizer.update(critic_flat)
        return {k: v / updates for k, v in stats.items()} | {"learning_rate": self.learning_rate}

    def _minibatches(self, rollout: dict, actor_x: torch.Tensor | None):
        """One epoch's shuffled minibatches: for each, the indices of its steps among the T x N steps
        flattened time-major, and the current actor's mean actions on them. A memoryless actor's
        minibatch is any 1/``minibatches`` of the steps, read from ``actor_x`` (its normalised input
        for all of them). A recurrent actor's is whole sequences of 1/``minibatches`` of the worlds:
        its memory at each step is rebuilt from the memory the rollout started with, through the
        episode restarts, as it was when the actions were drawn."""
        T, N = rollout["rewards"].shape
        if self.recurrent:
            order, size = torch.randperm(N, device=self.device), N // self.config.minibatches
            for start in range(0, size * self.config.minibatches, size):
                worlds = order[start:start + size]
                obs = {f: x[:, worlds] for f, x in rollout["obs"].items()}
                mean = self.actor.sequence_mean(obs, rollout["starts"][:, worlds], rollout["memory"][worlds])
                yield (torch.arange(T, device=self.device)[:, None] * N + worlds).reshape(-1), mean.reshape(T * size, -1)
        else:
            order, size = torch.randperm(T * N, device=self.device), T * N // self.config.minibatches
            for start in range(0, size * self.config.minibatches, size):
                idx = order[start:start + size]
                yield idx, self.actor.mean(actor_x[idx])

    def _adapt_learning_rate(self, kl: float) -> None:
        if kl > 2.0 * self.config.desired_kl:
            self.learning_rate = max(1e-5, self.learning_rate / 1.5)
        elif 0.0 < kl < 0.5 * self.config.desired_kl:
            self.learning_rate = min(1e-2, self.learning_rate * 1.5)
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate

    def _average_gradients(self) -> None:
        """All-reduce every gradient as one flat tensor, then divide by the world size."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.parameters()]
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= torch.distributed.get_world_size()
        offset = 0
        for p, g in zip(self.parameters(), grads):
            p.grad = flat[offset:offset + g.numel()].view_as(g).clone()
            offset += g.numel()


def summarise(iteration: int, env_steps: int, ended: dict, losses: dict, std: torch.Tensor,
              seconds: float, steps_this_iteration: int) -> dict[str, float]:
    """One row of the training log."""
    mean = lambda xs: float(np.mean(xs)) if xs else math.nan
    return {
        "iteration": iteration, "env_steps": env_steps,
        "episode_return": mean(ended["return"]), "episode_length": mean(ended["length"]),
        "fall_rate": mean(ended["fell"]), "episodes": len(ended["return"]),
        **losses, "action_std": float(std.detach().mean()),
        "env_steps_per_s": steps_this_iteration / seconds,
    }


def run_iteration(ppo: PPO, obs: Obs, iteration: int, env_steps: int) -> tuple[Obs, dict]:
    """Collect one rollout and update on it; returns the next observation and a log row."""
    start = time.perf_counter()
    rollout, obs, ended = ppo.collect(obs)
    losses = ppo.update(rollout, env_steps)
    steps = ppo.config.steps_per_env * ppo.env.num_envs
    world = torch.distributed.get_world_size() if is_distributed() else 1
    row = summarise(iteration, env_steps + steps * world, ended, losses, ppo.actor.log_std.exp(),
                    time.perf_counter() - start, steps)
    return obs, row
