"""SynpickVP reader on a fixture in the original layout (rgb/, masks/, BOP scene_gt JSON)."""

import json
import os

import numpy as np
from PIL import Image

from video_prediction.datasets.heatmaps import gaussian_heatmaps
from video_prediction.datasets.synpick import SynpickVideoDataset, valid_starts


def gripper_track(num_frames):

    return [(-100.0 + 2.0 * f, 20.0, 800.0) for f in range(num_frames)]  # 2 mm per raw frame


def write_synpick(root, split="test", episodes=(0, 1), num_frames=90, size=(24, 40)):
    for sub in ("rgb", "masks", "scene_gt"):
        os.makedirs(os.path.join(root, split, sub), exist_ok=True)
    for ep in episodes:
        track = gripper_track(num_frames)
        scene = {}
        for f in range(num_frames):
            name = f"{ep:06d}_{f:06d}"
            Image.fromarray(np.full(size + (3,), (f * 2) % 256, np.uint8)).save(
                os.path.join(root, split, "rgb", name + ".jpg"), quality=100)
            mask = np.zeros(size, np.uint8)
            mask[:, : size[1] // 2] = 22
            mask[0, 0] = 5
            Image.fromarray(mask).save(os.path.join(root, split, "masks", name + ".png"))
            scene[str(f)] = [{"obj_id": 5, "cam_t_m2c": [0.0, 0.0, 900.0]},
                             {"obj_id": 22, "cam_t_m2c": list(track[f])}]
        with open(os.path.join(root, split, "scene_gt", f"{ep:06d}_scene_gt.json"), "w") as f:
            json.dump(scene, f)


def test_validity_rules():
    names = [f"000000_{f:06d}.jpg" for f in range(100)]
    positions = {0: gripper_track(100)}
    starts = valid_starts(names, positions, num_frames=5, seq_step=2, allow_overlap=False)
    assert starts[0] == 72 and all(b - a >= 9 for a, b in zip(starts, starts[1:]))  # frame >= 72, no overlap
    overlapping = valid_starts(names, positions, num_frames=5, seq_step=2, allow_overlap=True)
    assert overlapping[:3] == [72, 74, 76]  # a new start every span // 4 = 2 frames
    still = {0: [(0.0, 0.0, 800.0)] * 100}  # gripper does not move: rejected
    assert valid_starts(names, still, 5) == []
    jumpy = {0: [(-100.0 + 40.0 * (f % 2), 0.0, 0.0) for f in range(100)]}  # 40 mm jumps: rejected
    assert valid_starts(names, jumpy, 5) == []


def test_reader_targets(tmp_path):
    write_synpick(str(tmp_path))
    dataset = SynpickVideoDataset(str(tmp_path), mode="test", hparams_dict=dict(
        context_frames=2, sequence_length=4, image_size=[12, 20]))
    assert dataset.starts == [72, 79, 162, 169]  # two 90-frame episodes, span 7, no overlap
    item = dataset.load_item(0)
    assert item["images"].shape == (4, 12, 20, 3)
    np.testing.assert_allclose(item["images"][1], 146 / 255, atol=2 / 255)  # raw frame 74
    seg = item["heatmaps_level1"]
    assert seg.shape == (4, 12, 20, 23) and (seg.sum(-1) == 1).all()
    assert seg[0, 5, 0, 22] == 1 and seg[0, 5, 15, 0] == 1
    x = (-100.0 + 2.0 * 74) / 615 + 0.5
    expected = gaussian_heatmaps([(x, 20.0 / 373 + 0.5)], 12, 20, 4.0)[..., 0]
    np.testing.assert_allclose(item["heatmaps_level2"][1, ..., 0], expected)
    batch = next(iter(dataset.make_dataset(2)))
    assert batch["heatmaps_level1"].shape == (2, 4, 12, 20, 23)
