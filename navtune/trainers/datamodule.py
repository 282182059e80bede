"""One LightningDataModule for every trainer: episodes in, one ``EpisodeBatch`` per training step.

Sharding and shuffling are done here (not by Lightning's DistributedSampler) so that a run resumed
from a mid-epoch checkpoint sees exactly the batches the uninterrupted run would have seen: the
order is a pure function of (seed, epoch, rank, world size) and the loader's state (epoch, batches
consumed) is saved in Lightning checkpoints.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from navtune.trainers.batch import EpisodeBatch


class EpisodeSource(Protocol):
    """What the DataModule wraps: indexable episodes, plus their rewards without decoding frames."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> EpisodeBatch: ...

    def rewards(self, i: int) -> list[float]: ...


class EpisodeSampler(Sampler[int]):
    """Seeded per-epoch permutation, sharded rank::world_size (equal length on every rank), resumable."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        if n < world_size:
            raise ValueError(f"{n} training episodes cannot be shared by {world_size} processes")
        self.n, self.seed, self.shuffle, self.rank, self.world_size = n, seed, shuffle, rank, world_size
        self.epoch = 0
        self._skip = 0
        self._resume_epoch: int | None = None

    def set_epoch(self, epoch: int) -> None:
        if self._resume_epoch is not None and epoch != self._resume_epoch:
            self._skip, self._resume_epoch = 0, None
        self.epoch = epoch

    def resume(self, epoch: int, consumed: int) -> None:
        self.epoch, self._skip, self._resume_epoch = epoch, consumed, epoch

    def order(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            perm = torch.randperm(self.n, generator=g).tolist()
        else:
            perm = list(range(self.n))
        per_rank = self.n // self.world_size
        return perm[: per_rank * self.world_size][self.rank :: self.world_size]

    def __len__(self) -> int:
        return self.n // self.world_size

    def __iter__(self) -> Iterator[int]:
        order = self.order()
        skip, self._skip, self._resume_epoch = self._skip, 0, None
        return iter(order[skip:])


def _identity(x: Any) -> Any:
    return x


class ResumableLoader(DataLoader):
    """A DataLoader whose position inside an epoch is saved in (and restored from) Lightning checkpoints."""

    def __init__(self, dataset: Dataset, sampler: EpisodeSampler, num_workers: int = 0):
        super().__init__(dataset, batch_size=None, sampler=sampler, collate_fn=_identity, num_workers=num_workers)
        self._consumed = 0

    def __iter__(self):
        self._consumed = self.sampler._skip
        for item in super().__iter__():
            self._consumed += 1  # counted when handed out, so a checkpoint after a batch includes it
            yield item

    def __len__(self) -> int:
        return len(self.sampler)  # the full epoch: Lightning counts the batches done before a resume itself

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "consumed": self._consumed, "n": self.sampler.n,
                "world_size": self.sampler.world_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("n") != self.sampler.n or state.get("world_size") != self.sampler.world_size:
            raise ValueError(f"checkpoint was taken with {state.get('n')} episodes on {state.get('world_size')} "
                             f"processes; this run has {self.sampler.n} on {self.sampler.world_size}")
        self.sampler.resume(int(state["epoch"]), int(state["consumed"]))


class EpisodeDataModule(pl.LightningDataModule):
    def __init__(self, train: EpisodeSource, val: EpisodeSource | None = None, seed: int = 0,
                 shuffle: bool = True, num_workers: int = 0):
        super().__init__()
        self.train_source, self.val_source = train, val
        self.seed, self.shuffle, self.num_workers = seed, shuffle, num_workers

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        if isinstance(batch, EpisodeBatch):
            return batch.to(device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def _rank_world(self) -> tuple[int, int]:
        t = getattr(self, "trainer", None)
        return (t.global_rank, t.world_size) if t is not None else (0, 1)

    def train_dataloader(self) -> ResumableLoader:
        rank, world = self._rank_world()
        sampler = EpisodeSampler(len(self.train_source), self.seed, self.shuffle, rank, world)
        return ResumableLoader(self.train_source, sampler, self.num_workers)

    def val_dataloader(self):
        if self.val_source is None:
            return []
        rank, world = self._rank_world()
        sampler = EpisodeSampler(len(self.val_source), 0, False, rank, world)
        return DataLoader(self.val_source, batch_size=None, sampler=sampler, collate_fn=_identity,
                          num_workers=self.num_workers)

    def batches_per_epoch(self, world_size: int = 1) -> int:
        return len(self.train_source) // world_size

    def mean_return(self, gamma: float) -> float:
        """Dataset-level AWR baseline: the mean discounted return over every training step."""
        from navtune.data.rewards import discounted_returns

        total, count = 0.0, 0
        for i in range(len(self.train_source)):
            g = discounted_returns(self.train_source.rewards(i), gamma)
            total += float(g.sum())
            count += len(g)
        return total / max(count, 1)
