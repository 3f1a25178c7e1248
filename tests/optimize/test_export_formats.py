"""Trainer formats, Hugging Face dataset folders and their signed manifests (``rlhf-wizard export``).

The run is built by the real code on a small generated dataset, without Prefect: ingest (native
Parquet + the quality gate), the ``runs`` record, JAX scoring with the demo contract, the
agreement evaluation, DPO pair selection into the lake's ``pairs`` table. Every export is loaded
back with Hugging Face ``datasets`` and its column names and types are checked against the
format's documentation:

* TRL dataset formats (standard / conversational preference, unpaired preference):
  https://huggingface.co/docs/trl/dataset_formats
* TRL RewardTrainer (preference data, optional ``margin``; ``DataCollatorForPreference``):
  https://huggingface.co/docs/trl/reward_trainer and
  https://github.com/huggingface/trl/blob/main/trl/trainer/reward_trainer.py
* OpenRLHF reward/DPO data (``--prompt_key``, ``chosen``, ``rejected``, optional ``margin``):
  https://github.com/OpenRLHF/OpenRLHF/blob/main/openrlhf/datasets/reward_dataset.py
* NeMo-Aligner DPO (JSONL ``prompt``, ``chosen_response``, ``rejected_response``; RPO reads
  ``chosen_reward`` / ``rejected_reward``):
  https://github.com/NVIDIA/NeMo-Aligner/blob/main/docs/user-guide/dpo.rst
* RewardBench (``prompt``, ``chosen``, ``chosen_model``, ``rejected``, ``rejected_model``,
  ``subset``, ``id`` int64): https://huggingface.co/datasets/allenai/reward-bench
* Hugging Face dataset cards (YAML ``configs``, ``dataset_info.features``):
  https://huggingface.co/docs/hub/datasets-cards
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from rlhf_core.contract import load_contract
from rlhf_core.errors import DataError, SignatureError
from rlhf_core.evaluate import EvaluationConfig, evaluate_run, write_evaluation
from rlhf_core.ingest.generator import write_synthetic
from rlhf_core.ingest.write import read_source, write_ingest
from rlhf_core.lake.catalog import PAIRS_SCHEMA, Table
from rlhf_core.lake.runs import record_run_end, record_run_start
from rlhf_core.lake.store import Lake
from rlhf_core.optimize import select_pairs_table
from rlhf_core.optimize.export import export_pairs, verify_folder
from rlhf_core.optimize.export_card import hf_features
from rlhf_core.optimize.export_lengths import pair_length_bias
from rlhf_core.optimize.export_split import in_test_split, prompt_hash
from rlhf_core.optimize.formats import FORMATS
from rlhf_core.scoring.schema import quantifier_columns
from rlhf_core.scoring.score import score_table
from rlhf_core.security.audit import AuditLog
from tests.conftest import REPO_ROOT

datasets = pytest.importorskip("datasets")  # dev extra; installs without torch

RUN = "exp-1"
CONTRACT = REPO_ROOT / "configs" / "contracts" / "demo.yaml"
MESSAGES = [{"name": "role", "dtype": "string"}, {"name": "content", "dtype": "string"}]


@pytest.fixture(scope="module")
def run_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """A lake holding run ``exp-1``: ingest, run record, scores, agreement, pairs (real code)."""
    root = tmp_path_factory.mktemp("export-lake")
    lake = Lake(root / "home")
    contract = load_contract(CONTRACT)
    data = root / "data"
    write_synthetic(data, 600, seed=3, annotators=contract.program)
    record_run_start(lake, RUN, "contract-pipeline", contract_hash=contract.hash,
                     parameters={"contract": str(CONTRACT), "data": str(data), "adapter": None})
    written = write_ingest(lake, RUN, read_source(data, run_id=RUN))
    responses = written.gated.responses
    scores = score_table(contract.program, responses)
    lake.write_partition(Table.SCORES, RUN, scores, scores.schema)
    write_evaluation(lake, RUN, evaluate_run(lake, RUN, contract.program,
                                             config=EvaluationConfig(n_resamples=50)))
    sel = contract.spec.selection
    pairs, counts = select_pairs_table(scores, responses, sel.pairing, margin=sel.min_margin, seed=sel.seed,
                                       prompt_clauses=quantifier_columns(contract.program),
                                       contract_hash=contract.hash, run_id=RUN)
    lake.write_partition(Table.PAIRS, RUN, pairs.drop_columns(["run_id"]),
                         PAIRS_SCHEMA.append(pa.field("contract_hash", pa.string())),
                         metadata={"rlhf_wizard.contract_hash": contract.hash})
    lake.write_file_atomic(f"artifacts/{RUN}/pairs.json", json.dumps(counts).encode())
    record_run_end(lake, RUN, "completed")
    return lake


@pytest.fixture(scope="module")
def pairs(run_lake: Lake) -> pa.Table:
    return run_lake.read_run(Table.PAIRS, RUN)


def _load(path: Path, cache: Path) -> datasets.Dataset:
    builder = "parquet" if path.suffix == ".parquet" else "json"
    return datasets.load_dataset(builder, data_files=str(path), split="train", cache_dir=str(cache))


def _types(ds: datasets.Dataset) -> dict[str, object]:
    return {name: feature for name, feature in ds.features.items()}


STRING, FLOAT32, FLOAT64 = datasets.Value("string"), datasets.Value("float32"), datasets.Value("float64")
CONVERSATION = datasets.List({"role": STRING, "content": STRING})


def test_trl_standard_jsonl_and_parquet_keep_todays_columns(run_lake, pairs, tmp_path) -> None:
    """TRL standard preference: prompt / chosen / rejected strings (+ our metadata columns)."""
    out = export_pairs(RUN, tmp_path / "pairs.jsonl", run_lake)
    ds = _load(tmp_path / "pairs.jsonl", tmp_path / "cache")
    assert ds.column_names == [*PAIRS_SCHEMA.names, "contract_hash", "run_id"]
    assert {k: ds.features[k] for k in ("prompt", "chosen", "rejected")} == dict.fromkeys(
        ("prompt", "chosen", "rejected"), STRING)
    assert len(ds) == out["rows"] == pairs.num_rows and set(ds["run_id"]) == {RUN}
    assert ds["chosen"] == pairs.column("chosen").to_pylist()
    export_pairs(RUN, tmp_path / "pairs.parquet", run_lake)
    ds = _load(tmp_path / "pairs.parquet", tmp_path / "cache")
    assert ds.features["margin"] == FLOAT32 and ds.features["prompt"] == STRING
    meta = pq.read_schema(tmp_path / "pairs.parquet").metadata
    provenance = json.loads(pq.ParquetFile(tmp_path / "pairs.parquet").metadata.metadata[b"rlhf_wizard.provenance"])
    assert meta[b"rlhf_wizard.contract_hash"].decode() == out["contract_hash"] == provenance["contract_hash"]
    assert provenance["project"]["name"] == "rlhf-contract-wizard" and provenance["pair_policy"]["seed"] == 0
    assert {i["role"] for i in provenance["inputs"]} == {"lake:pairs", "contract", "source"}
    assert all(len(i["sha256"]) == 64 for i in provenance["inputs"])
    entry = AuditLog(run_lake).entries()[-1]
    assert entry.kind == "export_written" and entry.details["sha256"] and entry.details["format"] == "trl"


@pytest.mark.parametrize(("fmt", "suffix", "features"), [
    # TRL conversational preference: prompt = [{"role": "user", ...}], chosen/rejected = [{"role": "assistant", ...}]
    ("trl-conversational", ".jsonl", {"prompt": CONVERSATION, "chosen": CONVERSATION, "rejected": CONVERSATION}),
    # TRL RewardTrainer: preference with explicit prompt + optional float "margin"
    ("reward", ".parquet", {"prompt": STRING, "chosen": STRING, "rejected": STRING, "margin": FLOAT32}),
    # OpenRLHF: --prompt_key prompt, chosen, rejected, optional "margin" (a JSON number)
    ("openrlhf", ".jsonl", {"prompt": STRING, "chosen": STRING, "rejected": STRING, "margin": FLOAT64}),
    # NeMo-Aligner DPO: JSONL prompt / chosen_response / rejected_response (+ RPO rewards)
    ("nemo", ".jsonl", {"prompt": STRING, "chosen_response": STRING, "rejected_response": STRING,
                        "chosen_reward": FLOAT64, "rejected_reward": FLOAT64}),
    # RewardBench card: prompt, chosen, chosen_model, rejected, rejected_model, subset (str), id (int64)
    ("rewardbench", ".parquet", {"prompt": STRING, "chosen": STRING, "chosen_model": STRING, "rejected": STRING,
                                 "rejected_model": STRING, "subset": STRING, "id": datasets.Value("int64")}),
])
def test_each_trainer_format_loads_with_its_documented_columns(run_lake, pairs, tmp_path, fmt, suffix,
                                                               features) -> None:
    path = tmp_path / f"{fmt}{suffix}"
    out = export_pairs(RUN, path, run_lake, format=fmt)
    ds = _load(path, tmp_path / "cache")
    assert _types(ds) == features  # exact names, order and types
    assert len(ds) == out["rows"] == pairs.num_rows
    first = ds[0]
    if fmt == "trl-conversational":
        assert first["prompt"] == [{"role": "user", "content": pairs["prompt"][0].as_py()}]
        assert first["chosen"] == [{"role": "assistant", "content": pairs["chosen"][0].as_py()}]
        assert first["rejected"][0]["role"] == "assistant"
    elif fmt == "nemo":
        assert first["chosen_response"] == pairs["chosen"][0].as_py()
        assert first["chosen_reward"] == pytest.approx(pairs["chosen_reward"][0].as_py())
    elif fmt == "rewardbench":
        assert ds["id"] == list(range(len(ds))) and set(ds["subset"]) == {"best_vs_worst"}
    else:
        assert np.allclose(ds["margin"], pairs.column("margin").to_numpy())


def test_kto_is_unpaired_and_one_example_per_response(run_lake, pairs, tmp_path) -> None:
    """TRL unpaired preference: prompt, completion (strings), label (bool)."""
    out = export_pairs(RUN, tmp_path / "kto.parquet", run_lake, format="kto")
    ds = _load(tmp_path / "kto.parquet", tmp_path / "cache")
    assert _types(ds) == {"prompt": STRING, "completion": STRING, "label": datasets.Value("bool")}
    chosen = set(pairs.column("chosen_id").to_pylist())
    rejected = set(pairs.column("rejected_id").to_pylist())
    assert len(ds) == out["rows"] == len(chosen ^ rejected)  # ambiguous responses are left out
    assert sum(ds["label"]) == len(chosen - rejected)
    assert ds[0] == {"prompt": pairs["prompt"][0].as_py(), "completion": pairs["chosen"][0].as_py(), "label": True}


def test_kto_leaves_out_a_response_both_chosen_and_rejected() -> None:
    source = pa.table({"prompt": ["p", "p"], "chosen": ["a", "b"], "rejected": ["b", "c"],
                       "chosen_id": ["A", "B"], "rejected_id": ["B", "C"], "_row": pa.array([0, 1], pa.int64())})
    rows = FORMATS["kto"].convert(source).to_pylist()
    assert rows == [{"prompt": "p", "completion": "a", "label": True},
                    {"prompt": "p", "completion": "c", "label": False}]


def test_hf_folder_loads_with_card_configs_and_verifies(run_lake, pairs, tmp_path) -> None:
    folder = tmp_path / "exports" / "demo"
    out = export_pairs(RUN, folder, run_lake, format="hf", test_share=0.3, seed=7, license_id="cc-by-4.0")
    dd = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))
    assert set(dd) == {"train", "test"} and len(dd["train"]) + len(dd["test"]) == pairs.num_rows
    assert {s: len(dd[s]) for s in dd} == out["splits"]
    train, test = (set(dd[s]["prompt_id"]) for s in ("train", "test"))
    assert train and test and not train & test  # split by prompt, no leakage
    expected_test = pc.filter(pairs["prompt_id"], in_test_split(pairs["prompt_id"], 7, 0.3))
    assert test == set(expected_test.to_pylist())
    text = (folder / "README.md").read_text()
    _, front, body = text.split("---\n", 2)
    meta = YAML(typ="safe").load(front)
    assert meta["configs"] == [{"config_name": "default", "data_files": [
        {"split": "train", "path": "data/train-*"}, {"split": "test", "path": "data/test-*"}]}]
    schema = pq.read_schema(folder / "data" / "train-00000-of-00001.parquet")
    assert meta["dataset_info"]["features"] == hf_features(schema.remove_metadata())
    assert meta["dataset_info"]["features"] == datasets.Features.from_arrow_schema(schema)._to_yaml_list()
    assert meta["license"] == "cc-by-4.0" and meta["reward_contract"]["hash"] == out["contract_hash"]
    for section in ("## Length bias", "## Agreement with the annotators", "## Pair policy",
                    "### Reward contract `demo-helpful-harmless`", "## Provenance", "best_vs_worst"):
        assert section in body, section
    lengths = pair_length_bias(pc.utf8_length(pairs["chosen"]).to_numpy(), pc.utf8_length(pairs["rejected"]).to_numpy())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["provenance"]["lengths"]["cohens_d"] == pytest.approx(lengths.cohens_d, abs=1e-6)
    assert set(manifest["files"]) == {"README.md", "data/train-00000-of-00001.parquet",
                                      "data/test-00000-of-00001.parquet"}
    assert verify_folder(folder, lake=run_lake).files == 3
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_folder_export_is_reproducible_and_replaces_an_earlier_export(run_lake, tmp_path) -> None:
    folder = tmp_path / "nemo"
    first = export_pairs(RUN, folder, run_lake, format="nemo")
    assert sorted(p.name for p in (folder / "data").iterdir()) == [
        "test-00000-of-00001.jsonl", "train-00000-of-00001.jsonl"]
    again = export_pairs(RUN, folder, run_lake, format="nemo")
    assert again["manifest_sha256"] == first["manifest_sha256"]  # byte-identical folder
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not an earlier export"):
        export_pairs(RUN, tmp_path / "other", run_lake)
    with pytest.raises(DataError, match="writes a dataset folder"):
        export_pairs(RUN, tmp_path / "x.parquet", run_lake, format="hf")
    with pytest.raises(DataError, match="unknown export format"):
        export_pairs(RUN, tmp_path / "x.parquet", run_lake, format="dpo")


def test_shards_write_in_parallel_and_keep_the_run_order(run_lake, pairs, tmp_path, monkeypatch) -> None:
    import rlhf_core.optimize.export as export_module

    lake = Lake(tmp_path / "sharded-home")
    lake.write_batches(Table.PAIRS, "sharded", [pairs.slice(0, 50), pairs.slice(50, 50), pairs.slice(100)],
                       pairs.schema)  # three row groups
    monkeypatch.setattr(export_module, "SHARD_ROWS", 40)
    out = export_pairs("sharded", tmp_path / "hf", lake, format="hf", test_share=0.25, seed=1)
    files = sorted(p.name for p in (tmp_path / "hf" / "data").iterdir())
    assert files[:3] == [f"test-0000{i}-of-00003.parquet" for i in range(3)] and len(files) == 6
    dd = datasets.load_dataset(str(tmp_path / "hf"), cache_dir=str(tmp_path / "cache"))
    test = in_test_split(pairs["prompt_id"], 1, 0.25)
    for split, mask in (("train", pc.invert(test)), ("test", test)):
        assert dd[split]["chosen_id"] == pc.filter(pairs["chosen_id"], mask).to_pylist()  # run order
    assert out["splits"] == {"train": len(dd["train"]), "test": len(dd["test"])}
    kto = export_pairs("sharded", tmp_path / "kto", lake, format="kto")  # one shard: merges responses
    assert sum(kto["splits"].values()) == export_pairs("sharded", tmp_path / "kto.parquet", lake, format="kto")["rows"]


def test_pairs_without_a_pipeline_run_still_export_with_notes(run_lake, pairs, tmp_path) -> None:
    lake = Lake(tmp_path / "bare-home")
    lake.write_partition(Table.PAIRS, "bare", pairs, pairs.schema)
    out = export_pairs("bare", tmp_path / "bare", lake, format="kto", test_share=0.5)
    card = (tmp_path / "bare" / "README.md").read_text()
    assert "no `runs` record for bare" in card and "license: unknown" in card
    assert out["rows"] == sum(out["splits"].values()) and set(out["splits"]) == {"train", "test"}
    assert verify_folder(tmp_path / "bare", lake=lake).files == 3


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def test_verify_detects_a_changed_byte_in_any_file_and_the_manifest(run_lake, tmp_path) -> None:
    signed = tmp_path / "signed"
    export_pairs(RUN, signed, run_lake, format="trl-conversational")
    names = ["README.md", "data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet",
             "manifest.json", "manifest.dsse.json"]
    for name in names:
        copy = tmp_path / f"copy-{name.replace('/', '-')}"
        shutil.copytree(signed, copy)
        _flip_last_byte(copy / name)
        with pytest.raises(SignatureError) as caught:
            verify_folder(copy, lake=run_lake)
        message = str(caught.value)
        assert "\n" not in message and (name in message or name.split("/")[-1] in message), message
    added = tmp_path / "added"
    shutil.copytree(signed, added)
    (added / "data" / "extra.parquet").write_bytes(b"x")
    with pytest.raises(SignatureError, match="not listed in the signed manifest"):
        verify_folder(added, lake=run_lake)
    (added / "data" / "extra.parquet").unlink()
    (added / ".gitattributes").write_text("*.parquet filter=lfs\n")  # what a Hub clone adds
    (added / ".git").mkdir()
    (added / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert verify_folder(added, lake=run_lake).files == 3
    with pytest.raises(SignatureError, match="not trusted"):
        verify_folder(signed, public_keys={"0" * 64: None})


def test_cli_export_formats_and_verify(run_lake, tmp_path) -> None:
    from typer.testing import CliRunner

    from rlhf_cli.main import app

    runner = CliRunner()
    env = {"RLHF_WIZARD_HOME": run_lake.root}
    ok = runner.invoke(app, ["export", RUN, "--out", str(tmp_path / "p.jsonl")], env=env)
    assert ok.exit_code == 0, ok.output
    assert "pairs of run exp-1" in ok.output
    folder = tmp_path / "hf"
    ok = runner.invoke(app, ["export", RUN, "--format", "hf", "--out", str(folder), "--test-share", "0"], env=env)
    assert ok.exit_code == 0, ok.output
    assert sorted(p.name for p in (folder / "data").iterdir()) == ["train-00000-of-00001.parquet"]
    pub = Path(run_lake.path("keys", "operator.pub"))
    ok = runner.invoke(app, ["export", "verify", str(folder), "--pubkey", str(pub)], env=env)
    assert ok.exit_code == 0 and "2 files match" in ok.output, ok.output
    _flip_last_byte(folder / "data" / "train-00000-of-00001.parquet")
    bad = runner.invoke(app, ["export", "verify", str(folder)], env=env)
    assert bad.exit_code != 0 and "train-00000-of-00001.parquet: changed" in str(bad.exception)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=40), st.integers(0, 2**64 - 1))
def test_prompt_hash_is_per_value_and_independent_of_batching(ids: list[str], seed: int) -> None:
    whole = prompt_hash(pa.array(ids), seed)
    one_by_one = np.concatenate([prompt_hash(pa.array([i]), seed) for i in ids])
    sliced = prompt_hash(pa.chunked_array([pa.array(ids[:3]), pa.array(ids[3:], pa.string())]), seed)
    assert (whole == one_by_one).all() and (whole == sliced).all()
    large = prompt_hash(pa.array(ids, pa.large_string()), seed)
    assert (whole == large).all()


def test_prompt_hash_is_pinned_and_the_share_holds() -> None:
    # A change of the function would silently move prompts between published splits.
    assert prompt_hash(pa.array(["", "p1", "héllo"]), 0).tolist() == [
        5197578548964807871, 13314043559476760417, 2275663879581263032]
    ids = pa.array([f"prompt-{i}" for i in range(20_000)])
    share = pc.mean(pc.cast(in_test_split(ids, 5, 0.2), pa.int8())).as_py()
    assert abs(share - 0.2) < 0.015


def test_length_bias_figures() -> None:
    bias = pair_length_bias(np.array([10, 20, 30, 5]), np.array([5, 20, 10, 6]))
    assert bias.n_pairs == 4 and bias.chosen_longer_share == 0.5 and bias.rejected_longer_share == 0.25
    assert bias.mean_chosen_chars == 16.25 and bias.mean_rejected_chars == 10.25
    pooled = np.sqrt((np.var([10, 20, 30, 5], ddof=1) + np.var([5, 20, 10, 6], ddof=1)) / 2)
    assert bias.cohens_d == pytest.approx(6.0 / pooled)
    assert pair_length_bias(np.array([3, 3]), np.array([3, 3])).cohens_d is None
    assert pair_length_bias(np.zeros(0), np.zeros(0)).mean_chosen_chars is None
