"""The build report's next moves: what to try for each failing line."""
from edgefit.pipeline.report import NEXT_MOVES, next_moves


def test_parity_of_a_model_near_chance_points_at_the_accuracy_not_the_calibration():
    near_chance = next_moves(["min_accuracy", "parity"], 0.25, 4)  # the README's offline quickstart ended here
    assert near_chance["min_accuracy"] == NEXT_MOVES["min_accuracy"]
    assert "near chance (test top-1 0.250 on 4 classes, chance 0.250)" in near_chance["parity"]
    assert "calibration images" not in near_chance["parity"]
    learned = next_moves(["parity"], 0.9, 4)  # a model that learned: its parity failure is the export's
    assert learned == {"parity": NEXT_MOVES["parity"]}
    assert next_moves(["storage_kb"], 0.1, 10) == {"storage_kb": NEXT_MOVES["storage_kb"]}
    assert next_moves([], None, 3) == {}
