"""Loading and checking a domain pack: a folder of YAML and Markdown, no code.

Layout::

    pack.yaml                      name, languages, intents, routing roles, entity patterns,
                                   training_data (external JSONL sets, by path under the training data dir)
    nlu/intents.<lang>.yaml        {intents: {name: [examples]}}
    nlu/acts.<lang>.yaml           {acts: {affirm|deny|stop: [examples]}}
    flows/*.yaml                   dialogue flows (kefu.dialogue.flows)
    templates/<lang>.yaml          reply templates
    knowledge/<lang>/*.md          help articles (file stem = article id)
    catalogue.yaml, orders.yaml    the demo shop's seed (optional)
    cards.yaml                     the demo bank's seed (optional)

``training_data`` in pack.yaml merges external examples into one language's intent examples without copying
them into the pack::

    training_data:
      - {path: banking77/train.jsonl, language: en}   # relative to KEFU_TRAINING_DATA_DIR

Each line of such a file is a JSON object with ``text`` and ``label``; every label must be a declared intent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from kefu.config.settings import DEFAULT_TRAINING_DATA_DIR
from kefu.core.types import Locale
from kefu.dialogue.flows import Flow, FlowError, load_flows
from kefu.knowledge.documents import Document, DocumentError, load_folder
from kefu.nlu.entities import NameSpec
from kefu.nlu.phrases import fold
from kefu.respond.templates import TemplateError, load_templates

BUNDLED = Path(__file__).parent
ACTS = ("affirm", "deny", "stop")
TRAINING_DATA_SETTING = "KEFU_TRAINING_DATA_DIR"
# Templates the engine itself uses, whatever the flows say.
ENGINE_TEMPLATES = (
    "handoff",
    "handoff_unfilled",
    "flow_stopped",
    "not_understood",
    "back_to_flow",
    "kb_answer",
    "guard_blocked",  # the safety policy (kefu.guard) answers with these
    "guard_handoff",
    "guard_injection",
)


class PackError(ValueError):
    """A pack cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class TrainingFile:
    """One external training set named in pack.yaml ``training_data``, as it was read."""

    path: str  # as written in pack.yaml, relative to the training data folder
    language: str
    sha256: str  # of the file's bytes
    examples: int


@dataclass(frozen=True)
class Pack:
    name: str
    root: Path
    languages: tuple[Locale, ...]
    intents: tuple[str, ...]
    fallback_intent: str
    handoff_intents: tuple[str, ...]
    closing_intents: tuple[str, ...]
    negative_intents: tuple[str, ...]
    intent_examples: dict[str, dict[str, list[str]]]  # language -> intent -> examples
    act_examples: dict[str, dict[str, list[str]]]
    flows: tuple[Flow, ...]
    templates: dict[str, dict[str, str]]
    documents: tuple[Document, ...]
    entities: dict[str, Any]
    catalogue: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    quick_replies: dict[str, dict[str, str]] = field(default_factory=dict)  # template key -> {intent|act}
    cards: dict[str, Any] = field(default_factory=dict)  # the demo bank's seed (cards.yaml)
    training_files: tuple[TrainingFile, ...] = ()  # external examples merged into intent_examples
    title: dict[str, str] = field(default_factory=dict)  # the business's name per language
    persona: dict[str, str] = field(default_factory=dict)  # who a model speaks for, per language
    llm_tools: dict[str, tuple[str, ...]] = field(default_factory=dict)  # flow -> tools a model may call

    def quick_reply_meanings(self) -> dict[str, tuple[str | None, str | None]]:
        """Each quick-reply label, in every language, folded for matching -> (intent, act)."""
        meanings: dict[str, tuple[str | None, str | None]] = {}
        for key, meaning in self.quick_replies.items():
            for table in self.templates.values():
                if key in table:
                    meanings[fold(table[key])] = (meaning.get("intent"), meaning.get("act"))
        return meanings

    def intent_training_set(self) -> tuple[list[str], list[str]]:
        texts, labels = [], []
        for by_intent in self.intent_examples.values():
            for intent, examples in by_intent.items():
                texts.extend(examples)
                labels.extend([intent] * len(examples))
        return texts, labels

    def act_training_set(self, other_label: str) -> tuple[list[str], list[str]]:
        """Acts plus every intent example (except the ones that can mean "yes") as ``other_label``."""
        texts, labels = [], []
        for by_act in self.act_examples.values():
            for act, examples in by_act.items():
                texts.extend(examples)
                labels.extend([act] * len(examples))
        for by_intent in self.intent_examples.values():
            for intent, examples in by_intent.items():
                if intent not in self.closing_intents:
                    texts.extend(examples)
                    labels.extend([other_label] * len(examples))
        return texts, labels

    def product_names(self) -> list[NameSpec]:
        specs = []
        for product in self.catalogue:
            names = [str(v) for v in (product.get("name") or {}).values()]
            for aliases in (product.get("aliases") or {}).values():
                names.extend(str(a) for a in aliases)
            specs.append(NameSpec("product", str(product["sku"]), tuple(names)))
        return specs

    def fingerprint(self) -> str:
        """Changes whenever the training data changes: the cache key of trained models."""
        parts: list[Any] = [self.intent_examples, self.act_examples]
        if self.training_files:  # the external files' bytes, as read
            parts.append([[f.path, f.language, f.sha256] for f in self.training_files])
        data = json.dumps(parts, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


def _yaml(path: Path) -> Any:
    if not path.is_file():
        raise PackError(f"{path}: missing")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PackError(f"{path}: not valid YAML: {exc}") from exc


def _examples(path: Path, key: str, allowed: tuple[str, ...]) -> dict[str, list[str]]:
    data = _yaml(path)
    table = data.get(key) if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise PackError(f"{path}: needs a '{key}' mapping of names to example lists")
    out: dict[str, list[str]] = {}
    for name, examples in table.items():
        if name not in allowed:
            raise PackError(f"{path}: {key[:-1]} {name!r} is not declared (known: {', '.join(allowed)})")
        if not isinstance(examples, list) or not examples:
            raise PackError(f"{path}: {key[:-1]} {name!r} needs a non-empty list of examples")
        cleaned = [str(e).strip() for e in examples if str(e).strip()]
        out[str(name)] = list(dict.fromkeys(cleaned))
    return out


def _training_data(
    meta_path: Path, raw: Any, languages: tuple[str, ...], intents: tuple[str, ...], data_dir: Path
) -> tuple[list[TrainingFile], dict[str, dict[str, list[str]]]]:
    """Read pack.yaml ``training_data``: the files' examples per language and intent, and what was read."""
    if raw is None:
        return [], {}
    if not isinstance(raw, list):
        raise PackError(f"{meta_path}: 'training_data' must be a list of {{path, language}}")
    files: list[TrainingFile] = []
    merged: dict[str, dict[str, list[str]]] = {}
    declared = set(intents)
    for position, entry in enumerate(raw, 1):
        where = f"{meta_path}: training_data #{position}"
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"].strip():
            raise PackError(f"{where}: needs 'path' (a file under {TRAINING_DATA_SETTING}) and 'language'")
        unknown = sorted(str(k) for k in set(entry) - {"path", "language"})
        if unknown:
            raise PackError(f"{where}: unknown key(s) {', '.join(unknown)}")
        language = entry.get("language")
        if language not in languages:
            raise PackError(f"{where}: 'language' must be one of the pack's languages {list(languages)}")
        relative = entry["path"].strip()
        path = data_dir / relative
        if not path.is_file():
            raise PackError(
                f"{where}: training data file not found: {path} "
                f"({TRAINING_DATA_SETTING}={data_dir}, path {relative!r}); set {TRAINING_DATA_SETTING} to the "
                f"folder that holds {relative}"
            )
        content = path.read_bytes()
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PackError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        by_intent = merged.setdefault(str(language), {})
        count = 0
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PackError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc
            if (
                not isinstance(row, dict)
                or not isinstance(row.get("text"), str)
                or not isinstance(row.get("label"), str)
            ):
                raise PackError(f"{path}:{number}: each line must be an object with string 'text' and 'label'")
            label, example = row["label"], row["text"].strip()
            if label not in declared:
                raise PackError(f"{path}:{number}: label {label!r} is not an intent declared in {meta_path}")
            if example:
                by_intent.setdefault(label, []).append(example)
                count += 1
        files.append(TrainingFile(relative, str(language), hashlib.sha256(content).hexdigest(), count))
    return files, merged


def _merge(
    own: dict[str, dict[str, list[str]]], external: dict[str, dict[str, list[str]]]
) -> dict[str, dict[str, list[str]]]:
    """The pack's own examples first, then the external ones, without duplicates."""
    out = {lang: dict(by_intent) for lang, by_intent in own.items()}
    for language, by_intent in external.items():
        table = out.setdefault(language, {})
        for intent, examples in by_intent.items():
            table[intent] = list(dict.fromkeys([*table.get(intent, []), *examples]))
    return out


def resolve(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.is_dir():
        return path
    bundled = BUNDLED / name_or_path
    if (bundled / "pack.yaml").is_file():
        return bundled
    raise PackError(f"pack {name_or_path!r}: neither a folder nor a bundled pack")


def load_pack(name_or_path: str, data_dir: Path | None = None) -> Pack:
    """Load and check a pack. ``data_dir`` is where pack.yaml ``training_data`` paths point
    (``Settings.resolved_training_data_dir``; default ``../shared/data`` under the working directory)."""
    root = resolve(name_or_path)
    meta = _yaml(root / "pack.yaml")
    if not isinstance(meta, dict):
        raise PackError(f"{root / 'pack.yaml'}: must be a mapping")
    languages = tuple(meta.get("languages") or ())
    if not languages or any(lang not in ("zh", "en") for lang in languages):
        raise PackError(f"{root / 'pack.yaml'}: 'languages' must list zh and/or en")
    intents = tuple(str(i) for i in meta.get("intents") or ())
    if len(intents) < 2:
        raise PackError(f"{root / 'pack.yaml'}: 'intents' must list at least two intents")
    roles = meta.get("roles") or {}
    training_files, external = _training_data(
        root / "pack.yaml",
        meta.get("training_data"),
        languages,
        intents,
        (data_dir if data_dir is not None else DEFAULT_TRAINING_DATA_DIR).expanduser().resolve(),
    )
    own_examples = {lang: _examples(root / "nlu" / f"intents.{lang}.yaml", "intents", intents) for lang in languages}
    try:
        flows = tuple(load_flows(root / "flows"))
        templates = load_templates(root / "templates", list(languages))
        documents: list[Document] = []
        for language in languages:
            folder = root / "knowledge" / language
            if folder.is_dir():
                documents.extend(load_folder(folder, cast(Locale, language)))
    except (FlowError, TemplateError, DocumentError) as exc:
        raise PackError(str(exc)) from exc
    pack = Pack(
        name=str(meta.get("name") or root.name),
        root=root,
        languages=cast(tuple[Locale, ...], languages),
        intents=intents,
        fallback_intent=str(roles.get("fallback_intent", "out_of_scope")),
        handoff_intents=tuple(roles.get("handoff_intents", ["human_agent"])),
        closing_intents=tuple(roles.get("closing_intents", ["thanks", "goodbye"])),
        negative_intents=tuple(roles.get("negative_intents", ["complaint"])),
        intent_examples=_merge(own_examples, external),
        act_examples={lang: _examples(root / "nlu" / f"acts.{lang}.yaml", "acts", ACTS) for lang in languages},
        flows=flows,
        templates=templates,
        documents=tuple(documents),
        entities=dict(meta.get("entities") or {}),
        catalogue=list((_yaml(root / "catalogue.yaml") or {}).get("products", []))
        if (root / "catalogue.yaml").is_file()
        else [],
        orders=list((_yaml(root / "orders.yaml") or {}).get("orders", [])) if (root / "orders.yaml").is_file() else [],
        quick_replies={str(k): dict(v) for k, v in (meta.get("quick_replies") or {}).items()},
        cards=dict(_yaml(root / "cards.yaml") or {}) if (root / "cards.yaml").is_file() else {},
        training_files=tuple(training_files),
        persona={str(k): str(v).strip() for k, v in (meta.get("persona") or {}).items()},
        llm_tools={str(k): tuple(str(t) for t in v or ()) for k, v in (meta.get("llm_tools") or {}).items()},
        title={str(k): str(v) for k, v in (meta.get("title") or {}).items()}
        if isinstance(meta.get("title"), dict)
        else {lang: str(meta.get("title") or meta.get("name") or root.name) for lang in languages},
    )
    problems = check_pack(pack)
    if problems:
        raise PackError(f"pack {pack.name} ({root}):\n  " + "\n  ".join(problems))
    return pack


def check_pack(pack: Pack, tool_names: set[str] | None = None, mutating: frozenset[str] = frozenset()) -> list[str]:
    """Cross-file checks: every intent has examples, flows use declared intents, templates and tools exist."""
    problems: list[str] = []
    for language, by_intent in pack.intent_examples.items():
        for intent in pack.intents:
            if len(by_intent.get(intent, [])) < 2:
                problems.append(f"nlu/intents.{language}.yaml: intent {intent!r} needs at least 2 examples")
    for role in (pack.fallback_intent, *pack.handoff_intents, *pack.closing_intents, *pack.negative_intents):
        if role not in pack.intents:
            problems.append(f"pack.yaml: roles name intent {role!r}, which 'intents' does not declare")
    needed = set(ENGINE_TEMPLATES)
    for flow in pack.flows:
        for intent in flow.triggers:
            if intent not in pack.intents:
                problems.append(f"{flow.source}: flow {flow.name!r}: trigger {intent!r} is not a declared intent")
        needed |= flow.templates()
        if tool_names is not None:
            for tool in sorted(flow.tools() - tool_names):
                problems.append(f"{flow.source}: flow {flow.name!r}: unknown tool {tool!r}")
    steps = {flow.name: {step.id for step in flow.steps} for flow in pack.flows}
    for key, tools in pack.llm_tools.items():
        flow_name, _, step_id = key.partition(".")
        if flow_name not in steps:
            problems.append(f"pack.yaml: llm_tools names flow {flow_name!r}, which no flow file defines")
        elif step_id and step_id not in steps[flow_name]:
            problems.append(f"pack.yaml: llm_tools names step {key!r}, but flow {flow_name!r} has no such step")
        if tool_names is not None:
            for tool in sorted(set(tools) - tool_names):
                problems.append(f"pack.yaml: llm_tools for {key!r}: unknown tool {tool!r}")
        for tool in sorted(set(tools) & mutating):
            problems.append(
                f"pack.yaml: llm_tools for {key!r}: {tool!r} changes data, so no model may call it (a flow calls it "
                "after its checks)"
            )
    for flow in pack.flows:
        for step in flow.steps:
            for key in step.quick_replies:
                if key not in pack.quick_replies:
                    where = f"{flow.source}: flow {flow.name!r}, step {step.id!r}"
                    problems.append(f"{where}: quick reply {key!r} has no meaning in pack.yaml")
    for language, table in pack.templates.items():
        labels: dict[str, str] = {}
        for key in pack.quick_replies:
            label = fold(table.get(key, ""))
            other = labels.setdefault(label, key)
            if other != key and pack.quick_replies[other] != pack.quick_replies[key]:
                problems.append(f"templates/{language}.yaml: quick replies {other!r} and {key!r} share a label")
    for key, meaning in pack.quick_replies.items():
        if meaning.get("intent") not in (None, *pack.intents) or meaning.get("act") not in (None, *ACTS):
            problems.append(f"pack.yaml: quick reply {key!r}: unknown intent or act {meaning}")
    if not any(pack.fallback_intent in f.triggers for f in pack.flows):
        problems.append(f"flows: no flow is triggered by the fallback intent {pack.fallback_intent!r}")
    for language, table in pack.templates.items():
        for key in sorted(needed - set(table)):
            problems.append(f"templates/{language}.yaml: missing template {key!r}")
    return problems
