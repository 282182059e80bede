"""The trainer's episode sampler/loader: sharding, per-epoch shuffling and mid-epoch resume state."""
from __future__ import annotations

import pytest

from navtune.trainers.datamodule import EpisodeSampler, ResumableLoader


def test_sampler_shards_equally_and_covers_the_epoch():
    ranks = [EpisodeSampler(7, seed=3, rank=r, world_size=2) for r in range(2)]
    orders = [s.order() for s in ranks]
    assert len(orders[0]) == len(orders[1]) == 3  # 7 // 2, the odd one out changes with the epoch
    assert not set(orders[0]) & set(orders[1])
    one = EpisodeSampler(7, seed=3).order()
    assert [one[i] for i in range(0, 6, 2)] == orders[0] and [one[i] for i in range(1, 6, 2)] == orders[1]
    a = EpisodeSampler(7, seed=3)
    a.set_epoch(1)
    assert a.order() != one and sorted(a.order()) == list(range(7))
    assert EpisodeSampler(5, shuffle=False).order() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="cannot be shared"):
        EpisodeSampler(1, world_size=2)


def test_loader_state_resumes_mid_epoch_once():
    data = list(range(10, 16))
    loader = ResumableLoader(data, EpisodeSampler(6, seed=1))
    loader.sampler.set_epoch(2)
    full = list(loader)
    it = iter(loader)
    seen = [next(it), next(it)]
    state = loader.state_dict()
    assert state == {"epoch": 2, "consumed": 2, "n": 6, "world_size": 1}
    again = ResumableLoader(data, EpisodeSampler(6, seed=1))
    again.load_state_dict(state)
    again.sampler.set_epoch(2)  # Lightning sets the same epoch again on restart: the skip must survive
    rest = list(again)
    assert seen + rest == full and len(again) == 6
    again.sampler.set_epoch(3)  # the next epoch is whole again
    assert len(list(again)) == 6
    with pytest.raises(ValueError, match="episodes"):
        ResumableLoader(data[:5], EpisodeSampler(5)).load_state_dict(state)
