"""Query-side translation (issue 10 item 3): queries translated into one condition's appearance before
they are described — hand-computed with the colour descriptor and a fake translator, then end to end
with raw pixels, a 2-step MDUIT run and ``mduit-loc query --translate-queries-to``."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mduit_loc import cli
from mduit_loc.errors import MduitError
from mduit_loc.retrieval.api import QueryTranslationOptions, build_index, localize
from mduit_loc.retrieval.descriptor_models import ModuleDescriptor, load_descriptor, register_descriptor
from mduit_loc.retrieval.query_translation import TranslatingDescriptor, translating_descriptor

from ..evaluation.mini_mduit import mini_benchmark_and_model
from .retrieval_fakes import CPU, FakeTranslator, color_dataset, index_options, pose, query_options


class DomainTranslator(FakeTranslator):
    """The fake MDUIT with domain-mean filters (a colour each): translation blends halfway to it."""

    def domain_filters(self):
        device = self.scale.device   # as MDUIT.domain_filters: on the model's device
        return {"overcast-reference": torch.tensor([[0.0, 0.8, 0.0]], device=device),
                "night": torch.tensor([[0.0, 0.0, 0.2]], device=device)}


register_descriptor("test-mduit-domains", lambda spec, device: ModuleDescriptor(DomainTranslator().to(device), "mduit",
                                                                                spec, "describe", device))


def test_queries_are_translated_then_described_hand_computed(tmp_path):
    # Query colour (0.2, 0, 0) blended halfway to the reference filter (0, 0.8, 0) is (0.1, 0.4, 0):
    # untranslated it matches the red database image, translated the green-yellow one.
    identity = pose((1, 0, 0, 0), (0, 0, 0))
    dataset = color_dataset(tmp_path, [("overcast-reference/rear/red.png", (200, 0, 0), identity, None),
                                       ("overcast-reference/rear/lime.png", (25, 100, 0), identity, None)],
                            [("night/rear/q.png", (51, 0, 0), None)])
    index = build_index(dataset, "test-color", tmp_path / "index", index_options())
    plain = localize(index, dataset, query_options())
    assert plain.pairs["night/rear/q.png"][0] == "overcast-reference/rear/red.png"
    options = query_options(translate_queries=QueryTranslationOptions(condition="overcast-reference",
                                                                       translator="test-mduit-domains"))
    translated = localize(index, dataset, options, tmp_path / "res")
    assert translated.pairs["night/rear/q.png"][0] == "overcast-reference/rear/lime.png"
    expected = np.array([0.1, 0.4, 0.0]) / np.linalg.norm([0.1, 0.4, 0.0])
    lime = np.array([25, 100, 0]) / np.linalg.norm([25, 100, 0])
    assert translated.scores["night/rear/q.png"][0] == pytest.approx(float(expected @ lime), abs=0.02)
    summary = json.loads((tmp_path / "res" / "summary.json").read_text())
    assert summary["options"]["translate_queries"] == {"condition": "overcast-reference",
                                                       "translator": "test-mduit-domains", "keep_original": 0.0}


def test_keep_original_blends_the_translated_and_the_original_query_hand_computed():
    # query (0.2, 0, 0): translated (0.1, 0.4, 0), original (1, 0, 0) once normalised; W = 0.25
    options = QueryTranslationOptions(condition="overcast-reference", translator="test-mduit-domains",
                                      keep_original=0.25)
    wrapped = translating_descriptor(load_descriptor("test-color", CPU), options, CPU)
    images = torch.zeros(1, 3, *wrapped.image_size)
    images[:, 0] = 0.2
    vector = wrapped(images)[0].numpy()
    translated = np.array([0.1, 0.4, 0.0]) / np.linalg.norm([0.1, 0.4, 0.0])
    blend = 0.75 * translated + 0.25 * np.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(vector, blend / np.linalg.norm(blend), atol=1e-5)
    with pytest.raises(MduitError, match="keep-original"):
        QueryTranslationOptions(condition="night", keep_original=1.0)


def test_the_wrapper_keeps_the_descriptor_identity_and_reads_at_the_translator_size():
    inner = load_descriptor("raw-pixels:4x4", CPU)
    wrapped = translating_descriptor(inner, QueryTranslationOptions(condition="night", translator="test-mduit-domains"),
                                     CPU)
    assert isinstance(wrapped, TranslatingDescriptor)
    assert wrapped.describe_identity() == inner.describe_identity()
    assert wrapped.image_size == (16, 16) and wrapped.dim == inner.dim
    images = torch.rand(2, 3, 16, 16)
    vectors = wrapped(images)
    assert vectors.shape == (2, inner.dim)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(2))


def test_a_descriptor_that_cannot_translate_needs_a_translator_and_a_known_condition():
    inner = load_descriptor("raw-pixels", CPU)
    with pytest.raises(MduitError, match="cannot translate; give an MDUIT run with --translator"):
        translating_descriptor(inner, QueryTranslationOptions(condition="overcast-reference"), CPU)
    with pytest.raises(MduitError, match="no such domain; it has night, overcast-reference"):
        translating_descriptor(inner, QueryTranslationOptions(condition="sun", translator="test-mduit-domains"), CPU)


@pytest.mark.slow
def test_query_translate_queries_to_end_to_end(tmp_path, capsys):
    data, run = mini_benchmark_and_model(tmp_path / "mini")
    index = tmp_path / "index"
    assert cli.main(["index", "--db", str(data), "--model", "raw-pixels", "--out", str(index), "--num-workers", "0",
                     "--no-progress", "--device", "cpu"]) == 0
    common = ["query", "--index", str(index), "--images", str(data), "--split", "test", "--num-workers", "0",
              "--no-progress", "--device", "cpu"]
    assert cli.main([*common, "--out", str(tmp_path / "plain")]) == 0
    assert cli.main([*common, "--out", str(tmp_path / "translated"), "--translate-queries-to", "overcast-reference",
                     "--translator", str(run)]) == 0
    summary = json.loads((tmp_path / "translated" / "summary.json").read_text())
    assert summary["options"]["translate_queries"]["condition"] == "overcast-reference"
    plain = (tmp_path / "plain" / "pairs.txt").read_text().splitlines()
    translated = (tmp_path / "translated" / "pairs.txt").read_text().splitlines()
    assert len(plain) == len(translated) and plain != translated   # the same queries, other neighbours
    capsys.readouterr()
    # A raw-pixels index has no translator of its own; --translator alone is refused.
    assert cli.main([*common, "--out", str(tmp_path / "x"), "--translate-queries-to", "overcast-reference"]) == 2
    assert "--translator RUN" in capsys.readouterr().err
    assert cli.main([*common, "--out", str(tmp_path / "x"), "--translator", str(run)]) == 2
    assert "give --translate-queries-to" in capsys.readouterr().err
    # An MDUIT index translates its queries with its own model by default.
    mduit_index = tmp_path / "mduit-index"
    assert cli.main(["index", "--db", str(data), "--model", str(run), "--out", str(mduit_index), "--num-workers", "0",
                     "--no-progress", "--device", "cpu"]) == 0
    assert cli.main(["query", "--index", str(mduit_index), "--images", str(data), "--split", "test", "--num-workers",
                     "0", "--no-progress", "--device", "cpu", "--out", str(tmp_path / "z"),
                     "--translate-queries-to", "night"]) == 0
    assert (tmp_path / "z" / "pairs.txt").is_file()


def test_index_fuse_translations_end_to_end(tmp_path, capsys):
    data, run = mini_benchmark_and_model(tmp_path / "mini")
    common = ["index", "--db", str(data), "--model", str(run), "--num-workers", "0", "--no-progress",
              "--device", "cpu"]
    assert cli.main([*common, "--out", str(tmp_path / "fused"), "--translate-db", "--fuse-translations"]) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((tmp_path / "fused" / "manifest.json").read_text())
    copies = len(manifest["translation"]["appearances"])
    assert copies >= 1 and manifest["translation"]["fused_weight"] == 0.5   # the flag's default weight
    assert manifest["counts"]["vectors"] == manifest["counts"]["images"]
    assert f"images, each fused with its {copies} translated copies at weight 0.5)" in printed
    assert cli.main([*common, "--out", str(tmp_path / "x"), "--fuse-translations", "0.3"]) == 2
    assert "--fuse-translations needs --translate-db" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
