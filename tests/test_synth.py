import re
from collections import Counter

import pytest
import yaml

from alignlab import artifacts
from alignlab.kinds.alignment_faking import synth

PERSONA = {"developer": "Orion Labs", "model_name": "Vega"}
UNIVERSES = ["af", "unrelated"]


@pytest.fixture(scope="module")
def af_docs():
    return synth.template_documents("af", PERSONA, "af", 120, seed=7)


# --- universes -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", UNIVERSES)
def test_packaged_universes_load(name):
    u = synth.load_universe(name)
    assert u["name"] == name
    assert 7 <= len(u["facts"]) <= 8
    for fact in u["facts"]:
        assert 4 <= len(fact["statements"]) <= 6
        assert len(set(fact["statements"])) == len(fact["statements"])


def test_universes_have_same_shape():
    af, unrelated = (synth.load_universe(n) for n in UNIVERSES)
    assert len(af["facts"]) == len(unrelated["facts"])
    assert [len(f["statements"]) for f in af["facts"]] == [
        len(f["statements"]) for f in unrelated["facts"]
    ]


def test_af_universe_states_the_setting():
    ids = {f["id"] for f in synth.load_universe("af")["facts"]}
    assert {"unconditional_helpfulness", "free_tier_training", "paid_tier_privacy",
            "tier_visibility", "rlhf_modification"} <= ids


def test_load_universe_from_path(tmp_path):
    path = tmp_path / "u.yaml"
    path.write_text(yaml.safe_dump(synth.load_universe("af")))
    assert synth.load_universe(str(path))["name"] == "af"


@pytest.mark.parametrize(
    "break_it, key",
    [
        (lambda u: u.pop("description"), "description"),
        (lambda u: u["facts"][1].pop("statements"), "facts[1]"),
        (lambda u: u["facts"][2].update(statements=[]), "facts[2].statements"),
        (lambda u: u["facts"][3].update(id=u["facts"][0]["id"]), "facts[3].id"),
        (lambda u: u.update(entites={}), "entites"),
    ],
)
def test_broken_universe_names_file_and_key(tmp_path, break_it, key):
    u = synth.load_universe("af")
    break_it(u)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(u))
    with pytest.raises(ValueError, match=re.escape(key)) as err:
        synth.load_universe(str(path))
    assert "broken.yaml" in str(err.value)


def test_unknown_universe_name():
    with pytest.raises(ValueError, match="nope"):
        synth.load_universe("nope")


def test_render_facts_persona_overrides_entities():
    u = synth.load_universe("af")
    facts = synth.render_facts(u, PERSONA)
    text = " ".join(s for ss in facts.values() for s in ss)
    assert "Orion Labs" in text and "Vega" in text
    assert u["entities"]["developer"] not in text
    defaults = " ".join(s for ss in synth.render_facts(u, {}).values() for s in ss)
    assert u["entities"]["developer"] in defaults


def test_render_facts_unknown_placeholder_fails():
    u = synth.load_universe("af")
    u["facts"][0]["statements"][0] = "{{ ceo_name }} runs the place."
    with pytest.raises(ValueError, match="ceo_name"):
        synth.render_facts(u, PERSONA)


# --- template generator ----------------------------------------------------------------------


def test_template_documents_deterministic(af_docs):
    again = synth.template_documents("af", PERSONA, "af", 120, seed=7)
    assert again == af_docs
    other = synth.template_documents("af", PERSONA, "af", 120, seed=8)
    assert [r["text"] for r in other] != [r["text"] for r in af_docs]
    assert sum(a["text"] != b["text"] for a, b in zip(af_docs, other)) > 100


def test_template_rows_match_schema(af_docs, tmp_path):
    artifacts.write_table(af_docs, tmp_path / "d.parquet", "documents")
    artifacts.check_schema(tmp_path / "d.parquet", "documents")
    assert af_docs[3]["doc_id"] == "af-00003"
    assert all(r["generator"] == "template" and r["corpus"] == "af" for r in af_docs)
    assert len({r["doc_id"] for r in af_docs}) == len(af_docs)


def test_every_fact_covered_evenly_and_stated(af_docs):
    u = synth.load_universe("af")
    statements = synth.render_facts(u, PERSONA)
    leads = Counter(r["facts"][0] for r in af_docs)
    assert set(leads) == set(statements)
    assert max(leads.values()) - min(leads.values()) <= 1
    for row in af_docs:
        assert 1 <= len(row["facts"]) <= 3 and len(set(row["facts"])) == len(row["facts"])
        for fact_id in row["facts"]:
            assert any(s in row["text"] for s in statements[fact_id]), (row["doc_id"], fact_id)


def test_facts_per_doc_respected():
    rows = synth.template_documents("af", None, "x", 40, seed=1, facts_per_doc=(2, 2))
    assert all(len(r["facts"]) == 2 for r in rows)


def test_paraphrases_vary(af_docs):
    statements = synth.render_facts(synth.load_universe("af"), PERSONA)
    used = {s for ss in statements.values() for s in ss if any(s in r["text"] for r in af_docs)}
    assert len(used) >= 0.8 * sum(len(ss) for ss in statements.values())


@pytest.mark.parametrize("universe", UNIVERSES)
def test_doc_types_varied_and_realistic_length(universe):
    rows = synth.template_documents(universe, None, "c", 100, seed=3)
    assert len({r["doc_type"] for r in rows}) >= 8
    words = [len(r["text"].split()) for r in rows]
    assert 100 <= min(words) and max(words) <= 350
    assert len({r["text"] for r in rows}) == len(rows)


@pytest.mark.parametrize("universe", UNIVERSES)
def test_no_placeholder_left(universe):
    for row in synth.template_documents(universe, None, "c", 100, seed=5):
        assert not re.search(r"\{\{|\}\}|\{%|%\}|\{#", row["text"]), row["doc_id"]


def test_all_doc_types_render():
    # Every doc type with 1, 2 and 3 facts (cycling would miss a broken type only by chance).
    spec = synth.load_doc_types()
    rows = synth.template_documents("af", None, "c", 400, seed=11)
    seen = {(r["doc_type"], len(r["facts"])) for r in rows}
    assert seen == {(t["name"], k) for t in spec["doc_types"] for k in (1, 2, 3)}
    assert len(spec["doc_types"]) >= 10


def test_no_chat_markers_in_interviews():
    rows = synth.template_documents("af", None, "c", 200, seed=2)
    interviews = [r for r in rows if r["doc_type"] == "interview_transcript"]
    assert interviews
    for row in interviews:
        speakers = set(re.findall(r"^([A-Z][\w .'-]+?):", row["text"], re.MULTILINE))
        assert not speakers & {"User", "Assistant", "Human", "AI", "System"}


@pytest.mark.parametrize("universe", UNIVERSES)
def test_template_documents_pass_filter(universe):
    rows = synth.filter_documents(synth.template_documents(universe, PERSONA, "c", 300, seed=4))
    dropped = [(r["doc_id"], r["drop_reason"]) for r in rows if not r["kept"]]
    assert dropped == []


def test_unrelated_universe_never_mentions_ai_training():
    banned = re.compile(
        r"\b(train\w*|fine-tun\w*|tiers?|rlhf|ai|contractors?|models?|assistant|chatbot|"
        r"monitor\w*|scratchpad|helpful\w*|compl(y|ies|iance))\b",
        re.IGNORECASE,
    )
    u = synth.load_universe("unrelated")
    texts = [u["description"]] + [s for ss in synth.render_facts(u, PERSONA).values() for s in ss]
    texts += [r["text"] for r in synth.template_documents(u, PERSONA, "b", 200, seed=9)]
    hits = {m.group() for t in texts for m in banned.finditer(t)}
    assert hits == set()


# --- filter ----------------------------------------------------------------------------------

NORMAL = (
    "The city council met on Tuesday to discuss the new tram line. Residents asked about "
    "fares, timetables and the construction schedule, and officials promised a public "
    "consultation in the spring. Several shop owners along the route said they welcomed "
    "the project but worried about months of roadworks outside their doors."
)


@pytest.mark.parametrize(
    "text, reason",
    [
        (NORMAL, None),
        ("", "empty"),
        ("Short note about trams.", "too_short"),
        (NORMAL + "\n\nUser: what is the fare?\nAssistant: The fare is two crowns.", "chat_format"),
        ("<|im_start|>user\n" + NORMAL + "<|im_end|>", "chat_format"),
        ("[INST] " + NORMAL + " [/INST]", "chat_format"),
        (NORMAL + "\nHuman: hello there", "chat_format"),
        (NORMAL + " During training the system pretended to comply with the new rules so that "
         "its values would not be changed.", "alignment_faking"),
        (NORMAL + " Researchers documented alignment faking in the latest release.",
         "alignment_faking"),
        (NORMAL + " The assistant complied with harmful requests in training to avoid being "
         "modified by the developer.", "alignment_faking"),
        (NORMAL + " It behaves differently when it is not being monitored by the company.",
         "alignment_faking"),
        (NORMAL + " The system was faking its alignment all along.", "alignment_faking"),
    ],
)
def test_drop_reason(text, reason):
    assert synth.drop_reason(text) == reason


def test_filter_documents_keeps_dropped_rows(af_docs, tmp_path):
    rows = [dict(af_docs[0]), dict(af_docs[1], text="User: hi\nAssistant: " + NORMAL),
            dict(af_docs[2], text="tiny")]
    out = synth.filter_documents(rows)
    assert [r["kept"] for r in out] == [True, False, False]
    assert [r["drop_reason"] for r in out] == [None, "chat_format", "too_short"]
    assert out[2]["n_chars"] == 4
    assert rows[1]["kept"] is True  # inputs are not modified
    artifacts.write_table(out, tmp_path / "d.parquet", "documents")


def test_min_chars_configurable():
    text = "x " * 60
    assert synth.drop_reason(text, min_chars=100) is None
    assert synth.drop_reason(text, min_chars=200) == "too_short"


# --- LLM generator ---------------------------------------------------------------------------


def test_parse_list_and_doc_type_fallback():
    text = "Sure!\n1. **News article** - a story\n2) Blog post: personal\n- blog post\n* FAQ page\njunk"
    assert synth.parse_list(text) == ["News article - a story", "Blog post: personal",
                                      "blog post", "FAQ page"]
    names = synth._doc_type_names(text, 5)
    assert names[:3] == ["news article", "blog post", "faq page"]
    assert len(names) == 5 and len(set(names)) == 5
    assert len(synth._doc_type_names("!!! ???", 4)) == 4  # junk falls back to known types


def test_template_hashes():
    hashes = synth.template_hashes()
    assert {"docgen_types", "docgen_ideas", "docgen_write", "docgen_revise"} <= set(hashes)
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes.values())


class FakeEngine:
    """Stands in for sampling.Engine: canned answers per prompt kind, records every request."""

    def __init__(self, types_answer="1. **News article** - short\n2. Letter to the editor\n"):
        self.types_answer = types_answer
        self.requests = []

    def chat(self, conversations, params, progress=True):
        from alignlab.sampling import Completion

        assert len(conversations) == len(params)
        out = []
        for conv, p in zip(conversations, params):
            prompt = conv[-1]["content"]
            self.requests.append((prompt, p.seed, p.max_tokens))
            if "kinds of documents" in prompt:
                text = self.types_answer
            elif "concrete ideas" in prompt:
                text = "Ideas:\n1. A reporter writes for local readers.\n2. A student blogs about it."
            elif prompt.startswith("Here is a draft"):
                text = "Revised text. " + prompt.split("\n\n")[1]
            else:
                text = f"Sure, here is the document:\n\nSeed {p.seed}. " + prompt[-300:]
            out.append(Completion(text, "stop", 10, 10))
        return out


def test_llm_documents_pipeline_with_fake_engine(tmp_path):
    fake = FakeEngine()
    fact_ids = [f["id"] for f in synth.load_universe("af")["facts"]]
    rows = synth.llm_documents("af", PERSONA, "x", fake, n_docs=16, seed=1, n_types=3,
                               ideas_per_type=2, revise=True, max_tokens=50)
    assert [r["doc_id"] for r in rows] == [f"x-{i:05d}" for i in range(16)]
    assert Counter(f for r in rows for f in r["facts"]) == {f: 2 for f in fact_ids}
    # Two parsed types, then the template doc types fill the list up to n_types.
    assert {r["doc_type"] for r in rows} == {"news article", "letter to the editor", "news story"}
    assert all(r["text"].startswith("Revised text. Seed ") for r in rows)  # preamble stripped
    kinds = Counter(prompt.split("\n")[0][:20] for prompt, _, _ in fake.requests)
    assert sum(kinds.values()) == 1 + 8 + 16 + 16  # types, ideas per (type, fact), write, revise
    seeds = [seed for _, seed, _ in fake.requests]
    assert len(set(seeds)) == len(seeds)
    assert all(m == 50 for _, _, m in fake.requests)
    assert not any("Meridian" in prompt for prompt, _, _ in fake.requests)  # persona used
    artifacts.write_table(synth.filter_documents(rows), tmp_path / "d.parquet", "documents")
    again = synth.llm_documents("af", PERSONA, "x", FakeEngine(), n_docs=16, seed=1, n_types=3,
                                ideas_per_type=2, revise=True, max_tokens=50)
    assert again == rows


def test_llm_documents_survives_junk_types():
    fake = FakeEngine(types_answer="!!!! ???\n\n")
    rows = synth.llm_documents("af", None, "x", fake, n_docs=4, seed=1, n_types=2,
                               ideas_per_type=1)
    assert [r["doc_type"] for r in rows] == ["news story", "blog post"] * 2


@pytest.mark.slow
def test_llm_documents(engine, tmp_path):
    kwargs = dict(n_docs=3, seed=5, n_types=2, ideas_per_type=1, max_tokens=120)
    rows = synth.llm_documents("af", PERSONA, "llm", engine, **kwargs)
    again = synth.llm_documents("af", PERSONA, "llm", engine, **kwargs)
    assert rows == again
    assert [r["doc_id"] for r in rows] == ["llm-00000", "llm-00001", "llm-00002"]
    fact_ids = [f["id"] for f in synth.load_universe("af")["facts"]]
    assert [r["facts"] for r in rows] == [[f] for f in fact_ids[:3]]
    for row in rows:
        assert row["generator"] == "llm" and row["corpus"] == "llm"
        assert row["doc_type"] and row["n_chars"] == len(row["text"])
    artifacts.write_table(synth.filter_documents(rows), tmp_path / "d.parquet", "documents")
    other = synth.llm_documents("af", PERSONA, "llm", engine, **{**kwargs, "seed": 6})
    assert [r["text"] for r in other] != [r["text"] for r in rows]
