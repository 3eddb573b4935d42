"""The shipped MODEL_CARD.md is the rendering of model_card.json, so what people read is what loads check."""
import copy

from model.weights.model_card import CARD_MARKDOWN, lineage, render_model_card
from model.weights.model_source import model_card


def test_the_shipped_markdown_card_is_the_json_rendered():
    with open(CARD_MARKDOWN, encoding="utf-8") as handle:
        assert handle.read() == render_model_card(model_card()), "run python -m model.weights.model_card"


def test_the_card_names_every_file_hash_score_and_earlier_generator():
    card = model_card()
    text = render_model_card(card)
    for criterion, entry in card["models"].items():
        assert f"## {criterion}" in text and entry["sha256"] in text
        x4 = entry["colin27_centre128"]["x4"]["soupgan"]
        assert f"{x4['psnr']:.2f} dB / {x4['ssim']:.4f}" in text
    assert len(lineage(card)) >= 1 and all(step["sha256"][:12] in text for step in lineage(card))


def test_a_changed_score_changes_the_card():
    card = copy.deepcopy(model_card())
    card["models"]["thin-to-thin"]["colin27_centre128"]["x4"]["soupgan"]["psnr"] = 12.34
    assert "12.34 dB" in render_model_card(card) and render_model_card(card) != render_model_card(model_card())
