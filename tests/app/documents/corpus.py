"""Fifty small documents of five formats on fifty topics, with two planted facts."""

from __future__ import annotations

import random
from pathlib import Path

from tests.support.pdfgen import write_pdf
from tests.app.documents.helpers import write_docx

TOPICS = (
    "gardening", "astronomy", "baking", "cycling", "sailing", "chess", "pottery", "beekeeping", "knitting",
    "photography", "birdwatching", "climbing", "fishing", "origami", "calligraphy", "woodworking", "surfing",
    "archery", "fencing", "rowing", "juggling", "skating", "camping", "brewing", "composting", "genealogy",
    "geology", "meteorology", "botany", "ornithology", "numismatics", "philately", "cartography", "falconry",
    "glassblowing", "bookbinding", "embroidery", "taxidermy", "puppetry", "ventriloquism", "kayaking",
    "snorkeling", "paragliding", "orienteering", "spelunking", "quilting", "mosaics", "perfumery",
    "winemaking", "cheesemaking",
)
GENERIC = ("the team reviewed the plan during the weekly meeting and agreed on the next steps for the project "
           "members shared notes about equipment costs schedules and safety rules for newcomers").split()
# Words of the questions, scattered through other documents so that no single word gives the answer away.
DISTRACTORS = (
    "The meeting room was booked for the whole afternoon.",
    "Source code for the club website lives in a shared folder.",
    "The file server was restarted after the power cut.",
    "Access to the storage room needs a key from the front desk.",
    "The budget for new equipment was discussed but not approved.",
    "A spring cleaning day is planned for the club house.",
    "The festival parade route was changed this year.",
)
ANSWER_CODE = "The access code for the server room is 7351; it changes every quarter."
ANSWER_BUDGET = "Marguerite Okafor approved the budget for the spring festival on 3 March."


def _paragraph(rng: random.Random, topic: str) -> str:
    words = [rng.choice(GENERIC) for _ in range(60)]
    for i in range(0, 60, 12):
        words[i] = topic
    text = " ".join(words).capitalize() + "."
    if rng.random() < 0.5:
        text += " " + rng.choice(DISTRACTORS)
    return text


def build_corpus(folder: Path, seed: int = 50) -> dict[str, Path]:
    """Writes the 50 documents; returns name -> path. The code fact is on page 3 of
    facilities.pdf (a PDF topic file renamed), the budget fact on page 2 of festival.docx."""
    rng = random.Random(seed)
    out: dict[str, Path] = {}
    for i, topic in enumerate(TOPICS):
        paras = [_paragraph(rng, topic) for _ in range(6)]
        kind = ("pdf", "docx", "txt", "md", "html")[i % 5]
        if i == 0:
            name = "facilities.pdf"
            pages = ["\n\n".join(paras[:2]), "\n\n".join(paras[2:4]), paras[4] + "\n\n" + ANSWER_CODE, paras[5]]
            out[name] = write_pdf(folder / name, pages)
            continue
        if i == 1:
            name = "festival.docx"
            blocks = [("h1", "Planning"), ("p", paras[0]), ("p", paras[1]), ("break", ""),
                      ("h1", "Money"), ("p", paras[2]), ("p", ANSWER_BUDGET), ("break", ""), ("p", paras[3])]
            out[name] = write_docx(folder / name, blocks)
            continue
        name = f"{topic}.{kind}"
        path = folder / name
        if kind == "pdf":
            write_pdf(path, ["\n\n".join(paras[j: j + 2]) for j in range(0, 6, 2)])
        elif kind == "docx":
            write_docx(path, [("h1", topic.title())] + [("p", p) for p in paras])
        elif kind == "md":
            path.write_text(f"# {topic.title()}\n\n" + "\n\n".join(paras), encoding="utf-8")
        elif kind == "html":
            body = "".join(f"<p>{p}</p>" for p in paras)
            path.write_text(f"<html><body><h1>{topic.title()}</h1>{body}</body></html>", encoding="utf-8")
        else:
            path.write_text("\n\n".join(paras), encoding="utf-8")
        out[name] = path
    return out
