import numpy as np
import pytest

from qama_rs.cli.main import main
from qama_rs.eval.methods import get_method


def test_rotation_suffix_builds_a_rotated_training_free_method():
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((300, 16)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)  # embeddings are unit vectors
    plain = get_method("lloyd_max_gauss").fit(docs)
    rotated = get_method("lloyd_max_gauss@orthogonal").fit(docs)
    scores_plain, ids_plain = plain.search(docs[:5], 3)
    scores_rot, ids_rot = rotated.search(docs[:5], 3)
    assert ids_plain.shape == ids_rot.shape == (5, 3)
    # Each document is its own best match under both; the rotation changes the scores themselves.
    assert (ids_plain[:, 0] == np.arange(5)).all() and (ids_rot[:, 0] == np.arange(5)).all()
    assert not np.allclose(scores_plain, scores_rot)
    with pytest.raises(ValueError, match="rotation"):
        get_method("lloyd_max_gauss@spiral").fit(docs)


def test_two_stage_refuses_a_prefix():
    with pytest.raises(ValueError, match="full dimensions"):
        get_method("two_stage", dims=96)


def test_eval_on_a_missing_dataset_is_one_clear_error(tmp_path, capsys):
    status = main(["eval", "--dataset", str(tmp_path / "nowhere"), "--method", "fp32"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("qama eval: error:") and "nowhere" in err


def test_eval_rejects_an_unknown_method(tmp_path, capsys):
    from test_data import write_beir

    folder = write_beir(tmp_path / "tiny")
    assert main(["eval", "--dataset", str(folder), "--method", "no-such-method"]) == 2
    assert "unknown method" in capsys.readouterr().err
