"""Networks: a running observation normaliser, Gaussian actors (an MLP, an encoder of the
privileged fields then an MLP, or a GRU then an MLP) and a critic, each reading one schema group by name.

Every network starts with ``schema.flatten(obs, group)``: the only place named fields become one
tensor, so which fields a network sees is decided by the schema, nowhere else.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import torch
from torch import nn

from distillkit.schema import ObservationSchema

Obs = dict[str, torch.Tensor]


class RunningNorm(nn.Module):
    """Normalises inputs by a running mean and std of everything seen so far.

    Normalised values are clipped to ±``clip``. The statistics change only when :meth:`update` is called -
    PPO calls it between updates, never inside one, so the policy that collected a rollout is the policy that is optimised -
    and they are saved with the weights. Across processes, :meth:`update` pools the statistics
    of every rank, so all ranks keep identical normalisers.
    """

    def __init__(self, size: int, eps: float = 1e-2, clip: float = 5.0):
        super().__init__()
        self.eps, self.clip = eps, clip
        self.register_buffer("mean", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("var", torch.ones(size, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Clipped: a field that barely varied so far (the height scan while every robot still
        # stands on its flat start platform) would otherwise explode once it does vary.
        z = (x - self.mean.to(x.dtype)) / torch.sqrt(self.var.to(x.dtype) + self.eps ** 2)
        return z.clamp(-self.clip, self.clip)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).to(torch.float64)
        stats = torch.cat([torch.tensor([float(len(x))], dtype=torch.float64, device=x.device), x.sum(0), (x * x).sum(0)])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(stats)
        n, total, squares = stats[0], stats[1:1 + x.shape[1]], stats[1 + x.shape[1]:]
        batch_mean = total / n
        batch_var = (squares / n - batch_mean ** 2).clamp_min(0.0)
        # Chan et al.'s merge of two (count, mean, variance) summaries.
        count = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * n / count
        self.var = (self.var * self.count + batch_var * n + delta ** 2 * self.count * n / count) / count
        self.count.fill_(count)


def mlp(in_size: int, hidden: Sequence[int], out_size: int, activation: type[nn.Module] = nn.ELU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_size, width), activation()]
        in_size = width
    layers.append(nn.Linear(in_size, out_size))
    return nn.Sequential(*layers)


class GroupInput(nn.Module):
    """Reads one schema group from an observation dict and normalises it: the first layer of
    every network, and the only place where named fields become one flat tensor."""

    def __init__(self, schema: ObservationSchema, group: str):
        super().__init__()
        self.schema, self.group = schema, group
        self.names = schema.group(group)
        self.size = schema.group_size(group)
        self.normalizer = RunningNorm(self.size)

    def flat(self, obs: Obs) -> torch.Tensor:
        """The raw (unnormalised) group vector, e.g. to update the normaliser."""
        return self.schema.flatten(obs, self.group)

    def forward(self, obs: Obs) -> torch.Tensor:
        return self.normalizer(self.flat(obs))


class GaussianActor(nn.Module):
    """What PPO needs of an actor: ``input`` (the schema group it reads, normalised), the mean
    action ``forward(obs)`` and a learned, state-independent std (rsl_rl's default):
    a ~ N(mu(o), diag(sigma^2))."""

    input: GroupInput
    log_std: nn.Parameter

    def distribution(self, obs: Obs) -> torch.distributions.Normal:
        return self.gaussian(self(obs))

    def gaussian(self, mean: torch.Tensor) -> torch.distributions.Normal:
        """N(mean, diag(sigma^2)) with this actor's std."""
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean))


class FeedForwardActor(GaussianActor, abc.ABC):
    """A memoryless actor: its mean action is a function of the group's normalised vector alone,
    ``mean(input(obs))``, so a caller that already holds that vector (rsl_rl hands its models flat
    groups, ``bench/distill_vs_rsl_rl.py``) can act without rebuilding the observation dict."""

    def forward(self, obs: Obs) -> torch.Tensor:
        """The mean action mu(o): what a deployed policy executes."""
        return self.mean(self.input(obs))

    @abc.abstractmethod
    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """mu from ``x = input(obs)``, the (N, group size) normalised group vector."""


class Actor(FeedForwardActor):
    """Gaussian policy: an MLP on one schema group."""

    def __init__(self, schema: ObservationSchema, group: str, action_dim: int,
                 hidden: Sequence[int] = (256, 128, 64), init_std: float = 1.0):
        super().__init__()
        self.input = GroupInput(schema, group)
        self.mlp = mlp(self.input.size, hidden, action_dim)
        self.log_std = nn.Parameter(torch.full((action_dim,), math.log(init_std)))

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class EncoderActor(FeedForwardActor):
    """Gaussian policy whose privileged fields pass through an encoder first (Lee et al. 2020;
    RMA, Kumar et al. 2021): z = encoder(o_privileged), mu = mlp([o_plain, z]).

    The group is read and normalised as one vector, as for :class:`Actor` (so PPO, corruption
    and the widgets treat both alike), then split by column: the privileged fields feed the
    encoder, the others (``plain_names``: the student's fields for the default teacher group)
    go to the MLP beside z. The latent z is what the teacher knows that the student cannot
    observe, compressed: a training target for the students (``targets``), never their input.
    """

    def __init__(self, schema: ObservationSchema, group: str, action_dim: int, hidden: Sequence[int],
                 init_std: float, latent_size: int, encoder_hidden: Sequence[int]):
        super().__init__()
        self.input = GroupInput(schema, group)
        self.privileged_names = tuple(n for n in self.input.names if schema.field(n).privileged)
        self.plain_names = tuple(n for n in self.input.names if not schema.field(n).privileged)
        if not self.privileged_names:
            raise ValueError(f"an encoder reads privileged fields; group {group!r} has none ({list(self.input.names)})")
        columns = [schema.field(n).privileged for n in self.input.names for _ in range(schema.field(n).size)]
        # a buffer, so it moves with the actor to the env's device; not persistent: not a weight
        self.register_buffer("privileged_columns", torch.tensor(columns), persistent=False)
        self.hidden, self.latent_size = tuple(hidden), latent_size
        self.encoder = mlp(sum(columns), encoder_hidden, latent_size)
        self.mlp = mlp(len(columns) - sum(columns) + latent_size, self.hidden, action_dim)
        self.log_std = nn.Parameter(torch.full((action_dim,), math.log(init_std)))

    def latent(self, obs: Obs) -> torch.Tensor:
        """z: (N, latent_size), the encoder's summary of the privileged fields."""
        return self.encoder(self.input(obs)[:, self.privileged_columns])

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x[:, self.privileged_columns])
        return self.mlp(torch.cat([x[:, ~self.privileged_columns], z], dim=-1))

    def targets(self, obs: Obs) -> dict[str, torch.Tensor]:
        """What this teacher labels besides its action (:class:`distillkit.policy.Labeller`)."""
        return {"latent": self.latent(obs)}


def gru_sequence(gru: nn.GRU, x: torch.Tensor, starts: torch.Tensor, memory: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``gru`` over a (T, N, D) sequence from ``memory`` (N, H), zeroing each world's memory
    where an episode starts (``starts``: (T, N) bool). Returns the outputs (T, N, H) and the
    memory before each step (T, N, H)."""
    h = memory.unsqueeze(0)
    outputs, before = [], []
    for t in range(x.shape[0]):
        h = h * (~starts[t]).to(h.dtype)[None, :, None]
        before.append(h[0])
        out, h = gru(x[t:t + 1], h)
        outputs.append(out[0])
    return torch.stack(outputs), torch.stack(before)


class RecurrentActor(GaussianActor):
    """Gaussian policy with a memory of the episode: a GRU over one schema group, then an MLP,
    mu_t = mlp(h_t), h_t = GRU(o_t, h_{t-1}) (rsl_rl's ``ActorCriticRecurrent``; the critic stays
    an MLP on its own group).

    Acting, ``actor(obs)`` is one step of every world and carries the memory to the next call;
    ``reset(done)`` zeroes the worlds that start a new episode (:class:`distillkit.policy.Episodic`).
    PPO's update rebuilds the memory over a whole rollout with :meth:`sequence_mean`, from the
    memory the rollout started with (:attr:`memory`)."""

    def __init__(self, schema: ObservationSchema, group: str, action_dim: int, hidden: Sequence[int],
                 init_std: float, memory_size: int):
        super().__init__()
        self.input = GroupInput(schema, group)
        self.gru = nn.GRU(self.input.size, memory_size)
        self.memory_size = memory_size
        self.mlp = mlp(memory_size, hidden, action_dim)
        self.log_std = nn.Parameter(torch.full((action_dim,), math.log(init_std)))
        self.memory: torch.Tensor | None = None     # (N, memory_size) after the last step; None: zeros

    def forward(self, obs: Obs) -> torch.Tensor:
        x = self.input(obs)
        if self.memory is None or self.memory.shape[0] != x.shape[0]:
            self.memory = torch.zeros(x.shape[0], self.memory_size, device=x.device)
        out, h = self.gru(x.unsqueeze(0), self.memory.unsqueeze(0))
        self.memory = h[0].detach()      # acting carries the memory, never gradients (PPO uses sequence_mean)
        return self.mlp(out[0])

    def reset(self, done: torch.Tensor | None = None) -> None:
        if self.memory is None or done is None:
            self.memory = None
        else:       # a new tensor, not in place: a rollout keeps the memory it started with
            self.memory = self.memory * (~done).to(self.memory.dtype)[:, None]

    def sequence_mean(self, obs: Obs, starts: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Mean actions (T, N, action_dim) for a recorded (T, N) sequence from ``memory`` (N, H)."""
        T, N = starts.shape
        x = self.input({k: v.reshape(T * N, *v.shape[2:]) for k, v in obs.items()}).reshape(T, N, -1)
        return self.mlp(gru_sequence(self.gru, x, starts, memory)[0])


class Critic(nn.Module):
    """State-value function V(o) on one schema group (the critic group: it may see more)."""

    def __init__(self, schema: ObservationSchema, group: str, hidden: Sequence[int] = (256, 128, 64)):
        super().__init__()
        self.input = GroupInput(schema, group)
        self.mlp = mlp(self.input.size, hidden, 1)

    def forward(self, obs: Obs) -> torch.Tensor:
        return self.value(self.input(obs))

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """V from ``x = input(obs)``, the (N, group size) normalised group vector: (N,)."""
        return self.mlp(x).squeeze(-1)
