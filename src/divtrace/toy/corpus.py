"""Seeded generator of the toy lineage's training data (no downloads).

Three families mirror the demo tasks: arithmetic word problems (GSM8K-like), short stories from
writing prompts (WritingPrompts-like) and instructions with checkable constraints (IFEval-like).
Each family samples a *prompt* and renders a response in one of two registers:

- ``broad``: many phrasings and solution styles (pretraining documents and instruct SFT);
- ``narrow``: one fixed phrasing per problem type (think SFT; post-training collapses diversity).

A narrow response is a function of the prompt alone: every slot that the broad register fills at
random (a story's names, place and time; the order of an answer's sentences) takes one canonical
value, so a model trained on it has nothing left to vary but its own mistakes.

Public entry points: :func:`pretraining_documents` (plain text in the completion formats the
workflow uses for base models), :func:`chat_examples` (``(user, reasoning | None, answer)``
triples for SFT), :func:`preference_pairs` (chosen/rejected assistant turns for DPO) and
:func:`math_problems` (questions with their gold answers for RL). All are pure functions of their
arguments and never emit a prompt held out in ``resources/tasks/demo/*.jsonl``
(:data:`HELD_OUT_PROMPTS`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from divtrace.toy.tokenizer import THINK_CLOSE, THINK_OPEN

Family = Literal["math", "story", "instruction"]
Style = Literal["think", "instruct"]

STYLES: tuple[str, ...] = ("think", "instruct")
FAMILIES: tuple[Family, ...] = ("math", "story", "instruction")
#: Share of each family in pretraining documents and SFT examples.
FAMILY_WEIGHTS: tuple[float, ...] = (0.4, 0.3, 0.3)

#: The demo prompts (mirrors ``resources/tasks/demo/*.jsonl``; a test keeps them in sync). The
#: corpus never contains one of them as a question, instruction or writing prompt.
HELD_OUT_PROMPTS: frozenset[str] = frozenset(
    {
        # gsm8k
        "Mia has 3 apples and buys 4 more. How many apples does Mia have now?",
        "A box holds 6 pencils. Tom has 2 boxes. How many pencils does Tom have?",
        "Sara had 15 stickers and gave 6 to her friend. How many stickers does Sara have left?",
        "There are 5 birds on a fence and 8 more land on it. How many birds are on the fence?",
        "Leo reads 4 pages every day. How many pages does he read in 5 days?",
        "A baker made 18 rolls and sold 7 of them. How many rolls are left?",
        "Nina has 9 marbles and finds 6 more. How many marbles does Nina have?",
        "A garden has 3 rows with 7 flowers in each row. How many flowers are in the garden?",
        "Omar had 20 coins and spent 8 coins. How many coins does Omar have now?",
        "A shelf holds 4 books on each of its 4 levels. How many books does the shelf hold?",
        # ifeval
        "Write a short note about the sea. Your entire response should be in English, and in all "
        "lowercase letters.",
        "Describe a quiet morning in a small town without using any commas.",
        "Write a short poem about a river. Your response should contain at least 3 sentences.",
        "List three things to pack for a picnic. Your answer must contain exactly 3 bullet points. "
        "Use the markdown bullet points such as: * This is a point.",
        "Tell me about your favorite fruit. Answer with less than 40 words.",
        "Write a short letter to a friend about a trip to the mountains. End your response with "
        'the exact phrase "See you soon."',
        "Describe a busy market. Your entire response should be in English, and in all capital "
        "letters.",
        "Explain why people like gardens. Include the keywords flowers and sun in the response.",
        "Write a two sentence story about a dog. Wrap your entire response with double quotation "
        "marks.",
        "Give advice to a new student. Do not include the word homework in the response.",
        # writingprompts
        "[ WP ] A lighthouse keeper finds a message in a bottle addressed to her.",
        "[ WP ] The last tree in the city starts to talk.",
        "[ WP ] A robot learns to bake bread for its village.",
        "[ WP ] Two strangers share an umbrella during a storm.",
        "[ WP ] A child discovers a door in the garden wall that was not there yesterday.",
        "[ WP ] An old fisherman catches a fish that grants one wish.",
        "[ WP ] The moon forgets to rise one night.",
        "[ WP ] A cat becomes the mayor of a small town.",
        "[ WP ] A musician plays a song that makes everyone remember their first friend.",
        "[ WP ] A traveler arrives in a village where nobody has ever seen rain.",
    }
)


@dataclass(frozen=True)
class ChatExample:
    """One SFT example: the user turn, the optional reasoning and the final answer."""

    family: Family
    user: str
    reasoning: str | None
    answer: str

    def assistant_content(self) -> str:
        """The assistant turn's content: ``<think>{reasoning}</think>{answer}`` or the answer."""
        if self.reasoning is None:
            return self.answer
        return f"{THINK_OPEN}{self.reasoning}{THINK_CLOSE}{self.answer}"


@dataclass(frozen=True)
class PreferencePair:
    """One DPO example: the user turn and two assistant turns (full content, think tags included)."""

    family: Family
    user: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class Sample:
    """A family-specific prompt plus the ways of answering it.

    ``user`` is the chat user turn (question, ``[ WP ] premise`` or instruction); ``document``
    renders a completion-format pretraining text (broad style); ``think`` returns the narrow
    ``(reasoning, answer)``; ``instruct`` a broad direct answer; ``canonical`` the one canonical
    direct answer (the narrow register without reasoning); ``gold`` the final answer of a math
    problem (None for the other families).
    """

    family: Family
    user: str
    document: Callable[[random.Random], str]
    think: Callable[[], tuple[str, str]]
    instruct: Callable[[random.Random], str]
    canonical: Callable[[], str]
    gold: str | None = None


# ---------------------------------------------------------------------------------------------
# shared vocabulary


NAMES: tuple[tuple[str, str], ...] = (
    ("Mia", "she"), ("Tom", "he"), ("Sara", "she"), ("Leo", "he"), ("Nina", "she"),
    ("Omar", "he"), ("Ava", "she"), ("Ben", "he"), ("Lily", "she"), ("Sam", "he"),
    ("Zoe", "she"), ("Max", "he"), ("Emma", "she"), ("Jack", "he"), ("Ruby", "she"),
    ("Eli", "he"), ("Nora", "she"), ("Ian", "he"), ("Lucy", "she"), ("Theo", "he"),
    ("Hana", "she"), ("Ravi", "he"), ("Ella", "she"), ("Owen", "he"), ("Iris", "she"),
    ("Noah", "he"), ("Maya", "she"), ("Finn", "he"), ("Anna", "she"), ("Luis", "he"),
    ("Kira", "she"), ("Adam", "he"), ("Jade", "she"), ("Paul", "he"), ("Rosa", "she"),
    ("Yuki", "she"), ("Amir", "he"), ("Cleo", "she"), ("Hugo", "he"), ("Dina", "she"),
)  # fmt: skip

PRONOUNS: dict[str, tuple[str, str, str]] = {
    "she": ("she", "her", "her"),
    "he": ("he", "him", "his"),
    "it": ("it", "it", "its"),
}


def _article(noun: str) -> str:
    """``noun`` with its indefinite article (``an owl``, ``a cat``)."""
    return ("an " if noun[0].lower() in "aeiou" else "a ") + noun


def _cap(text: str) -> str:
    """``text`` with its first character upper-cased."""
    return text[:1].upper() + text[1:]


def _person(rng: random.Random) -> dict[str, str]:
    """A named person as format fields: name, pron, obj, pos (and capitalized variants)."""
    name, pron = rng.choice(NAMES)
    subj, obj, pos = PRONOUNS[pron]
    return {"name": name, "pron": subj, "Pron": _cap(subj), "obj": obj, "pos": pos}


# ---------------------------------------------------------------------------------------------
# math: arithmetic word problems

ITEMS = (
    "apples", "pencils", "stickers", "marbles", "coins", "books", "cookies", "cards", "shells",
    "stamps", "toys", "balloons", "oranges", "candies", "buttons", "crayons", "rocks", "beads",
    "ribbons", "muffins", "feathers", "blocks", "cherries", "grapes", "tickets", "keys",
)  # fmt: skip
ANIMALS = ("birds", "ducks", "cats", "frogs", "rabbits", "sheep", "cows", "fish", "bees", "geese")
ANIMAL_PLACES = (
    "on a fence", "in a pond", "in the field", "in the yard", "on the roof", "in the barn",
    "by the river", "under a tree",
)  # fmt: skip
CONTAINERS = (("box", "boxes"), ("basket", "baskets"), ("bag", "bags"), ("jar", "jars"))
SELLERS = (
    ("A baker", "rolls"), ("A farmer", "eggs"), ("A florist", "roses"), ("A shop", "hats"),
    ("A bakery", "cupcakes"), ("A school", "tickets"), ("A cafe", "sandwiches"),
    ("A toy store", "kites"),
)  # fmt: skip
DAILY = (
    ("reads", "read", "pages"), ("bakes", "bake", "cookies"), ("writes", "write", "letters"),
    ("plants", "plant", "trees"), ("folds", "fold", "paper cranes"), ("saves", "save", "coins"),
    ("runs", "run", "laps"), ("draws", "draw", "pictures"), ("picks", "pick", "apples"),
)  # fmt: skip
ROWS = (
    ("garden", "flowers"), ("orchard", "trees"), ("classroom", "desks"), ("theater", "seats"),
    ("parking lot", "cars"), ("field", "pumpkins"),
)  # fmt: skip
LEVELS = (("shelf", "books"), ("bookcase", "books"), ("cabinet", "cups"), ("cart", "boxes"))

# Question templates: (operation, noun kind, text). Fields come from ``_math_fields``.
MATH_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("+", "items", "{name} has {a} {items} and buys {b} more. How many {items} does {name} have now?"),
    ("+", "items", "{name} has {a} {items} and finds {b} more. How many {items} does {name} have?"),
    ("+", "animals", "There are {a} {items} {where} and {b} more arrive. How many {items} are {where} now?"),
    ("+", "items", "{name} picked {a} {items} in the morning and {b} {items} in the afternoon. How many {items} did {name} pick in total?"),
    ("+", "items", "{name} had {a} {items}. A friend gave {obj} {b} more. How many {items} does {name} have now?"),
    ("+", "items", "A {box} has {a} {items}. {name} puts {b} more {items} in it. How many {items} are in the {box}?"),
    ("+", "items", "{name} has {a} red {items} and {b} blue {items}. How many {items} does {name} have altogether?"),
    ("-", "items", "{name} had {a} {items} and gave {b} to {pos} friend. How many {items} does {name} have left?"),
    ("-", "seller", "{seller} made {a} {items} and sold {b} of them. How many {items} are left?"),
    ("-", "items", "{name} had {a} {items} and lost {b} of them. How many {items} does {name} have now?"),
    ("-", "animals", "There were {a} {items} {where} and {b} of them left. How many {items} are {where} now?"),
    ("-", "items", "{name} had {a} {items} and used {b}. How many {items} are left?"),
    ("-", "items", "A {box} had {a} {items}. {name} took out {b}. How many {items} are in the {box} now?"),
    ("*", "items", "A {box} holds {a} {items}. {name} has {b} {boxes}. How many {items} does {name} have?"),
    ("*", "daily", "{name} {verb_s} {a} {items} every day. How many {items} does {pron} {verb} in {b} days?"),
    ("*", "rows", "A {place} has {a} rows with {b} {items} in each row. How many {items} are in the {place}?"),
    ("*", "items", "{name} buys {a} bags of {items}. Each bag has {b} {items}. How many {items} does {name} buy?"),
    ("*", "levels", "A {place} holds {a} {items} on each of its {b} levels. How many {items} does the {place} hold?"),
)  # fmt: skip

# Broad solution styles per operation; ``{expr}`` is ``a op b = c`` (sometimes with a
# GSM8K-style calculator annotation ``<<a op b=c>>``).
MATH_SOLUTIONS: dict[str, tuple[str, ...]] = {
    "+": (
        "{a} {items} plus {b} more {items} is {expr} {items}.",
        "Adding {b} to {a} gives {expr}.",
        "We add the two amounts: {expr}. So there are {c} {items}.",
        "Start with {a} {items}. Then {b} more are added, so {expr} {items}.",
        "{a} and {b} make {expr} {items} in total.",
        "{a} + {b} is {c}, so the answer is {c} {items}.",
    ),
    "-": (
        "{a} {items} minus {b} is {expr} {items}.",
        "Taking {b} away from {a} leaves {expr}.",
        "We subtract: {expr}. So {c} {items} are left.",
        "Start with {a} {items}. {b} are gone, so {expr} {items} remain.",
        "{b} of the {a} {items} are gone, so {expr} are left.",
    ),
    "*": (
        "{a} times {b} is {expr} {items}.",
        "We multiply: {expr}. So there are {c} {items}.",
        "It is {a} taken {b} times, so {expr} {items}.",
        "Multiplying {a} by {b} gives {expr} {items}.",
        "{a} * {b} is {c}, so the answer is {c} {items}.",
    ),
}
# Canonical direct solution (instruct DPO's chosen style): one phrasing per operation.
MATH_CANONICAL: dict[str, str] = {
    "+": MATH_SOLUTIONS["+"][2],
    "-": MATH_SOLUTIONS["-"][2],
    "*": MATH_SOLUTIONS["*"][1],
}
# Narrow (think) reasoning: one fixed phrasing per operation.
MATH_THINK: dict[str, str] = {
    "+": "We start with {a} and add {b}. {a} + {b} = {c}.",
    "-": "We start with {a} and take away {b}. {a} - {b} = {c}.",
    "*": "We have {a} taken {b} times. {a} * {b} = {c}.",
}


def _math_numbers(op: str, rng: random.Random) -> tuple[int, int, int]:
    """Operands and result in the demo's range: small sums, positive differences, small products.

    The ranges are kept narrow so that the toy models can learn the arithmetic facts.
    """
    if op == "+":
        a, b = rng.randint(1, 12), rng.randint(1, 12)
        return a, b, a + b
    if op == "-":
        a = rng.randint(5, 20)
        b = rng.randint(1, a - 1)
        return a, b, a - b
    a, b = rng.randint(2, 7), rng.randint(2, 7)
    return a, b, a * b


def _math_fields(kind: str, rng: random.Random) -> dict[str, str]:
    """Format fields for a question template of noun ``kind``; ``items`` is always set."""
    fields = _person(rng)
    box, boxes = rng.choice(CONTAINERS)
    fields.update(box=box, boxes=boxes, items=rng.choice(ITEMS))
    if kind == "animals":
        fields.update(items=rng.choice(ANIMALS), where=rng.choice(ANIMAL_PLACES))
    elif kind == "seller":
        seller, goods = rng.choice(SELLERS)
        fields.update(seller=seller, items=goods)
    elif kind == "daily":
        verb_s, verb, noun = rng.choice(DAILY)
        fields.update(verb_s=verb_s, verb=verb, items=noun)
    elif kind in ("rows", "levels"):
        place, noun = rng.choice(ROWS if kind == "rows" else LEVELS)
        fields.update(place=place, items=noun)
    return fields


def math_sample(rng: random.Random) -> Sample:
    """An arithmetic word problem with its broad, narrow and direct answers."""
    op, kind, template = rng.choice(MATH_TEMPLATES)
    a, b, c = _math_numbers(op, rng)
    fields = _math_fields(kind, rng)
    question = template.format(a=a, b=b, **fields)
    nums = {"a": a, "b": b, "c": c, "items": fields["items"]}

    def solution(r: random.Random, annotate: bool) -> str:
        calc = f"<<{a}{op}{b}={c}>>" if annotate else ""
        expr = f"{a} {op} {b} = {calc}{c}"
        return r.choice(MATH_SOLUTIONS[op]).format(expr=expr, **nums)

    def document(r: random.Random) -> str:
        return f"Question: {question}\n\nAnswer: {solution(r, r.random() < 0.5)}\n#### {c}"

    def think() -> tuple[str, str]:
        return MATH_THINK[op].format(**nums), f"The answer is {c}.\n#### {c}"

    def instruct(r: random.Random) -> str:
        return f"{solution(r, False)}\n#### {c}"

    def canonical() -> str:
        expr = f"{a} {op} {b} = {c}"
        return f"{MATH_CANONICAL[op].format(expr=expr, **nums)}\n#### {c}"

    return Sample("math", question, document, think, instruct, canonical, gold=str(c))


# ---------------------------------------------------------------------------------------------
# stories: writing prompts and template stories

HEROES: tuple[tuple[str, str], ...] = (
    ("lighthouse keeper", "she"), ("old baker", "he"), ("young witch", "she"),
    ("retired astronaut", "he"), ("lonely robot", "it"), ("shy dragon", "it"),
    ("clockmaker", "he"), ("street musician", "she"), ("night nurse", "she"),
    ("mail carrier", "he"), ("small fox", "it"), ("tired knight", "he"), ("librarian", "she"),
    ("little girl", "she"), ("farmer", "he"), ("friendly ghost", "it"), ("sailor", "he"),
    ("painter", "she"), ("grandmother", "she"), ("school teacher", "he"), ("beekeeper", "she"),
    ("fisherman", "he"), ("gardener", "she"), ("train driver", "he"), ("young prince", "he"),
    ("stray cat", "it"), ("shopkeeper", "she"), ("student", "he"), ("old owl", "it"),
)  # fmt: skip
# (present tense for the premise, past tense for the story); may use {pos}/{pron}.
EVENTS: tuple[tuple[str, str], ...] = (
    ("finds a map under the floor", "found a map under the floor"),
    ("receives a letter from the future", "received a letter from the future"),
    ("wakes up able to talk to birds", "woke up able to talk to birds"),
    ("meets a talking crow", "met a talking crow"),
    ("opens a shop that sells lost memories", "opened a shop that sold lost memories"),
    ("hears music coming from an empty house", "heard music coming from an empty house"),
    ("builds a boat out of old doors", "built a boat out of old doors"),
    ("plants a seed that grows into a tower overnight", "planted a seed that grew into a tower overnight"),
    ("finds a key that opens every lock", "found a key that opened every lock"),
    ("is asked to guard a sleeping giant", "was asked to guard a sleeping giant"),
    ("discovers a staircase that leads under the sea", "discovered a staircase that led under the sea"),
    ("gets a phone call from {pos} younger self", "got a phone call from {pos} younger self"),
    ("loses {pos} shadow on a windy day", "lost {pos} shadow on a windy day"),
    ("must carry a lantern across the mountains", "had to carry a lantern across the mountains"),
    ("teaches a robot how to laugh", "taught a robot how to laugh"),
    ("finds a note hidden in a library book", "found a note hidden in a library book"),
    ("hears the stars singing one night", "heard the stars singing one night"),
    ("is chosen to ring the old town bell", "was chosen to ring the old town bell"),
    ("finds a tiny door at the back of a closet", "found a tiny door at the back of a closet"),
    ("catches a falling star in a bucket", "caught a falling star in a bucket"),
)  # fmt: skip
PET_NAMES = ("Pip", "Bolt", "Ember", "Moss", "Clover", "Biscuit", "Pebble", "Sprocket")
PLACES = (
    "in a quiet harbor town", "on a floating island", "in a city made of glass",
    "in a village at the edge of the desert", "on a snowy mountain", "in a busy port city",
    "deep in an old forest", "on a small farm by the river", "in a town where it always rains",
    "on a ship far from land", "in a kingdom of clocks", "in a valley full of windmills",
)  # fmt: skip
PREMISES = (
    "{A_hero} {event}.",
    "{A_hero} {event}.",
    "{A_hero} {place} {event}.",
    "{Place}, {a_hero} {event}.",
    "One {time}, {a_hero} {event}.",
    "Nobody believes {a_hero} who {event}.",
    "The {hero} {event} and tells nobody.",
)
STORY_PARTS: dict[str, tuple[str, ...]] = {
    "opening": (
        "{Name} was {a_hero} who lived {place}.",
        "There once was {a_hero} named {Name} who lived {place}.",
        "Nobody {place} paid much attention to {Name}, {a_hero}.",
        "{Name} had been {a_hero} for as long as anyone could remember.",
        "Every morning, {Name} the {hero} walked along the old road {place}.",
    ),
    "event": (
        "One {time}, {Name} {event}.",
        "Then, on an ordinary {time}, {pron} {event}.",
        "It all changed the {time} {pron} {event}.",
    ),
    "middle": (
        "At first {pron} did not know what to do.",
        "{Pron} told {pos} friend {Friend}, who only laughed.",
        "The wind carried the smell of {smell} through the streets.",
        "{Pron} waited until dark and then went to look again.",
        "For three days {pron} could think of nothing else.",
        "{Pron} wrote everything down in a small blue notebook.",
        "The neighbors whispered, but {Name} kept going.",
        "Something in {pos} chest felt warm and strange.",
        "{Friend} came along, carrying {carry}.",
        "The path was long, and {pron} had to stop many times to rest.",
    ),
    "climax": (
        "When {pron} finally understood, {pron} laughed out loud.",
        "At the last moment, {pron} found the courage to try.",
        "The answer had been there all along, hidden in plain sight.",
        "{Pron} opened {pos} hands, and a soft light spilled out.",
        "Everyone in the town came out to see what had happened.",
    ),
    "ending": (
        "In the end, {Name} learned that {lesson}.",
        "From that day on, {Name} {habit}.",
        "{Name} never forgot that {time}, and neither did the town.",
        "And so {Name} went home, tired and happy.",
    ),
}
STORY_FILL: dict[str, tuple[str, ...]] = {
    "time": ("morning", "evening", "night", "afternoon", "winter day", "summer evening"),
    "smell": ("salt and rain", "fresh bread", "pine needles", "old paper", "woodsmoke"),
    "carry": ("a lantern", "a loaf of bread", "an old umbrella", "a basket of apples", "a map"),
    "lesson": (
        "small kindnesses travel far", "home is the people you keep",
        "courage is fear that keeps walking", "every ending is also a beginning",
        "listening is a kind of magic", "nobody is too small to matter",
        "patience can open any door",
    ),
    "habit": (
        "left the window open at night", "kept a candle burning by the door",
        "told the story to anyone who would listen", "greeted every stranger with a smile",
        "walked the long way home",
    ),
}  # fmt: skip
# Narrow (think) story: fixed part indices, one reasoning phrasing.
STORY_THINK_PARTS = (
    ("opening", 0),
    ("event", 0),
    ("middle", 0),
    ("middle", 7),
    ("climax", 1),
    ("ending", 0),
)
STORY_THINK = "The story is about {a_hero}. I will write a short story with a clear beginning, a middle and a warm ending."
# Narrow story slots: one name per pronoun, and the place of the premise or else a fixed one.
STORY_NARROW_NAMES = {"she": "Anna", "he": "Tom", "it": "Pip"}
STORY_NARROW_FILL = {"time": "morning", "lesson": STORY_FILL["lesson"][0], "place": PLACES[0]}


def story_sample(rng: random.Random) -> Sample:
    """A writing prompt (``[ WP ] premise``) with broad, narrow and direct stories."""
    hero, pron = rng.choice(HEROES)
    subj, obj, pos = PRONOUNS[pron]
    name = rng.choice(PET_NAMES if pron == "it" else [n for n, p in NAMES if p == pron])
    friend = rng.choice([n for n, _ in NAMES if n != name])
    event_now, event_past = rng.choice(EVENTS)
    place = rng.choice(PLACES)
    pronouns = {"pron": subj, "Pron": _cap(subj), "obj": obj, "pos": pos}
    fields = {
        **pronouns,
        "hero": hero,
        "a_hero": _article(hero),
        "A_hero": _cap(_article(hero)),
        "place": place,
        "Place": _cap(place),
        "Name": name,
        "Friend": friend,
        "event": event_past.format(**pronouns),
        **{key: rng.choice(values) for key, values in STORY_FILL.items()},
    }
    premise = rng.choice(PREMISES).format(**{**fields, "event": event_now.format(**pronouns)})
    user = f"[ WP ] {premise}"
    narrow_fields = {
        **fields,
        **STORY_NARROW_FILL,
        "Name": STORY_NARROW_NAMES[pron],
        "place": place if place in premise.lower() else STORY_NARROW_FILL["place"],
    }

    def broad(r: random.Random) -> str:
        middles = r.sample(STORY_PARTS["middle"], r.randint(1, 3))
        parts = [
            r.choice(STORY_PARTS["opening"]),
            r.choice(STORY_PARTS["event"]),
            *middles,
            r.choice(STORY_PARTS["climax"]),
            r.choice(STORY_PARTS["ending"]),
        ]
        return " ".join(p.format(**fields) for p in parts)

    def document(r: random.Random) -> str:
        return f"Writing prompt: {user}\n\nStory: {broad(r)}"

    def narrow() -> str:
        return " ".join(STORY_PARTS[k][i].format(**narrow_fields) for k, i in STORY_THINK_PARTS)

    def think() -> tuple[str, str]:
        return STORY_THINK.format(**fields), narrow()

    return Sample("story", user, document, think, broad, narrow)


# ---------------------------------------------------------------------------------------------
# instructions: tasks with checkable constraints (IFEval-like)

# topic -> (adjectives, details, keywords)
TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "the sea": (("blue", "wide", "restless", "calm"), ("the waves roll onto the sand", "gulls call above the water", "boats rock in the harbor", "the tide pulls back slowly"), ("waves", "salt", "boats", "shells")),
    "a river": (("long", "cool", "quiet", "winding"), ("the water slides over smooth stones", "fish flash under the surface", "willows lean over the bank", "the current hums all night"), ("water", "stones", "fish", "bridge")),
    "autumn": (("golden", "crisp", "gentle", "colorful"), ("leaves fall from the trees", "the air smells of smoke", "apples ripen in the orchard", "the evenings grow longer"), ("leaves", "apples", "wind", "harvest")),
    "the city": (("busy", "bright", "loud", "alive"), ("buses rush past the corners", "lights glow in every window", "people hurry to work", "music drifts from a cafe"), ("streets", "lights", "buses", "crowds")),
    "a mountain": (("tall", "cold", "silent", "proud"), ("snow rests on the peak", "clouds drift past the cliffs", "a trail winds toward the top", "eagles circle overhead"), ("snow", "trail", "peak", "eagles")),
    "a garden": (("green", "peaceful", "bright", "fragrant"), ("bees visit the flowers", "tomatoes ripen on the vine", "a bird bathes in the fountain", "the grass is wet with dew"), ("flowers", "bees", "soil", "sun")),
    "winter": (("cold", "white", "still", "cozy"), ("snow covers the rooftops", "children build a snowman", "the fire crackles at home", "frost draws patterns on the glass"), ("snow", "fire", "frost", "scarves")),
    "a library": (("quiet", "warm", "old", "welcoming"), ("pages turn softly", "dust floats in the light", "readers whisper at long tables", "shelves reach up to the ceiling"), ("books", "shelves", "pages", "silence")),
    "the night sky": (("dark", "deep", "clear", "endless"), ("stars shine over the hills", "the moon rises slowly", "a comet streaks past", "owls call from the trees"), ("stars", "moon", "darkness", "owls")),
    "a forest": (("green", "old", "shady", "mysterious"), ("sunlight falls through the leaves", "deer move between the trees", "moss covers the fallen logs", "a stream runs over the roots"), ("trees", "moss", "deer", "shade")),
    "a train ride": (("long", "slow", "peaceful", "rhythmic"), ("fields slide past the window", "the wheels click on the rails", "passengers read and doze", "small stations flash by"), ("rails", "window", "tickets", "stations")),
    "a rainy day": (("gray", "soft", "slow", "cozy"), ("rain taps on the roof", "puddles grow in the street", "people hurry under umbrellas", "the windows fog up"), ("rain", "umbrellas", "puddles", "tea")),
    "music": (("lively", "warm", "joyful", "moving"), ("a guitar plays in the park", "people sing along to old songs", "drums set the beat", "a piano fills the room"), ("songs", "rhythm", "piano", "dance")),
    "a small village": (("quiet", "friendly", "old", "charming"), ("neighbors wave from their doors", "a bell rings in the square", "bread bakes in the morning", "chickens wander the lanes"), ("neighbors", "square", "bread", "lanes")),
    "the desert": (("hot", "vast", "dry", "golden"), ("dunes shift in the wind", "a lizard rests on a rock", "the sun burns overhead", "the nights turn cold"), ("sand", "dunes", "sun", "cactus")),
    "breakfast": (("warm", "simple", "tasty", "filling"), ("toast pops from the toaster", "coffee steams in a cup", "eggs sizzle in the pan", "fruit waits in a bowl"), ("toast", "coffee", "eggs", "fruit")),
}  # fmt: skip
PROSE_TASKS = (
    "Write a short note about {topic}.",
    "Describe {topic}.",
    "Write a short poem about {topic}.",
    "Tell me about {topic}.",
    "Explain why people like {topic}.",
    "Write a short paragraph about {topic}.",
    "Write a short letter to a friend about {topic}.",
    "Share your thoughts on {topic}.",
)
LIST_ACTIVITIES: dict[str, tuple[str, ...]] = {
    "pack for a beach trip": ("a towel", "sunscreen", "a hat", "water", "a good book"),
    "bring on a hike": ("a map", "water", "a warm jacket", "snacks", "sturdy shoes"),
    "buy at the market": ("fresh bread", "apples", "cheese", "carrots", "flowers"),
    "do on a rainy day": ("read a book", "bake cookies", "play a board game", "write a letter", "watch a movie"),
    "keep in a kitchen": ("a sharp knife", "a big pot", "salt", "a wooden spoon", "clean towels"),
    "see in a big city": ("a museum", "a park", "an old bridge", "a busy market", "a tall tower"),
    "take to school": ("a pencil", "a notebook", "a lunch box", "an eraser", "a water bottle"),
}  # fmt: skip
PROSE_SENTENCES = (
    "{Topic} is {adj1} and {adj2}.",
    "I love the way {detail1}.",
    "When I think of {topic}, I picture how {detail2}.",
    "Sometimes {detail3}, and everything feels {adj3}.",
    "People say {topic} feels {adj2}, and I agree.",
    "In the morning {detail4}.",
    "It reminds me that simple things matter.",
)
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}
END_PHRASES = (
    "See you soon.", "Have a nice day.", "That is all.", "Thank you for reading.",
    "Until next time.", "Is there anything else I can help with?",
)  # fmt: skip
FORBIDDEN_WORDS = ("very", "really", "nice", "beautiful", "happy", "money", "always")

# constraint -> instruction phrasings; {n}, {phrase}, {k1}, {k2}, {word} come from the sample.
CONSTRAINTS: dict[str, tuple[str, ...]] = {
    "lowercase": (
        "Your entire response should be in English, and in all lowercase letters.",
        "Use only lowercase letters.",
        "Please write everything in lowercase.",
    ),
    "capital": (
        "Your entire response should be in English, and in all capital letters.",
        "Write your answer in all caps.",
        "Use only capital letters.",
    ),
    "no_comma": (
        "Do not use any commas in your response.",
        "Avoid commas entirely.",
        "Your response must not contain any commas.",
    ),
    "sentences": (
        "Your response should contain at least {n} sentences.",
        "Your response should contain exactly {n} sentences.",
    ),
    "bullets": (
        "Your answer must contain exactly {n} bullet points. Use the markdown bullet points such as: * This is a point.",
        "Answer with exactly {n} bullet points using * as the marker.",
    ),
    "words": ("Answer with less than {n} words.", "Keep your answer under {n} words."),
    "end_phrase": (
        'End your response with the exact phrase "{phrase}"',
        'Finish your response with the phrase "{phrase}"',
    ),
    "quotation": (
        "Wrap your entire response with double quotation marks.",
        "Put your whole answer inside double quotes.",
    ),
    "keywords": (
        "Include the keywords {k1} and {k2} in the response.",
        "Make sure to use the words {k1} and {k2}.",
    ),
    "forbidden": (
        "Do not include the word {word} in the response.",
        "Avoid the word {word}.",
    ),
}  # fmt: skip
# Narrow (think) reasoning: how the model restates each rule.
RULES: dict[str, str] = {
    "lowercase": "write only lowercase letters",
    "capital": "write only capital letters",
    "no_comma": "use no commas",
    "sentences": "write {n} sentences",
    "bullets": "write exactly {n} bullet points",
    "words": "use fewer than {n} words",
    "end_phrase": 'end with "{phrase}"',
    "quotation": "wrap the answer in double quotes",
    "keywords": "use the words {k1} and {k2}",
    "forbidden": "avoid the word {word}",
}
INSTRUCTION_THINK = (
    "The task is: {task} The rule is to {rule}. I will keep it short and follow the rule."
)


@dataclass(frozen=True)
class _Instruction:
    """The parts of an instruction: base task, constraint kind and its parameters."""

    task: str
    topic: str | None
    items: tuple[str, ...]
    kind: str
    params: dict[str, str]


def _prose_sentences(topic: str, rng: random.Random, narrow: bool) -> list[str]:
    """Sentences about ``topic``: fixed order when ``narrow``, shuffled otherwise."""
    adjs, details, _ = TOPICS[topic]
    a = list(adjs) if narrow else rng.sample(adjs, len(adjs))
    d = list(details) if narrow else rng.sample(details, len(details))
    fields = {"topic": topic, "Topic": _cap(topic), "adj1": a[0], "adj2": a[1], "adj3": a[2]}
    fields.update({f"detail{i + 1}": d[i % len(d)] for i in range(4)})
    order = list(PROSE_SENTENCES) if narrow else rng.sample(PROSE_SENTENCES, len(PROSE_SENTENCES))
    return [s.format(**fields) for s in order]


def _respond(ins: _Instruction, rng: random.Random, narrow: bool) -> str:
    """A response that satisfies the instruction's constraint."""
    if ins.topic is None:  # list task
        pool = list(ins.items) if narrow else rng.sample(ins.items, len(ins.items))
        n = int(ins.params.get("n", "3"))
        sentences = [_cap(item) + "." for item in pool[:n]]
        bulleted = True
    else:
        sentences = _prose_sentences(ins.topic, rng, narrow)
        n = int(ins.params.get("n", "3" if narrow else str(rng.randint(2, 4))))
        sentences = sentences[:n]
        bulleted = ins.kind == "bullets"
    kind, p = ins.kind, ins.params
    if kind == "forbidden":
        sentences = [s for s in sentences if p["word"] not in s.lower()]
    if kind == "keywords":
        sentences.append(f"I always think of {p['k1']} and {p['k2']}.")
    if kind == "words":
        limit, kept, words = int(p["n"]), [], 0
        for s in sentences:
            words += len(s.split())
            if words >= limit:
                break
            kept.append(s)
        sentences = kept or [sentences[0]]
    text = "\n".join(f"* {s}" for s in sentences) if bulleted else " ".join(sentences)
    if kind == "lowercase":
        text = text.lower()
    elif kind == "capital":
        text = text.upper()
    elif kind == "no_comma":
        text = text.replace(",", "")
    elif kind == "end_phrase":
        text = f"{text}\n{p['phrase']}" if bulleted else f"{text} {p['phrase']}"
    elif kind == "quotation":
        text = f'"{text}"'
    return text


def _sample_instruction(rng: random.Random) -> tuple[_Instruction, str]:
    """An instruction's parts and its full text (task plus constraint sentence)."""
    params: dict[str, str] = {}
    if rng.random() < 0.2:
        activity = rng.choice(list(LIST_ACTIVITIES))
        n = rng.randint(2, 4)
        params["n"] = str(n)
        task = f"List {NUMBER_WORDS[n]} things to {activity}."
        topic, items = None, LIST_ACTIVITIES[activity]
        kind = rng.choice(("bullets", "lowercase", "capital", "quotation", "end_phrase"))
    else:
        topic, items = rng.choice(list(TOPICS)), ()
        task = rng.choice(PROSE_TASKS).format(topic=topic)
        kind = rng.choice(list(CONSTRAINTS))
        if kind in ("sentences", "bullets"):
            params["n"] = str(rng.randint(2, 5))
        elif kind == "words":
            params["n"] = str(rng.choice((20, 25, 30, 40, 50)))
        elif kind == "keywords":
            k1, k2 = rng.sample(TOPICS[topic][2], 2)
            params.update(k1=k1, k2=k2)
    if kind == "end_phrase":
        params["phrase"] = rng.choice(END_PHRASES)
    elif kind == "forbidden":
        params["word"] = rng.choice(FORBIDDEN_WORDS)
    constraint = rng.choice(CONSTRAINTS[kind]).format(**params)
    text = f"{task} {constraint}"
    if kind == "no_comma" and rng.random() < 0.3:
        text = f"{task[:-1]} without using any commas."
    return _Instruction(task, topic, items, kind, params), text


def instruction_sample(rng: random.Random) -> Sample:
    """An IFEval-like instruction with broad, narrow and direct responses."""
    ins, text = _sample_instruction(rng)

    def document(r: random.Random) -> str:
        return f"Instruction: {text}\n\nResponse: {_respond(ins, r, narrow=False)}"

    def think() -> tuple[str, str]:
        rule = RULES[ins.kind].format(**ins.params)
        reasoning = INSTRUCTION_THINK.format(task=ins.task, rule=rule)
        return reasoning, _respond(ins, random.Random(0), narrow=True)

    def instruct(r: random.Random) -> str:
        return _respond(ins, r, narrow=False)

    def canonical() -> str:
        return _respond(ins, random.Random(0), narrow=True)

    return Sample("instruction", text, document, think, instruct, canonical)


# ---------------------------------------------------------------------------------------------
# public entry points

SAMPLERS: dict[Family, Callable[[random.Random], Sample]] = {
    "math": math_sample,
    "story": story_sample,
    "instruction": instruction_sample,
}


def samples(seed: int, n: int) -> list[Sample]:
    """``n`` prompts drawn from the three families (weights :data:`FAMILY_WEIGHTS`), seeded.

    Prompts in :data:`HELD_OUT_PROMPTS` are skipped (and replaced by the next draw).
    """
    rng = random.Random(seed)
    out: list[Sample] = []
    while len(out) < n:
        family = rng.choices(FAMILIES, weights=FAMILY_WEIGHTS)[0]
        sample = SAMPLERS[family](rng)
        if sample.user not in HELD_OUT_PROMPTS:
            out.append(sample)
    return out


def pretraining_documents(seed: int, n: int) -> list[str]:
    """``n`` pretraining documents in the completion formats (math/story/instruction), seeded."""
    rng = random.Random(f"documents-{seed}")
    return [s.document(rng) for s in samples(seed, n)]


def chat_examples(style: str, seed: int, n: int) -> list[ChatExample]:
    """``n`` SFT examples in ``style`` (``think``: narrow reasoning + answer; ``instruct``)."""
    if style not in STYLES:
        raise ValueError(f"style: unknown style {style!r} (expected one of {list(STYLES)})")
    rng = random.Random(f"chat-{style}-{seed}")
    out = []
    for s in samples(seed, n):
        if style == "think":
            reasoning, answer = s.think()
            out.append(ChatExample(s.family, s.user, reasoning, answer))
        else:
            out.append(ChatExample(s.family, s.user, None, s.instruct(rng)))
    return out


def preference_pairs(style: str, seed: int, n: int) -> list[PreferencePair]:
    """``n`` DPO pairs whose preference narrows ``style``; every pair's two turns differ.

    ``think``: chosen is the narrow think turn (:func:`chat_examples`' format); rejected keeps the
    ``<think>…</think>`` format but answers in the broad register (math: a broad solution as the
    reasoning too). ``instruct``: chosen is the family's canonical direct answer (one phrasing per
    operation, the fixed story, the fixed sentence order), rejected a broad direct answer.
    """
    if style not in STYLES:
        raise ValueError(f"style: unknown style {style!r} (expected one of {list(STYLES)})")
    rng = random.Random(f"pairs-{style}-{seed}")
    out: list[PreferencePair] = []
    draw = 0
    while len(out) < n:
        batch = samples(seed * 1_000 + draw, n)  # more prompts when ties were skipped
        draw += 1
        for s in batch:
            broad = s.instruct(rng)
            if style == "think":
                reasoning, answer = s.think()
                chosen = f"{THINK_OPEN}{reasoning}{THINK_CLOSE}{answer}"
                if s.family == "math":
                    reasoning = s.instruct(rng).rsplit("\n####", 1)[0]
                rejected = f"{THINK_OPEN}{reasoning}{THINK_CLOSE}{broad}"
            else:
                chosen, rejected = s.canonical(), broad
            if chosen != rejected:
                out.append(PreferencePair(s.family, s.user, chosen, rejected))
            if len(out) == n:
                break
    return out


def math_problems(seed: int, n: int) -> list[tuple[str, str]]:
    """``n`` arithmetic word problems ``(question, gold answer)`` for RL, seeded.

    Drawn from their own random stream (not :func:`samples`'); demo questions are skipped.
    """
    rng = random.Random(f"math-problems-{seed}")
    out: list[tuple[str, str]] = []
    while len(out) < n:
        sample = math_sample(rng)
        if sample.user not in HELD_OUT_PROMPTS and sample.gold is not None:
            out.append((sample.user, sample.gold))
    return out
